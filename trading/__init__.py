"""Trading logic without I/O: ids, the order state machine, lookups, reconciliation, risk, P&L.

Each module is pure (no sockets, no threads, no clocks: time is passed in), so each is
tested alone, with hypothesis. The order gateway actor of issue 16 drives them; this
package sits between ``supervision`` and ``actors`` and imports only ``messages``
(docs/trading.md, docs/architecture.md).
"""
