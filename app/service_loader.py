"""Turning ``MODULE:CLASS`` references, entry points and option strings into service specs.

Three ways in, one result (a validated :class:`~actors.service.ServiceSpec`):

* ``--service MODULE:CLASS`` or ``--service NAME=MODULE:CLASS``, where ``MODULE`` is a
  dotted module on ``sys.path`` or a path to a ``.py`` file (``examples/recorder.py``);
* the ``kalshi_supervisor.services`` entry-point group, for installed packages
  (``--service ENTRYPOINT`` loads one by name);
* options as ``--service-option NAME.KEY=VALUE`` (VALUE parsed as JSON when it parses,
  else taken as a string), validated against the service's own options model.

Every mistake raises :class:`ServiceLoadError` with a one-line message; the CLI prints it
and exits 2. Nothing here imports a user's module until asked to.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from actors.base import one_line
from actors.service import ServiceActor, ServiceSpec, default_service_name
from supervision.policy import RestartType

ENTRY_POINT_GROUP = "kalshi_supervisor.services"


class ServiceLoadError(ValueError):
    """A service reference, option or spec that cannot be used; the message is one line."""


def load_class(reference: str) -> type[ServiceActor]:
    """``MODULE:CLASS`` (MODULE dotted or a ``.py`` path) or an entry-point name -> the class."""
    reference = reference.strip()
    if not reference:
        raise ServiceLoadError("empty service reference: expected MODULE:CLASS")
    module_part, sep, class_name = reference.rpartition(":")
    if not sep:
        return _from_entry_point(reference)
    if not module_part or not class_name:
        raise ServiceLoadError(f"service {reference!r}: expected MODULE:CLASS")
    module = _import(module_part, reference)
    target = getattr(module, class_name, None)
    if target is None:
        raise ServiceLoadError(f"service {reference!r}: {module_part} has no {class_name!r}")
    return _check_class(target, reference)


def build_spec(
    reference: str,
    *,
    options: Mapping[str, Any] | None = None,
    restart_type: str | RestartType | None = None,
    tickers: Sequence[str] | None = None,
) -> ServiceSpec:
    """A spec from ``[NAME=]REFERENCE``; the name defaults to the class's."""
    name, sep, target = reference.partition("=")
    if not sep:
        name, target = "", reference
    actor_class = load_class(target)
    name = name.strip() or default_service_name(actor_class)
    try:
        return ServiceSpec(
            name=name,
            actor_class=actor_class,
            options=dict(options or {}),
            restart_type=RestartType(restart_type or RestartType.PERMANENT),
            tickers=None if tickers is None else tuple(tickers),
        )
    except ValueError as exc:
        raise ServiceLoadError(one_line(str(exc))) from None


def specs_from_cli(
    references: Iterable[str], option_items: Iterable[str] = ()
) -> tuple[ServiceSpec, ...]:
    """``--service`` references plus ``--service-option NAME.KEY=VALUE`` items -> specs."""
    return specs_from_references(references, parse_option_items(option_items))


def parse_option_items(option_items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` items -> ``{NAME: {KEY: VALUE}}`` (values as :func:`parse_value`)."""
    options: dict[str, dict[str, Any]] = {}
    for item in option_items:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name.strip() or not key.strip():
            raise ServiceLoadError(f"--service-option {item!r}: expected NAME.KEY=VALUE")
        options.setdefault(name.strip(), {})[key.strip()] = parse_value(value)
    return options


def specs_from_references(
    references: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[ServiceSpec, ...]:
    """``[NAME=]MODULE:CLASS`` references and per-name options -> validated specs, in order."""
    remaining = {name: dict(values) for name, values in (options or {}).items()}
    specs: list[ServiceSpec] = []
    for reference in references:
        name = reference_name(reference)
        target = reference.partition("=")[2] if "=" in reference else reference
        specs.append(build_spec(f"{name}={target}", options=remaining.pop(name, None)))
    if remaining:
        unknown = ", ".join(sorted(remaining))
        raise ServiceLoadError(f"options for unknown service(s): {unknown}")
    check_unique(specs)
    return tuple(specs)


def reference_name(reference: str) -> str:
    """The service name a reference gives: ``NAME=`` if present, else the class's default."""
    name, sep, target = reference.partition("=")
    if sep and name.strip():
        return name.strip()
    return default_service_name(load_class(target if sep else reference))


def check_unique(specs: Sequence[ServiceSpec], reserved: Iterable[str] = ()) -> None:
    """Service names must differ from each other and from stage names and ``exchange``."""
    taken = {*reserved, "exchange"}
    for spec in specs:
        if spec.name in taken:
            raise ServiceLoadError(
                f"service name {spec.name!r} is already used; name it with NAME=MODULE:CLASS"
            )
        taken.add(spec.name)


def parse_value(text: str) -> Any:
    """An option value: JSON if it parses (numbers, lists, true/false), else the string.

    Numbers are parsed as JSON *text* and handed to the options model as strings when they
    have a fractional part, so a Decimal option keeps every digit (``0.1`` stays exact)."""
    text = text.strip()
    try:
        value = json.loads(text, parse_float=str)
    except ValueError:
        return text
    return value


# -- internals -----------------------------------------------------------------------------------
def _import(module_part: str, reference: str) -> ModuleType:
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        return _import_path(Path(module_part), reference)
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        raise ServiceLoadError(f"service {reference!r}: no module named {exc.name!r}") from None
    except Exception as exc:
        raise ServiceLoadError(
            f"service {reference!r}: importing {module_part} failed: "
            f"{type(exc).__name__}: {one_line(str(exc))}"
        ) from None


def _import_path(path: Path, reference: str) -> ModuleType:
    if path.suffix != ".py":
        raise ServiceLoadError(f"service {reference!r}: {path} is not a .py file")
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        where = "" if path.is_absolute() else f" (relative to the current directory: {resolved})"
        raise ServiceLoadError(f"service {reference!r}: no such file {path}{where}")
    # A stable, unique module name per file, so two files called recorder.py do not clash
    # and a loaded service's classes pickle/repr sensibly.
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"kalshi_service_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ServiceLoadError(f"service {reference!r}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ServiceLoadError(
            f"service {reference!r}: loading {path} failed: "
            f"{type(exc).__name__}: {one_line(str(exc))}"
        ) from None
    return module


def _from_entry_point(name: str) -> type[ServiceActor]:
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise ServiceLoadError(
            f"service {name!r}: expected MODULE:CLASS, or the name of an installed "
            f"{ENTRY_POINT_GROUP} entry point"
        )
    try:
        target = matches[0].load()
    except Exception as exc:
        raise ServiceLoadError(
            f"service {name!r}: loading entry point {matches[0].value} failed: "
            f"{type(exc).__name__}: {one_line(str(exc))}"
        ) from None
    return _check_class(target, name)


def _check_class(target: object, reference: str) -> type[ServiceActor]:
    if not (isinstance(target, type) and issubclass(target, ServiceActor)):
        what = getattr(target, "__name__", type(target).__name__)
        raise ServiceLoadError(f"service {reference!r}: {what} is not a ServiceActor subclass")
    if target is ServiceActor:
        raise ServiceLoadError(f"service {reference!r}: subclass ServiceActor, do not use it")
    return target


def installed_services() -> dict[str, str]:
    """Entry-point name -> ``module:attr`` for every installed service (for ``--help``)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
