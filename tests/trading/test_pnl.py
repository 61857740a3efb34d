"""P&L from fills: exact, FIFO, YES/NO netting; realized + unrealized agree with cash flows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import Fill
from trading.pnl import Ledger, PnlBook, Quote

D = Decimal


def fill(side: str, count: str, price: str, fee: str = "0", n: int = 0, ticker: str = "KX-A"
         ) -> Fill:
    return Fill(trade_id=f"t{n}", order_id="o", ticker=ticker, side=side, count=D(count),
                price=D(price), fee=D(fee))


def test_ledger_when_bought_then_sold_higher_realizes_the_difference() -> None:
    ledger = Ledger("KX-A")
    ledger.apply(fill("bid", "10", "0.40", fee="0.02"))
    ledger.apply(fill("ask", "4", "0.55", fee="0.01"))
    assert ledger.position == 6
    assert ledger.realized == D("0.60")  # 4 * (0.55 - 0.40)
    assert ledger.fees == D("0.03")
    assert ledger.unrealized(D("0.50")) == D("0.60")  # 6 * (0.50 - 0.40)


def test_ledger_when_ask_opens_short_is_long_no_and_gains_as_yes_falls() -> None:
    # An ask at 0.70 is buying NO at 0.30; YES falling to 0.20 is NO rising to 0.80.
    ledger = Ledger("KX-A")
    ledger.apply(fill("ask", "5", "0.70"))
    assert ledger.position == -5
    assert ledger.unrealized(D("0.20")) == D("2.50")  # 5 * (0.80 - 0.30) as NO
    ledger.apply(fill("bid", "5", "0.20"))  # sell the NO back at 0.80
    assert ledger.position == 0 and ledger.realized == D("2.50")


def test_ledger_when_fill_crosses_zero_closes_then_opens_the_other_side() -> None:
    ledger = Ledger("KX-A")
    ledger.apply(fill("bid", "3", "0.10"))
    ledger.apply(fill("bid", "2", "0.20"))
    ledger.apply(fill("ask", "7", "0.50"))
    assert ledger.position == -2
    assert ledger.realized == D("1.20") + D("0.60")  # FIFO: 3 * 0.40, then 2 * 0.30
    assert ledger.cost_basis == D("-1.00")  # 2 short at 0.50


def test_quote_when_sides_missing_marks_at_worst_exit() -> None:
    assert Quote(bid=D("0.4"), ask=D("0.6")).mid() == D("0.5")
    assert Quote(ask=D("0.6")).exit_for(D(3)) == 0
    assert Quote(bid=D("0.4")).exit_for(D(-3)) == 1
    assert Quote(bid=D("0.4"), ask=D("0.6")).exit_for(D(-3)) == D("0.6")


def test_pnl_book_when_two_services_cross_nets_the_account_but_not_the_services() -> None:
    book = PnlBook()
    book.apply(fill("bid", "5", "0.40", n=1), "alpha")
    book.apply(fill("ask", "5", "0.45", n=2), "beta")
    assert book.positions() == {}
    assert book.positions("alpha") == {"KX-A": D(5)}
    assert book.positions("beta") == {"KX-A": D(-5)}
    assert book.market("KX-A").realized == D("0.25")
    quotes = {"KX-A": Quote(bid=D("0.42"), ask=D("0.44"))}
    [alpha, beta] = book.services(quotes)
    assert alpha.service == "alpha" and alpha.unrealized_exit == D("0.10")  # 5 * (0.42-0.40)
    assert beta.unrealized_exit == D("0.05")  # 5 * (0.45-0.44)
    assert alpha.unrealized_mid == D("0.15")
    assert book.net(quotes) == D("0.25")


prices = st.integers(min_value=1, max_value=9999).map(lambda n: D(n) / D(10000))
counts = st.integers(min_value=1, max_value=50_000).map(lambda n: D(n) / D(100))
fees = st.integers(min_value=0, max_value=5000).map(lambda n: D(n) / D(10000))
fills = st.lists(
    st.tuples(st.sampled_from(["bid", "ask"]), counts, prices, fees), min_size=1, max_size=40
)


@pytest.mark.slow  # hypothesis: a second of CPU
@settings(max_examples=300, deadline=None)
@given(fills, prices, prices)
def test_ledger_when_random_fills_realized_plus_unrealized_equals_cash_plus_marked_position(
    trades: list[tuple[str, Decimal, Decimal, Decimal]], mark: Decimal, other: Decimal
) -> None:
    ledger = Ledger("KX-A")
    cash = D(0)
    position = D(0)
    for n, (side, count, price, fee) in enumerate(trades):
        f = Fill(trade_id=f"t{n}", order_id="o", ticker="KX-A", side=side, count=count,
                 price=price, fee=fee)
        ledger.apply(f)
        cash += (-count * price if side == "bid" else count * price) - fee
        position += count if side == "bid" else -count
    assert ledger.position == position
    assert ledger.cash == cash
    for m in (mark, other, D(0), D(1)):
        assert ledger.realized + ledger.unrealized(m) - ledger.fees == cash + position * m
    # the open lots are all on the position's side, each at a price in (0, 1)
    if position == 0:
        assert ledger.cost_basis == 0
    else:
        assert 0 < ledger.cost_basis / position < 1
    # settling: YES pays 1 per contract, NO pays 1 per short contract; nothing is lost or made up
    settled_yes = cash + position * D(1)
    settled_no = cash
    assert ledger.realized + ledger.unrealized(D(1)) - ledger.fees == settled_yes
    assert ledger.realized + ledger.unrealized(D(0)) - ledger.fees == settled_no


def test_pnl_book_when_fill_replayed_counts_it_once() -> None:
    book = PnlBook()
    assert book.apply(fill("bid", "5", "0.40", n=1), "alpha")
    assert not book.apply(fill("bid", "5", "0.40", n=1), "alpha")
    assert book.positions() == {"KX-A": D(5)} and book.positions("alpha") == {"KX-A": D(5)}


def test_pnl_book_when_position_seeded_then_closed_realizes_from_the_seed_price() -> None:
    book = PnlBook()
    book.seed("KX-A", D(-4), D("0.70"))  # adopted: short 4 YES (long 4 NO) at 0.70
    book.apply(fill("bid", "4", "0.60", n=1), None)
    ledger = book.market("KX-A")
    assert ledger.position == 0 and ledger.realized == D("0.40")
    assert book.positions("alpha") == {}


def test_pnl_book_when_day_started_counts_daily_loss_from_there() -> None:
    book = PnlBook()
    quotes = {"KX-A": Quote(bid=D("0.50"), ask=D("0.52"))}
    book.apply(fill("bid", "10", "0.50", n=1, fee="0.10"), "alpha")
    assert book.daily(quotes) == D("-0.10")
    book.start_day(quotes)
    assert book.daily(quotes) == 0 and book.daily(quotes, "alpha") == 0
    lower = {"KX-A": Quote(bid=D("0.30"), ask=D("0.32"))}
    assert book.daily(lower) == D("-2.00") and book.daily(lower, "alpha") == D("-2.00")
    book.apply(fill("ask", "1", "0.45", n=2, ticker="KX-B"), "beta")  # a newcomer: from zero
    assert book.daily(lower, "beta") == D("-0.55")  # short at 0.45, no ask: exits at 1
