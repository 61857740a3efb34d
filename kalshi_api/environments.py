"""Where each Kalshi environment lives, and the one place URLs get validated.

Keys are per environment (a demo key only works on demo hosts), so the environment
and its endpoints travel together. The defaults are the dedicated ``external-api*``
hosts Kalshi recommends since 2026-05-07; the older hosts still work and can be given
as overrides. LOCAL is the embedded exchange, whose ports are only known once it has
bound them, so it has no defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit


class Environment(StrEnum):
    """Which exchange the supervisor talks to."""

    LOCAL = "local"
    """The embedded exchange in ``kalshi_sim`` (no credentials needed)."""
    PAPER = "paper"
    """Kalshi's demo environment (demo keys, play money)."""
    PRODUCTION = "production"


@dataclass(frozen=True)
class Endpoints:
    """A REST base URL (ending at ``/trade-api/v2``) and a WebSocket URL, both validated."""

    rest_url: str
    ws_url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "rest_url", _validated(self.rest_url, ("http", "https"), "REST"))
        object.__setattr__(self, "ws_url", _validated(self.ws_url, ("ws", "wss"), "WebSocket"))


def resolve_endpoints(
    env: Environment | str,
    rest_url: str | None = None,
    ws_url: str | None = None,
) -> Endpoints:
    """The environment's endpoints with any override applied; ValueError names what is wrong.

    LOCAL needs both overrides: the embedded exchange supplies them after binding.
    """
    environment = _environment(env)
    defaults = KALSHI_ENDPOINTS.get(environment)
    if defaults is None:
        missing = [
            name for name, value in (("rest_url", rest_url), ("ws_url", ws_url)) if not value
        ]
        if missing:
            raise ValueError(
                f"environment {environment.value!r} needs explicit {' and '.join(missing)} "
                "(the embedded exchange provides them)"
            )
        return Endpoints(rest_url=str(rest_url), ws_url=str(ws_url))
    return Endpoints(
        rest_url=rest_url or defaults.rest_url,
        ws_url=ws_url or defaults.ws_url,
    )


def _environment(env: Environment | str) -> Environment:
    try:
        return Environment(str(env).strip().lower())
    except ValueError:
        choices = ", ".join(e.value for e in Environment)
        raise ValueError(f"unknown environment {env!r}; expected one of: {choices}") from None


def _validated(url: str, schemes: tuple[str, ...], what: str) -> str:
    """``url`` without a trailing slash, or a one-line ValueError."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what} URL is empty")
    cleaned = url.strip()
    try:
        parts = urlsplit(cleaned)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(f"{what} URL {cleaned!r} is malformed") from None
    if parts.scheme.lower() not in schemes:
        found = parts.scheme or "no scheme"
        raise ValueError(f"{what} URL {cleaned!r} must use {' or '.join(schemes)}, not {found!r}")
    if not parts.hostname:
        raise ValueError(f"{what} URL {cleaned!r} has no host")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} URL {cleaned!r} must not carry a query or fragment")
    return cleaned.rstrip("/")


# Defined last: building Endpoints validates the URLs with the helpers above.
KALSHI_ENDPOINTS: Mapping[Environment, Endpoints] = MappingProxyType(
    {
        Environment.PAPER: Endpoints(
            rest_url="https://external-api.demo.kalshi.co/trade-api/v2",
            ws_url="wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
        ),
        Environment.PRODUCTION: Endpoints(
            rest_url="https://external-api.kalshi.com/trade-api/v2",
            ws_url="wss://external-api-ws.kalshi.com/trade-api/ws/v2",
        ),
    }
)
