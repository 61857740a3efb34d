"""``cli.control_summary``: the lines ``halt`` and ``resume`` print for a person, exact, and
the JSON when a reply is not the shape expected."""

from __future__ import annotations

import json

from cli.control_summary import halt_lines, resume_lines, summary

HALT = {
    "reason": "daily_loss",
    "state": "halted",
    "open_at_start": 3,
    "duration_ms": 7246,
    "cancel_all_calls": 2,
    "verify_reads": 1,
    "remaining": 0,
}


def test_halt_lines_say_state_reason_what_was_open_and_time_to_zero_resting() -> None:
    assert halt_lines(HALT) == [
        "halt: trading HALTED (reason: daily_loss)",
        "  3 orders of ours open when it began; none rest now",
        "  zero of ours resting after 7246 ms (2 cancel-all calls, 1 verify read)",
    ]


def test_halt_lines_when_orders_still_rest_say_so_loudly() -> None:
    lines = halt_lines({**HALT, "remaining": 1, "open_at_start": 1, "duration_ms": 30000})
    assert lines[1] == "  1 order of ours open when it began; 1 rest"
    assert lines[2] == (
        "  1 order of ours STILL REST after 30000 ms (2 cancel-all calls, 1 verify read): "
        "check the exchange"
    )


def test_resume_lines_sum_pnl_exactly_and_count_orders_per_service() -> None:
    order = {"service": "mm", "ticker": "KXT-A"}
    reply = {
        "state": "active",
        "reason": "resumed",
        "open_orders": [order, order, {**order, "service": "arb"}],
        "positions": [
            {"ticker": "KXT-A", "position": "2.50"},
            {"ticker": "KXT-B", "position": "-1"},
            {"ticker": "KXT-C", "position": "0"},
        ],
        "pnl": [
            {"realized": "0.1", "unrealized_exit": "-0.05", "fees": "0.020000"},
            {"realized": "0.2", "unrealized_exit": "0", "fees": "0.01"},
        ],
        "order_group_id": "grp-1",
        "write_budget": {"capacity": "100.000", "tokens": "37.500", "rate_limited": 0},
    }
    assert resume_lines(reply) == [
        "resume: trading ACTIVE (resumed)",
        "  open orders: 3 (arb 1, mm 2)",
        "  positions: KXT-A 2.5, KXT-B -1",
        "  P&L: net 0.22 (realized 0.3, unrealized at exit -0.05, fees 0.03)",
        "  order group grp-1 reset; write budget 37.5 of 100 tokens",
    ]


def test_resume_lines_name_at_most_five_markets() -> None:
    positions = [{"ticker": f"T{i}", "position": "1"} for i in range(8)]
    reply = {"state": "active", "reason": None, "open_orders": [], "positions": positions}
    assert resume_lines(reply)[2] == "  positions: T0 1, T1 1, T2 1, T3 1, T4 1, and 3 more"


def test_summary_when_the_reply_is_not_the_expected_shape_prints_its_json() -> None:
    odd = {"state": "halted", "reason": "x", "remaining": "many"}
    assert json.loads(summary("halt", odd)) == odd
    nan = {**HALT, "duration_ms": True}
    assert json.loads(summary("halt", nan)) == nan
    bad_decimal = {"state": "active", "open_orders": [], "positions": [
        {"ticker": "T", "position": "NaN"}]}
    assert json.loads(summary("resume", bad_decimal)) == bad_decimal
    assert json.loads(summary("inject", {"a": 1})) == {"a": 1}
