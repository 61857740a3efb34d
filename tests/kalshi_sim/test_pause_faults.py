"""The pause faults over the wire: what ``/exchange/status`` answers while a pause is in force,
the advertised resume time, and the pause ending on its own at that time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.faults import SimFault
from tests.conftest import ExchangeFactory

WAIT = 5.0


def status(exchange: EmbeddedExchange) -> tuple[int, dict[str, Any]]:
    with httpx.Client(trust_env=False, timeout=WAIT) as http:
        response = http.get(f"{exchange.rest_url}/exchange/status")
    return response.status_code, response.json()


PAUSE_S = 2.0
"""A timed pause the test reads inside (0.2-0.3 s was outlived by two reads under a CPU hog)."""


def estimate(body: dict[str, Any]) -> datetime | None:
    text = body["exchange_estimated_resume_time"]
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def trading_by_shard(body: dict[str, Any]) -> dict[int, bool]:
    return {s["exchange_index"]: s["trading_active"] for s in body["exchange_index_statuses"]}


def resume_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sim-resume") and t.is_alive()]


@pytest.mark.slow  # waits out a real 2 s pause
def test_pause_exchange_with_resume_in_answers_503_with_estimate_then_resumes_on_time(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()
    before = datetime.now(UTC)

    # long enough that the two reads below land inside the pause on a loaded machine
    exchange.apply_fault(SimFault.PAUSE_EXCHANGE, resume_in=PAUSE_S)
    code, body = status(exchange)
    with httpx.Client(trust_env=False, timeout=WAIT) as http:
        markets = http.get(f"{exchange.rest_url}/markets").status_code
    ended = exchange.pauses.wait_ended(WAIT)
    code_after, body_after = status(exchange)
    after = datetime.now(UTC)

    assert (code, body["exchange_active"], body["trading_active"]) == (503, False, False)
    assert markets == 503
    resume = estimate(body)
    assert resume is not None
    assert before + timedelta(seconds=PAUSE_S) <= resume <= after
    assert ended
    assert (code_after, body_after["exchange_active"], estimate(body_after)) == (200, True, None)
    assert exchange.pauses.scheduled == 0


@pytest.mark.slow  # waits out a real 2 s pause
def test_pause_trading_on_one_shard_pauses_only_it_and_ends_at_its_time(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()
    shards = exchange.status.shards
    assert len(shards) > 2

    exchange.apply_fault("pause_trading", shard=shards[2], resume_in=PAUSE_S)
    code, body = status(exchange)
    assert exchange.pauses.wait_ended(WAIT)
    _, body_after = status(exchange)

    assert code == 200 and body["exchange_active"] is True
    assert trading_by_shard(body) == {s: s != shards[2] for s in shards}
    assert estimate(body) is not None
    assert trading_by_shard(body_after) == dict.fromkeys(shards, True)
    assert estimate(body_after) is None


def test_pause_without_resume_in_lasts_until_resume_with_no_estimate(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()

    exchange.apply_fault("pause_trading")  # every shard: the weekly pause
    _, weekly = status(exchange)
    exchange.apply_fault("pause_exchange")
    code, paused = status(exchange)
    exchange.apply_fault("resume")
    code_after, resumed = status(exchange)

    assert weekly["trading_active"] is False and not any(trading_by_shard(weekly).values())
    assert estimate(weekly) is None
    assert (code, estimate(paused)) == (503, None)
    assert exchange.pauses.scheduled == 0
    assert code_after == 200 and resumed["trading_active"] is True
    assert all(trading_by_shard(resumed).values())


def test_pause_exchange_ending_keeps_a_trading_pause_that_has_not_ended(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()

    exchange.apply_fault("pause_trading", shard=1)  # until resume
    exchange.apply_fault("pause_exchange", resume_in=0.2)
    assert exchange.pauses.wait_ended(WAIT)
    code, body = status(exchange)

    assert code == 200 and body["exchange_active"] is True
    assert trading_by_shard(body)[1] is False
    assert trading_by_shard(body)[0] is True


def test_a_new_pause_replaces_the_earlier_ones_end_so_timers_never_pile_up(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()

    for _ in range(20):
        exchange.apply_fault("pause_exchange", resume_in=600)
    exchange.apply_fault("pause_trading", shard=0, resume_in=600)
    scheduled = exchange.pauses.scheduled
    exchange.apply_fault("pause_exchange")  # no end any more: the earlier one is dropped
    after_untimed = exchange.pauses.scheduled
    exchange.apply_fault("resume")

    assert (scheduled, after_untimed, exchange.pauses.scheduled) == (2, 1, 0)
    assert status(exchange)[0] == 200
    assert exchange.pauses.wait_ended(WAIT)


def test_stop_with_a_pause_still_timed_leaves_no_resume_thread(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange()
    exchange.apply_fault("pause_exchange", resume_in=600)
    exchange.apply_fault("pause_trading", shard=3, resume_in=600)
    assert len(resume_threads()) >= 2

    exchange.stop()

    assert resume_threads() == []


@pytest.mark.parametrize("shard", [4, 99])
def test_pause_trading_on_a_shard_the_exchange_lacks_raises_naming_its_shards(
    make_exchange: ExchangeFactory, shard: int
) -> None:
    exchange = make_exchange()

    with pytest.raises(ValueError, match=rf"no exchange shard {shard} \(this exchange has shards"):
        exchange.apply_fault("pause_trading", shard=shard, resume_in=5)

    assert exchange.pauses.scheduled == 0
    assert status(exchange)[1]["trading_active"] is True
