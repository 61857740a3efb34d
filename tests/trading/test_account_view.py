"""The account view's pure parts: the snapshot of the gateway's book, and the board that
keeps at most one nudge queued per service."""

from __future__ import annotations

from decimal import Decimal

from messages.account import AccountView, LiveAccount
from messages.orders import Fill, OrderIntent, Position
from trading.account_view import AccountBoard, compose, snapshot
from trading.pnl import PnlBook
from trading.tracker import OrderTracker

D = Decimal


def _live(version: int, position: str = "1") -> LiveAccount:
    return LiveAccount(version=version, positions=(Position(ticker="T", position=D(position)),))


def test_board_when_a_burst_posts_nudges_each_service_once_until_it_takes() -> None:
    board = AccountBoard()
    assert board.post(_live(1, "1"), ["a", "b"]) == ["a", "b"]
    for version in range(2, 50):
        assert board.post(_live(version, str(version)), ["a", "b"]) == []
    latest = board.take("a")
    assert latest is not None and latest.version == 49 and latest.positions[0].position == 49
    assert board.post(_live(50, "50"), ["a", "b"]) == ["a"]  # b still has one queued


def test_board_when_nothing_moved_or_older_nudges_nobody() -> None:
    board = AccountBoard()
    board.post(_live(1), ["a"])
    board.take("a")
    assert board.post(_live(2), ["a"]) == []  # same positions and orders
    assert board.post(_live(1, "7"), ["a"]) == []  # older than the latest
    assert board.latest == _live(1)


def test_board_when_a_service_restarts_forgets_its_lost_nudge() -> None:
    board = AccountBoard()
    board.post(_live(1), ["a"])
    board.forget("a")  # the incarnation died with the nudge in its mailbox
    assert board.post(_live(2, "2"), ["a"]) == ["a"]


def test_snapshot_carries_exact_positions_and_every_open_order() -> None:
    tracker, pnl = OrderTracker(), PnlBook()
    intent = OrderIntent(service="mm", ticker="T", side="bid", count=D(5), price=D("0.42"))
    tracker.track("ks-x-1", intent)
    pnl.apply(Fill(trade_id="t1", order_id="o1", ticker="T", side="bid", count=D("1.5"),
                   price=D("0.42"), fee=D(0), is_taker=False), "mm")
    live = snapshot(tracker, pnl, 3)
    assert live.version == 3
    assert live.positions == (Position(ticker="T", position=D("1.5")),)
    assert [o.client_order_id for o in live.open_orders] == ["ks-x-1"]
    view = compose("trading", None, live)
    assert view.live and view.position("T") == D("1.5") and view.position("U") == 0
    assert view.orders_of("mm") == live.open_orders and view.orders_of("other") == ()
    assert view.state is None and view.shards == ()
    assert compose("sync", None, None) == AccountView(cause="sync")
