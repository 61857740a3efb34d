"""The console page's trading parts in a real browser (Chromium, Playwright): the trading state
in the header, the kill switch (with its confirm) and resume, the halt report, and the open
orders / fills / positions panels fed from the trading events.

The console server here is real and so is the page; the supervisor side is the recording
stand-in of tests/app/test_console_trading.py, and the events are recorded into the server's
recorder as the gateway would publish them, so each test controls exactly what the page sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.service_spec import ServiceSpec
from app.console_server import ConsoleServer
from app.event_log import EventRecorder
from kalshi_sim.exchange import EmbeddedExchange
from messages.orders import OrderStatus, TradingState
from messages.states import State
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    TradingStateChanged,
)
from tests.app.test_console_trading import StandInTrading
from tests.browser.test_console_page import ARTIFACTS, PAGE_WAIT_MS
from tests.harness import WAIT, running_supervisor, start_exchange
from tests.resting_quoter import RestingQuoter

pytestmark = pytest.mark.slow  # a real Chromium

TOKEN = "console-trading-token-0123456789"


@pytest.fixture
def trading() -> StandInTrading:
    return StandInTrading()


@pytest.fixture
def recorder() -> EventRecorder:
    recorder = EventRecorder()
    recorder(TradingStateChanged(state=TradingState.ACTIVE))
    return recorder


def _serve(recorder: EventRecorder, trading: StandInTrading, enabled: bool) -> Iterator[Any]:
    server = ConsoleServer(
        recorder,
        port=0,
        token=TOKEN,
        inject=lambda fault: {},
        trading=trading,
        trading_enabled=enabled,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(recorder: EventRecorder, trading: StandInTrading) -> Iterator[ConsoleServer]:
    yield from _serve(recorder, trading, True)


def _open(page: Any, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("[data-testid=trading-state]", timeout=PAGE_WAIT_MS)


def _trading_state(page: Any) -> str:
    return str(page.get_attribute("[data-testid=trading-state]", "data-state"))


def _wait_trading_state(page: Any, state: str) -> None:
    page.wait_for_function(
        "s => document.querySelector('[data-testid=trading-state]').dataset.state === s",
        arg=state,
        timeout=PAGE_WAIT_MS,
    )


def _wait_halt_answered(page: Any) -> None:
    page.wait_for_function(
        "() => !(document.querySelector('[data-testid=halt-report]').textContent || '')"
        ".startsWith('halting')",
        timeout=PAGE_WAIT_MS,
    )


def test_kill_button_when_confirmed_halts_and_shows_halted_and_the_report(
    page: Any, server: ConsoleServer, trading: StandInTrading
) -> None:
    _open(page, server)
    _wait_trading_state(page, "active")
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.fill("#fault-token", TOKEN)
    page.click("[data-testid=halt-button]")
    _wait_trading_state(page, "halted")
    page.wait_for_selector("[data-testid=halt-report]:not([hidden])", timeout=PAGE_WAIT_MS)
    _wait_halt_answered(page)  # it says "halting: ..." until /halt answers

    assert page.inner_text("[data-testid=trading-state]") == "trading HALTED"
    report = page.inner_text("[data-testid=halt-report]")
    assert report.startswith("HALTED")
    assert "halted (console kill switch) in 12 ms: 1 cancel-all call(s), 2 verify read(s)" in report
    assert "0 of ours still resting" in report
    assert len(dialogs) == 1 and "Halt trading now?" in dialogs[0]
    assert trading.calls.count(("halt", "console kill switch")) == 1
    assert page.is_disabled("[data-testid=halt-button]")
    assert page.is_visible("[data-testid=resume-button]")


def test_kill_button_when_confirm_is_dismissed_sends_nothing(
    page: Any, server: ConsoleServer, trading: StandInTrading
) -> None:
    _open(page, server)
    _wait_trading_state(page, "active")
    dismissed: list[str] = []

    def dismiss(dialog: Any) -> None:
        dismissed.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.fill("#fault-token", TOKEN)
    page.click("[data-testid=halt-button]")  # returns once the (synchronous) confirm is answered

    assert len(dismissed) == 1
    assert [call for call in trading.calls if call[0] == "halt"] == []
    assert _trading_state(page) == "active"
    assert page.is_hidden("[data-testid=halt-report]")


def test_resume_button_when_halted_by_an_event_resumes_and_the_report_goes(
    page: Any, server: ConsoleServer, recorder: EventRecorder, trading: StandInTrading
) -> None:
    _open(page, server)
    trading.state = TradingState.HALTED  # the gateway's own view, as /status polls it
    recorder(TradingStateChanged(state=TradingState.HALTED, reason="daily_loss"))
    recorder(
        HaltCompleted(
            reason="daily_loss", duration_ms=40, cancel_all_calls=2, verify_reads=3, remaining=0
        )
    )
    _wait_trading_state(page, "halted")
    page.wait_for_selector("[data-testid=halt-report]:not([hidden])", timeout=PAGE_WAIT_MS)
    assert "halted (daily_loss) in 40 ms" in page.inner_text("[data-testid=halt-report]")
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#fault-token", TOKEN)

    page.click("[data-testid=resume-button]")
    _wait_trading_state(page, "active")

    assert ("resume", None) in trading.calls
    page.wait_for_selector("[data-testid=resume-button]", state="hidden", timeout=PAGE_WAIT_MS)
    assert "trading resumed" in page.inner_text("[data-testid=halt-report]")


def _order(
    cid: str, status: OrderStatus, filled: str = "0", reason: str | None = None
) -> OrderUpdateEvent:
    return OrderUpdateEvent(
        reason=reason,
        service="quoter",
        client_order_id=cid,
        order_id=f"o-{cid}",
        ticker="KXT-B",
        side="bid",
        status=status,
        count=Decimal("10.00"),
        filled=Decimal(filled),
        price=Decimal("0.4200"),
    )


def test_panels_when_orders_fill_show_open_orders_fills_and_positions(
    page: Any, server: ConsoleServer, recorder: EventRecorder, trading: StandInTrading
) -> None:
    trading.error = RuntimeError("no status: the panels must come from the events alone")
    _open(page, server)
    recorder(_order("ks-q-1", OrderStatus.RESTING))
    recorder(_order("ks-q-2", OrderStatus.RESTING))
    recorder(_order("ks-q-2", OrderStatus.CANCELED, reason="canceled"))
    recorder(_order("ks-q-1", OrderStatus.PARTIALLY_FILLED, "2.50"))
    recorder(
        FillEvent(
            service="quoter",
            trade_id="t-9",
            order_id="o-ks-q-1",
            client_order_id="ks-q-1",
            ticker="KXT-B",
            side="bid",
            count=Decimal("2.50"),
            price=Decimal("0.42"),
            fee=Decimal("0.0175"),
            is_taker=False,
        )
    )
    recorder(
        PositionChanged(
            ticker="KXT-B", position="2.50", realized_pnl="0", unrealized_pnl="-0.05", fees="0.0175"
        )
    )
    page.wait_for_selector(
        "[data-testid=trading-fills] tr[data-trade-id=t-9]", timeout=PAGE_WAIT_MS
    )
    page.wait_for_selector(
        "[data-testid=trading-positions] tr[data-ticker=KXT-B]", timeout=PAGE_WAIT_MS
    )

    orders = page.eval_on_selector_all(
        "[data-testid=trading-orders] tr[data-client-order-id]",
        "rows => rows.map(r => [r.dataset.clientOrderId, r.dataset.status, r.innerText])",
    )
    assert [(cid, status) for cid, status, _ in orders] == [("ks-q-1", "partially_filled")]
    assert orders[0][2].split("\t") == [
        "ks-q-1",
        "quoter",
        "KXT-B",
        "buy YES",
        "$0.42",
        "10",
        "2.5",
        "partially filled",
    ]
    fill = page.inner_text("[data-testid=trading-fills] tr[data-trade-id=t-9]").split("\t")
    assert fill[1:] == ["quoter", "KXT-B", "bought YES", "2.5", "$0.42", "$0.0175", "maker"]
    position = page.inner_text("[data-testid=trading-positions] tr[data-ticker=KXT-B]")
    assert position.split("\t") == ["KXT-B", "long YES 2.5", "$0.00", "-$0.05", "$0.0175"]
    log = page.inner_text("#log")
    assert "quoter buy YES 10 KXT-B @ $0.42: partially filled, 2.5 filled · ks-q-1" in log
    assert "quoter buy YES 10 KXT-B @ $0.42: canceled · ks-q-2" in log  # not "(canceled)"


@pytest.mark.parametrize("width", [390, 1280])
def test_panels_when_filled_with_orders_never_scroll_the_page_sideways(
    browser: Any,
    server: ConsoleServer,
    recorder: EventRecorder,
    trading: StandInTrading,
    width: int,
) -> None:
    trading.error = RuntimeError("no status: the panels come from the events alone")
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        _open(page, server)
        for n in range(8):
            recorder(_order(f"ks-wide-order-id-{n:02d}-0123456789abcdef", OrderStatus.RESTING))
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=trading-orders] tr[data-status]')"
            ".length === 8",
            timeout=PAGE_WAIT_MS,
        )
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
    finally:
        context.close()

    assert widths[0] <= widths[1]


def test_page_when_orderbook_only_has_no_trading_element_at_all(
    page: Any, recorder: EventRecorder, trading: StandInTrading
) -> None:
    for server in _serve(recorder, trading, False):
        page.goto(f"{server.url}/")
        page.wait_for_function(
            "() => window.__console.instance !== null && window.__console.tradingEnabled === false",
            timeout=PAGE_WAIT_MS,
        )
        page.wait_for_function("() => window.__books.refreshes > 0", timeout=PAGE_WAIT_MS)
        ids = page.eval_on_selector_all("[id]", "nodes => nodes.map(n => n.id)")

    assert "books" in ids  # the page is drawn ...
    assert not [i for i in ids if i.startswith(("trading", "halt", "resume"))]  # ... but not these


# -- the real thing: a supervisor on the embedded exchange, its gateway and a trading service ----
SCREENSHOT_HALTED = ARTIFACTS / "console-halted.png"


def _resting_of_ours(exchange: EmbeddedExchange, ids: set[str]) -> list[str]:
    return [
        order.client_order_id
        for view in exchange.truth().values()
        for order in view.orders
        if order.client_order_id in ids and order.status == "resting"
    ]


def test_kill_button_when_a_service_order_rests_halts_trading_and_none_of_ours_rests(
    page: Any,
) -> None:
    exchange = start_exchange()
    services = [ServiceSpec("resting_quoter", RestingQuoter, {"orders": 2})]
    try:
        with running_supervisor(exchange, services=services) as supervisor:
            assert supervisor.wait_for_state(State.READY, WAIT)
            page.goto(f"{supervisor.console.url}/")  # type: ignore[union-attr]
            rows = "[data-testid=trading-orders] tr[data-status=resting]"
            page.wait_for_function(
                "sel => document.querySelectorAll(sel).length === 2", arg=rows, timeout=PAGE_WAIT_MS
            )
            shown = page.eval_on_selector_all(
                rows, "rs => rs.map(r => [r.dataset.clientOrderId, r.children[1].textContent])"
            )
            ours = {cid for cid, _ in shown}
            assert {service for _, service in shown} == {"resting_quoter"}
            assert sorted(_resting_of_ours(exchange, ours)) == sorted(ours)
            _wait_trading_state(page, "active")
            page.on("dialog", lambda dialog: dialog.accept())
            page.fill("#fault-token", supervisor.control_token)

            page.click("[data-testid=halt-button]")
            _wait_trading_state(page, "halted")
            page.wait_for_selector("[data-testid=halt-report]:not([hidden])", timeout=PAGE_WAIT_MS)
            _wait_halt_answered(page)  # it says "halting: ..." until /halt answers
            page.wait_for_function(
                "sel => document.querySelectorAll(sel).length === 0", arg=rows, timeout=PAGE_WAIT_MS
            )
            report = page.inner_text("[data-testid=halt-report]")
            resting_after = _resting_of_ours(exchange, ours)
            SCREENSHOT_HALTED.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_HALTED), full_page=True)
    finally:
        exchange.stop()

    assert report.startswith("HALTED")
    assert "halted (console kill switch)" in report and "0 of ours still resting" in report
    assert resting_after == []
