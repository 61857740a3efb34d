"""One book: the engine is the truth behind the generated books, the stream and the demo account.

The generated levels are the house's resting orders, the stream's activity is a built-in
participant moving them (and, when asked, taking liquidity), and the demo account is an
engine member whose orders rest in the same public book and whose fills move its cash.
"""

from __future__ import annotations

import httpx

from kalshi_api.auth import load_signer
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_dollars
from kalshi_sim.account import Account
from kalshi_sim.engine_types import OrderRequest
from kalshi_sim.markets import MarketSet, deltas_of
from kalshi_sim.participant import HOUSE, TAKER


def _book_from_orders(markets: MarketSet, ticker: str) -> tuple[dict[int, int], dict[int, int]]:
    """Both public legs rebuilt from every member's resting orders (a book's seeded house
    orders become objects on first need: ``best_prices`` needs them)."""
    engine = markets.engine
    engine.best_prices(ticker)
    yes: dict[int, int] = {}
    no: dict[int, int] = {}
    for member in engine.members():
        for order in engine.orders(member, ticker=ticker, status="resting"):
            if order.side == "bid":
                yes[order.price_micros] = yes.get(order.price_micros, 0) + order.remaining_centi
            else:
                leg = MICROS_PER_DOLLAR - order.price_micros
                no[leg] = no.get(leg, 0) + order.remaining_centi
    return yes, no


def _money(markets: MarketSet) -> int:
    engine = markets.engine
    pairs = sum(max(p.position_centi, 0) for m in engine.members() for p in engine.positions(m))
    held = sum(engine.cash_micros(m) + engine.reserved_micros(m) for m in engine.members())
    return held + engine.fees_collected_micros() + pairs * 10_000


def test_levels_when_book_grown_equal_the_house_resting_orders() -> None:
    markets = MarketSet.generate(12, seed=4)
    for ticker in markets.tickers():
        levels = markets.levels(ticker)
        yes, no = _book_from_orders(markets, ticker)
        assert (tuple(sorted(yes.items())), tuple(sorted(no.items()))) == (levels.yes, levels.no)
        for price, _ in levels.yes:
            members = {o.member for o in markets.engine.level_orders(ticker, "bid", price)}
            assert members == {HOUSE}


def test_next_activity_when_quoting_moves_one_level_and_keeps_book_equal_to_orders() -> None:
    markets = MarketSet.generate(10, seed=2)
    moved = 0
    for _ in range(400):
        outcome = markets.next_activity()
        assert outcome is not None
        deltas = deltas_of(outcome.book_changes)
        assert len(deltas) == 1
        assert outcome.trades == ()  # take_probability 0: quotes only
        moved += 1
    assert moved == 400
    for ticker in markets.tickers():
        levels = markets.levels(ticker)
        yes, no = _book_from_orders(markets, ticker)
        assert (tuple(sorted(yes.items())), tuple(sorted(no.items()))) == (levels.yes, levels.no)


def test_next_activity_when_taking_trades_with_demo_order_and_moves_demo_cash() -> None:
    markets = MarketSet.generate(6, seed=1, take_probability=1.0)
    account = Account(markets, balance_cents=10_000)
    ticker = markets.tickers()[0]
    fair = markets.market(ticker).fair_micros
    # A demo bid above every house bid: the best YES bid, first in line for a take.
    order_id = account.add_resting_order(ticker, yes_price_micros=fair, count_centi=50_000)
    assert markets.levels(ticker).yes[-1] == (fair, 50_000)
    start_money = _money(markets)
    filled = []
    for _ in range(3_000):
        outcome = markets.next_activity()
        if outcome is None:
            continue
        assert len(deltas_of(outcome.book_changes)) <= 1
        filled += [f for f in outcome.fills if f.member == account.member]
        if filled:
            break
    assert filled, "the participant never took the demo's best bid"
    fill = filled[0]
    assert (fill.order_id, fill.yes_price_micros, fill.is_taker) == (order_id, fair, False)
    position = account.position(ticker)
    assert position is not None and position.position_centi == fill.count_centi
    # the fixture order held no cash: its fill cost comes straight out of the balance
    cash_micros = 10_000 * 10_000 - fill.count_centi * fair // 100
    assert account.balance_cents() == cash_micros // 10_000
    assert _money(markets) == start_money
    assert markets.engine.positions(TAKER)


def test_demo_order_when_rested_shows_in_public_book_and_cancel_removes_it() -> None:
    markets = MarketSet.generate(6, seed=0)
    account = Account.demo(markets, seed=0)
    order = account.resting_orders()[0]
    leg, leg_price = (
        ("yes", order.yes_price_micros)
        if order.book_side == "bid"
        else ("no", MICROS_PER_DOLLAR - order.yes_price_micros)
    )
    before = dict(getattr(markets.levels(order.ticker), leg)).get(leg_price, 0)
    assert before >= order.remaining_centi
    assert account.cancel_order(order.order_id)
    after = dict(getattr(markets.levels(order.ticker), leg)).get(leg_price, 0)
    assert before - after == order.remaining_centi


def test_user_order_when_crossing_house_quote_fills_at_house_price() -> None:
    markets = MarketSet.generate(6, seed=3)
    ticker = markets.tickers()[0]
    with markets.lock:
        markets.engine.open_account("alice", {0: 100 * MICROS_PER_DOLLAR})
        best_no = max(markets.engine.book(ticker)["no"])
        ask = MICROS_PER_DOLLAR - best_no
        outcome = markets.engine.place(OrderRequest("alice", ticker, "bid", 100, ask + 20_000), 1)
    assert outcome.fill_centi == 100
    assert {f.yes_price_micros for f in outcome.fills} == {ask}
    assert {f.member for f in outcome.fills if not f.is_taker} == {HOUSE}
    assert deltas_of(outcome.book_changes)[0].side == "no"


