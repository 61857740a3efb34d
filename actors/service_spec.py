"""The service spec type and what a service is started with: pykka-free.

Why apart from ``actors.service`` (the actor base): the decision core builds contexts and
reads specs for every start, and must not import pykka (an import-linter contract).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kalshi_api.book_changes import BookChangeFeed
from messages.services import SERVICE_NAME_PATTERN
from messages.text import one_line
from supervision.policy import RestartType
from supervision.scheduler import Scheduler

if TYPE_CHECKING:
    from actors.service import ServiceActor
    from actors.trading_link import TradingLink

_NAME = re.compile(SERVICE_NAME_PATTERN)


def _is_service_actor(actor_class: object) -> bool:
    """Whether ``actor_class`` derives from ``actors.service.ServiceActor``, read from its
    MRO so this module need not import the (pykka) actor base."""
    return isinstance(actor_class, type) and any(
        base.__name__ == "ServiceActor" and base.__module__ == "actors.service"
        for base in actor_class.__mro__
    )


class ServiceOptions(BaseModel):
    """Base of a service's options: frozen and strict, like every message.

    Subclass it with your fields and defaults and point ``options_model`` at it; the
    options given in a spec, the config file or ``--service-option`` are validated
    against it before the service ever starts, so a typo is an error, not a default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ServiceContext:
    """What a service incarnation is started with (read-only)."""

    name: str
    options: ServiceOptions
    feed: BookChangeFeed
    scheduler: Scheduler
    markets: tuple[str, ...] = ()
    tickers: tuple[str, ...] | None = None
    """Book subscription from the spec: None = every streamed ticker, () = no books."""
    trading: TradingLink | None = None
    """The order gateway's link when trading is on (``actors.trading_link``), else None."""

    def __repr__(self) -> str:
        return f"ServiceContext(name={self.name!r}, options={self.options!r})"


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its name (fault target, restart unit), class, options and subscription.

    ``options`` may be a mapping (validated here against the class's ``options_model``)
    or an instance of it; either way the spec holds the frozen, validated model, so a bad
    option is a ``ValueError`` with one line when the spec is built, not a failed start.
    """

    kind: ClassVar[str] = "service"
    failure_leaves_ready: ClassVar[bool] = False
    """What a failure does (supervision data, read by the core): a service's never leaves
    READY; its own tracker restarts or drops it."""

    name: str
    actor_class: type[ServiceActor]
    options: ServiceOptions | Mapping[str, Any] = field(default_factory=dict)
    restart_type: RestartType = RestartType.PERMANENT
    tickers: tuple[str, ...] | None = None
    """Books to watch: None = every streamed ticker (or what the service itself asks for)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"service name {self.name!r} must be lower-case letters, digits and _ "
                "(at most 32, starting with a letter)"
            )
        if not _is_service_actor(self.actor_class):
            raise ValueError(f"service {self.name}: {self.actor_class!r} is not a ServiceActor")
        model = self.actor_class.options_model
        options = self.options
        if not isinstance(options, model):
            try:
                raw = options.model_dump() if isinstance(options, BaseModel) else dict(options)
                options = model.model_validate(raw)
            except ValidationError as exc:
                raise ValueError(f"service {self.name}: {validation_line(exc)}") from None
            except (TypeError, ValueError) as exc:
                raise ValueError(f"service {self.name}: bad options: {one_line(exc)}") from None
            object.__setattr__(self, "options", options)
        if self.tickers is not None:
            object.__setattr__(self, "tickers", tuple(self.tickers))
        object.__setattr__(self, "restart_type", RestartType(self.restart_type))


def validation_line(exc: ValidationError) -> str:
    """The first error of a pydantic validation as one line: ``where: what``."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return one_line(f"option {where}: {message}" if where else message)


def default_service_name(actor_class: type[ServiceActor]) -> str:
    """``service_name`` if the class sets one, else its name in snake_case (``Actor``,
    ``Service`` suffixes dropped): ``SpreadAlert`` -> ``spread_alert``."""
    if actor_class.service_name:
        return actor_class.service_name
    base = actor_class.__name__
    for suffix in ("Actor", "Service"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()
    snake = re.sub(r"[^a-z0-9_]", "_", snake)
    return snake[:32] if snake and snake[0].isalpha() else f"s_{snake}"[:32]
