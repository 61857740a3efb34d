"""The embedded exchange's matching engine: books, orders, fills, positions, cash, groups.

A pure package: no I/O, no threads, no clock (every mutating call takes ``now_ms``), so the
same calls give the same results and tests and property checks can drive it directly.
The exchange wraps it with a lock and turns each :class:`Outcome` into REST replies and
WebSocket frames.

What it reproduces (KALSHI_PROTOCOL.md §8.5-8.9; every UNCONFIRMED choice is an
:class:`EngineOptions` field, documented in docs/embedded_exchange.md):

* one book per market, in YES terms: a bid at ``p`` rests on ``yes@p``, an ask at ``p`` on
  ``no@(1-p)``; price-time priority; an incoming bid takes asks at ``a <= p``, an ask takes
  bids at ``b >= p``; executions at the resting order's price;
* GTC (optionally with ``expiration_time``), IOC, FOK; post-only, reduce-only, both
  self-trade-prevention types; off-grid prices; spent ``client_order_id``s;
* taker fees ``0.07 m C P (1-P)`` and, for ``quadratic_with_maker_fees`` series, maker fees
  ``0.0175 m C P (1-P)``, each ceiled to the fee quantum (:mod:`kalshi_sim.fees`);
* signed netted positions per member and market, cost, realized P&L, fees; cash per shard
  (a bid costs ``p``, an ask ``1-p``; netting a YES against a NO returns $1);
* order groups with a rolling 15 s filled-contracts window;
* close, deactivation/reactivation, trading pauses, settlement.

Where each part lives:

* :mod:`~kalshi_sim.matching.engine`: :class:`MatchingEngine`, which joins the parts below;
* :mod:`~kalshi_sim.matching.records`: the mutable records (orders, positions, groups,
  accounts, books) and the changes one call gathers into an ``Outcome``;
* :mod:`~kalshi_sim.matching.core`: the engine's state and the steps every call is made of
  (finding books and orders, holding cash, resting and unresting, ending orders);
* :mod:`~kalshi_sim.matching.entry`: place, amend, decrease, cancel, cancel-all, expiry;
* :mod:`~kalshi_sim.matching.crossing`: matching, executions, fees, self-trade prevention,
  reduce-only trimming;
* :mod:`~kalshi_sim.matching.groups`: order groups and their rolling window;
* :mod:`~kalshi_sim.matching.market_state`: close, deactivation, pauses, settlement;
* :mod:`~kalshi_sim.matching.reads`: the queries (and ``reduced_by_centi``);
* :mod:`~kalshi_sim.matching.fixtures`: the simulator's seeding and test mutators.
"""
