"""What the console server and the ``inject`` CLI say to people: errors as one line.

Kept apart from the server so the CLI can import it without uvicorn and Starlette (``inject``
and ``--help`` must start fast, and a run reports a start-up failure before serving).
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from messages.text import one_line

__all__ = ["MAX_ERROR_CHARS", "ConsoleServerError", "describe_validation_error", "one_line"]

MAX_ERROR_CHARS = 500
"""Error strings are echoed to a terminal; a huge exception message should not flood it,
but a full HTTP error (a validation message listing every fault) needs more than the default."""

UNAUTHORIZED_MESSAGE = "invalid or missing control token"


class ConsoleServerError(RuntimeError):
    """The console server could not start; the message is one line, fit for a terminal."""


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as one human line, e.g. ``seconds: Input should be ...``.

    Pydantic reports a union of enums (``fault``) as one error per member, each listing only
    that member's values, which would tell a user that ``ws_drop`` is not a valid fault. The
    sibling errors for the same field are merged so the message lists every accepted value.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return one_line(str(exc), MAX_ERROR_CHARS)
    first = errors[0]
    loc = first.get("loc", ())
    name = str(loc[0]) if loc else ""
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "enum" and name:
        siblings = [e for e in errors if e.get("loc", ())[:1] == (loc[0],) and e["type"] == "enum"]
        if len(siblings) > 1:
            accepted: list[str] = []
            for sibling in siblings:
                expected = str(sibling.get("ctx", {}).get("expected", ""))
                accepted.extend(v for v in re.findall(r"'([^']*)'", expected) if v not in accepted)
            message = "Input should be one of " + ", ".join(repr(v) for v in accepted)
    return one_line(f"{name}: {message}" if name else message, MAX_ERROR_CHARS)
