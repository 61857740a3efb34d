"""The bottom layer: frozen messages every other layer speaks.

It also roots the product's loggers: every module logs to ``kalshi_supervisor.<module>``,
and, as libraries should (pykka does the same), a ``NullHandler`` sits on that root so
nothing is printed unless the application configures logging (the CLI does). Installed
here because every layer above imports ``messages``.
"""

import logging

LOGGER_ROOT = "kalshi_supervisor"

logging.getLogger(LOGGER_ROOT).addHandler(logging.NullHandler())