def test_account_when_recreated_over_same_books_starts_clean() -> None:
    markets = MarketSet.generate(8, seed=0)
    first = Account.demo(markets, seed=0)
    first.add_orders(5)
    second = Account.demo(markets, seed=0)
    assert len(second.orders()) == 4
    assert second.summary().balance_cents == 50_000
    yes, no = _book_from_orders(markets, markets.tickers()[0])
    levels = markets.levels(markets.tickers()[0])
    assert (tuple(sorted(yes.items())), tuple(sorted(no.items()))) == (levels.yes, levels.no)


def test_rest_when_demo_order_fills_reports_it_in_book_positions_and_balance(make_exchange) -> None:
    """Over sockets: the exchange's REST reads (what the supervisor's sync reads) show the demo
    member's order in the public book and, once another member takes it, the fill in the demo's
    orders, position and balance."""
    exchange = make_exchange(markets=6)
    signer = load_signer(exchange.key_id, exchange.private_key_path, env={})
    account = exchange.account
    ticker = exchange.markets.tickers()[4]
    fair = exchange.markets.market(ticker).fair_micros
    before_cents = account.balance_cents(0)
    with httpx.Client(base_url=exchange.rest_url, trust_env=False, timeout=5.0) as http:

        def signed(path: str) -> dict:  # type: ignore[type-arg]
            headers = signer.headers("GET", "/trade-api/v2" + path)
            return http.get(path, headers=headers).json()

        order_id = account.add_resting_order(ticker, yes_price_micros=fair, count_centi=300)
        book = http.get(f"/markets/{ticker}/orderbook").json()["orderbook_fp"]
        assert book["yes_dollars"][-1] == [format_dollars(fair), "3.00"]
        with exchange.markets.lock:
            engine = exchange.markets.engine
            engine.open_account("bob", {0: 100 * MICROS_PER_DOLLAR})
            taken = engine.place(OrderRequest("bob", ticker, "ask", 200, fair), 1)
        assert taken.fill_centi == 200
        book = http.get(f"/markets/{ticker}/orderbook").json()["orderbook_fp"]
        assert book["yes_dollars"][-1] == [format_dollars(fair), "1.00"]
        orders = {o["order_id"]: o for o in signed("/portfolio/orders")["orders"]}
        assert (orders[order_id]["fill_count_fp"], orders[order_id]["remaining_count_fp"]) == (
            "2.00",
            "1.00",
        )
        positions = {p["ticker"]: p for p in signed("/portfolio/positions")["market_positions"]}
        assert positions[ticker]["position_fp"] == "2.00"
        cost_micros = 200 * fair // 100
        balance = signed("/portfolio/balance?exchange_index=0")["balance"]
        assert balance == (before_cents * 10_000 - cost_micros) // 10_000


def test_publish_when_fixture_moves_book_reports_changes_with_book_seq() -> None:
    markets = MarketSet.generate(6, seed=0)
    published = []
    markets.add_listener(published.append)
    account = Account(markets, balance_cents=1_000)
    ticker = markets.tickers()[0]
    before = markets.engine.book_seq(ticker)
    order_id = account.add_resting_order(ticker, count_centi=700, client_order_id="fx-1")
    assert account.cancel_order(order_id)
    changes = [c for outcome in published for c in outcome.book_changes]
    assert [(c.delta_centi, c.client_order_id, c.member) for c in changes] == [
        (700, "fx-1", account.member),
        (-700, "fx-1", account.member),
    ]
    assert [c.book_seq for c in changes] == [before + 1, before + 2]
    assert markets.engine.book_seq(ticker) == before + 2
    markets.next_delta()
    assert not [c for outcome in published[2:] for c in outcome.book_changes]  # the stream's own


def test_fixture_orders_when_trading_paused_still_rest_and_cancel() -> None:
    """Test mutators set the stage whatever the calendar says (a paused exchange included)."""
    markets = MarketSet.generate(6, seed=0)
    account = Account(markets)
    ticker = markets.tickers()[0]
    with markets.lock:
        markets.engine.trading_pause(1, cancels_allowed=False)
    order_id = account.add_resting_order(ticker)
    assert account.order(order_id).status == "resting"  # type: ignore[union-attr]
    assert account.cancel_order(order_id)


def test_next_delta_when_exchange_paused_keeps_house_quoting_but_takes_nothing() -> None:
    markets = MarketSet.generate(6, seed=5, take_probability=0.5)
    with markets.lock:
        markets.engine.trading_pause(1, cancels_allowed=False)
    activity = [markets.next_activity() for _ in range(300)]
    moved = [a for a in activity if a is not None and a.book_changes]
    assert len(moved) > 100  # the background world keeps quoting through the pause
    assert not [t for a in activity if a is not None for t in a.trades]


def test_next_activity_when_same_seed_and_books_read_in_other_order_repeats_exactly() -> None:
    """Takes included: ids, trades and fills depend on the seed only, never on which books a
    reader grew first."""
    first, second = (
        MarketSet.generate(40, seed=8, take_probability=0.3, clock_ms=lambda: 1_000)
        for _ in range(2)
    )
    for ticker in reversed(second.tickers()):
        second.levels(ticker)
    runs = [[markets.next_activity() for _ in range(600)] for markets in (first, second)]
    assert runs[0] == runs[1]
    assert any(outcome is not None and outcome.trades for outcome in runs[0])
