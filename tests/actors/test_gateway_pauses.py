"""Pauses and shards, decided without sockets: which pause refuses a new order on which
market (admission), and which pause is an automatic halt trigger (the documented rule)."""

from __future__ import annotations

from actors.gateway_admission import DEFAULT_SHARD, MarketShards, pause_refusal
from actors.gateway_halting import pause_trigger
from messages.orders import HaltReason


def test_market_shards_learn_from_reads_and_take_unknown_markets_as_the_default() -> None:
    shards = MarketShards()
    assert shards.of("BTC") == DEFAULT_SHARD and not shards.known("BTC")
    shards.update({"BTC": 2})
    shards.learn("FED", None)  # absent: nothing learnt
    shards.learn("FED", -1)  # auto-routed: nothing learnt
    assert shards.of("BTC") == 2 and shards.known("BTC") and not shards.known("FED")


def test_a_shard_pause_refuses_orders_on_that_shards_markets_only() -> None:
    shards = MarketShards()
    shards.update({"BTC": 2, "FED": 0})
    paused = {2: "trading"}
    assert pause_refusal("FED", shards, paused) is None
    assert pause_refusal("NEW", shards, paused) is None  # unknown: shard 0
    why = pause_refusal("BTC", shards, paused)
    assert why is not None and "shard 2" in why and "BTC" in why
    assert "default" in (pause_refusal("NEW", shards, {0: "trading"}) or "")
    assert "every shard" in (pause_refusal("FED", shards, {None: "trading"}) or "")
    assert "paused" in (pause_refusal("FED", shards, {None: "exchange"}) or "")
    assert pause_refusal("BTC", shards, {}) is None


def test_pause_triggers_whole_exchange_always_a_shard_only_when_it_covers_our_orders() -> None:
    everything = pause_trigger(None, "exchange", {None: "exchange"}, [])
    assert everything is not None and everything[0] is HaltReason.EXCHANGE_PAUSE
    weekly = pause_trigger(None, "trading", {None: "trading"}, [0])
    assert weekly is not None and weekly[0] is HaltReason.TRADING_PAUSE
    # our orders on shards 0 and 2; shard 2 pauses: trading goes on on shard 0
    assert pause_trigger(2, "exchange", {2: "exchange"}, [0, 2]) is None
    # then shard 0 too: every shard we have orders on is paused
    both = pause_trigger(0, "exchange", {2: "exchange", 0: "exchange"}, [0, 2])
    assert both is not None and both[0] is HaltReason.EXCHANGE_PAUSE and "shard 0" in both[1]
    assert pause_trigger(2, "trading", {2: "trading"}, []) is None  # no orders: nothing
    only = pause_trigger(2, "trading", {2: "trading"}, [2])
    assert only is not None and only[0] is HaltReason.TRADING_PAUSE
