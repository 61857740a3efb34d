"""``/exchange/status`` bodies reduced to pauses: every plausible shape maps to one answer."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from typing import Any

from actors.exchange_status import RefusalCheck, condition_from_status
from kalshi_api.models import ExchangeStatus
from messages.exchange import ExchangeCondition
from tests.conftest import ExchangeFactory
from tests.harness import WAIT

AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def pauses(body: dict[str, Any]) -> list[tuple[int | None, str]]:
    condition = condition_from_status(ExchangeStatus.model_validate(body), AT)
    return [(p.exchange_index, p.scope) for p in condition.pauses]


def shards(*trading: bool) -> list[dict[str, Any]]:
    return [
        {"exchange_index": i, "exchange_active": True, "trading_active": t}
        for i, t in enumerate(trading)
    ]


def test_open_exchange_has_no_pause() -> None:
    assert pauses({"exchange_active": True, "trading_active": True}) == []
    body = {
        "exchange_active": True,
        "trading_active": True,
        "exchange_index_statuses": shards(True, True),
    }
    assert pauses(body) == []


def test_exchange_inactive_is_a_whole_exchange_pause() -> None:
    assert pauses({"exchange_active": False, "trading_active": False}) == [(None, "exchange")]


def test_503_status_body_is_a_whole_exchange_pause_with_its_estimate() -> None:
    body = {
        "exchange_active": True,
        "trading_active": True,
        "exchange_estimated_resume_time": "2026-12-03T08:00:30Z",
        "http_status": 503,
    }
    status = ExchangeStatus.model_validate(body)
    condition = condition_from_status(status, AT)
    assert condition.exchange_paused
    assert condition.seconds_to_resume() == 30.0


def test_trading_paused_everywhere_is_one_trading_pause() -> None:
    assert pauses({"exchange_active": True, "trading_active": False}) == [(None, "trading")]
    body = {
        "exchange_active": True,
        "trading_active": False,
        "exchange_index_statuses": shards(False, False, False),
    }
    assert pauses(body) == [(None, "trading")]


def test_one_shard_paused_is_that_shards_pause() -> None:
    body = {
        "exchange_active": True,
        "trading_active": True,
        "exchange_index_statuses": shards(True, True, False),
    }
    assert pauses(body) == [(2, "trading")]


def test_top_level_trading_false_with_other_shards_open_pauses_shard_zero() -> None:
    body = {
        "exchange_active": True,
        "trading_active": False,
        "exchange_index_statuses": shards(True, True),
    }
    assert pauses(body) == [(0, "trading")]


def test_shard_exchange_inactive_is_that_shards_exchange_pause() -> None:
    listed = shards(True, True)
    listed[1]["exchange_active"] = False
    body = {"exchange_active": True, "trading_active": True, "exchange_index_statuses": listed}
    assert pauses(body) == [(1, "exchange")]


def test_refusal_check_reads_the_status_once_per_5xx_refusal_burst(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=2)
    exchange.status.pause_exchange()
    seen: list[ExchangeCondition] = []
    reported = threading.Event()

    def report(condition: ExchangeCondition) -> None:
        seen.append(condition)
        reported.set()

    check = RefusalCheck(exchange.rest_url, 2.0, report, interval=3600.0)
    check.refused(None)  # a drop, not a refusal
    check.refused(429)  # a connection limit, not a pause
    check.refused(401)
    check.refused(503)
    check.refused(503)  # within the interval: no second read
    assert reported.wait(WAIT)
    assert exchange.oplog.wait_for(lambda ops: any(op.kind == "rest" for op in ops), WAIT)
    reads = [op.detail for op in exchange.oplog.entries("rest")]
    assert reads == ["GET /trade-api/v2/exchange/status"]
    assert len(seen) == 1 and seen[0].exchange_paused


def test_refusal_check_that_cannot_read_the_status_reports_nothing() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/trade-api/v2"
    reported: list[ExchangeCondition] = []
    check = RefusalCheck(url, 0.5, reported.append, interval=0.0)
    check.refused(503)
    for thread in [t for t in threading.enumerate() if t.name == "exchange-status-check"]:
        thread.join(WAIT)
    assert reported == []
