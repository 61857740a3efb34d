"""The console page's rough edges a newcomer hit, each checked in Chromium against a real
supervisor on the embedded exchange: the stream's state in the header, no sideways scroll,
book rows that survive refreshes, each card's own entry number, labelled units, a quiet log,
and no 404 on load."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from tests.browser.test_console_page import (
    ARTIFACTS,
    PAGE_WAIT_MS,
    card_metadata,
    open_console,
    wait_books,
    wait_caught_up,
    wait_state,
)
from tests.harness import WAIT, make_config, running_supervisor

pytestmark = pytest.mark.slow  # a real Chromium

HEAL_TIMEOUT = 60.0
"""Long, so a dropped stream stays dropped in READY (no reconnection cycle) for the test."""


def new_page(browser: Any, width: int, height: int = 900) -> Any:
    return browser.new_context(viewport={"width": width, "height": height}).new_page()


def sideways(page: Any) -> int:
    """How far the page could scroll sideways (0: never)."""
    return int(
        page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def wait_refreshes(page: Any, more: int) -> None:
    """Until the books panel has been refreshed ``more`` more times from now."""
    start = page.evaluate("() => window.__books.refreshes")
    page.wait_for_function(
        "n => window.__books.refreshes >= n", arg=start + more, timeout=PAGE_WAIT_MS
    )


# -- the header follows the orderbook stream -------------------------------------------------
def test_header_when_stream_drops_shows_it_down_after_the_drop_and_a_banner_until_it_heals(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    config = make_config(exchange, heal_timeout=HEAL_TIMEOUT)
    page = new_page(browser, 1280)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stream-state]').dataset.state === 'live'",
            timeout=PAGE_WAIT_MS,
        )
        # Every change of the header's stream pill, in order, with the event id the page had
        # seen when it changed: the ordering evidence, not a clock.
        page.evaluate(
            """() => {
                const pill = document.querySelector('[data-testid=stream-state]');
                window.__pillLog = [];
                new MutationObserver(() => window.__pillLog.push(
                    [pill.dataset.state, window.__console.lastId])).observe(
                    pill, {attributes: true, attributeFilter: ['data-state']});
            }"""
        )
        before = supervisor.recorder.last_id
        exchange.ws.behaviour.upgrade_status = 500  # the stream cannot come back
        try:
            assert exchange.ws.drop_connections() >= 1
            page.wait_for_function(
                "() => document.querySelector('[data-testid=stream-state]')"
                ".dataset.state === 'down'",
                timeout=PAGE_WAIT_MS,
            )
            down_seen = page.evaluate("() => window.__pillLog")
            header = page.inner_text("header")
            state_classes = page.get_attribute("[data-testid=current-state]", "class")
            wait_refreshes(page, 2)  # the banner stays while the state lasts
            banner_later = page.inner_text("[data-testid=degraded-banner]")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "console-stream-down.png"))
            still_down = page.get_attribute("[data-testid=stream-state]", "data-state")
        finally:
            exchange.ws.behaviour.upgrade_status = None
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stream-state]').dataset.state === 'live'",
            timeout=PAGE_WAIT_MS,
        )
        banner_hidden = page.is_hidden("[data-testid=degraded-banner]")
        interrupted = [
            r.id
            for r in supervisor.recorder.records_since(0)[0]
            if r.event.type == "stream_interrupted"
        ]

    assert interrupted and interrupted[0] > before
    first_change = down_seen[0]
    assert first_change[0] == "down"
    assert first_change[1] >= interrupted[0]  # drawn from the drop's event, after it
    assert "stream DOWN" in header and "READY" in header
    assert "degraded" in (state_classes or "")  # READY is no longer drawn as all-green
    assert still_down == "down"
    assert banner_later.startswith("READY, degraded")
    assert "Orderbook stream down" in banner_later
    assert banner_hidden


# -- no sideways scroll, whatever the events say ----------------------------------------------
def test_page_at_1280_when_the_longest_real_event_is_logged_never_scrolls_sideways(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        after = supervisor.recorder.last_id
        for fault in (ExchangeFault.WS_DROP, ExchangeFault.SEQ_GAP, ExchangeFault.MALFORMED_FRAME):
            supervisor.inject(InjectFault(target=FaultTarget.EXCHANGE, fault=fault))
        # The stream events carry the whole counters table: the longest real events.
        assert supervisor.recorder.wait_for(
            lambda events: any(e.type == "stream_healed" for e in events), WAIT, after=after
        )
        after = supervisor.recorder.last_id
        supervisor.inject(InjectFault(target=FaultTarget.SYNC, fault=ActorFault.CRASH))
        assert supervisor.recorder.wait_for_state(State.READY, WAIT, after=after)
        open_console(page, supervisor)
        wait_caught_up(page, supervisor)
        records = supervisor.recorder.records_since(0)[0]
        longest = max(records, key=lambda r: len(r.event.model_dump_json()))
        page.select_option("[data-testid=log-kind]", "*")  # every row shown
        row = f'#log tr.row[data-ids~="{longest.id}"], #log tr.row[data-id="{longest.id}"]'
        page.click(row)  # its detail (the whole JSON) opens below it
        page.wait_for_selector("#log tr.detail pre", timeout=PAGE_WAIT_MS)
        overflow_open = sideways(page)
        detail = page.inner_text("#log tr.detail pre")
        page.set_viewport_size({"width": 420, "height": 900})
        page.wait_for_function("() => document.documentElement.clientWidth === 420")
        overflow_narrow = sideways(page)
        longest_json = longest.event.model_dump_json()

    assert len(longest_json) > 400  # a long one really is on the page
    assert json.loads(detail)["id"] == longest.id
    assert overflow_open == 0
    assert overflow_narrow == 0


# -- a book row survives refreshes; its depth opens right below it ----------------------------
def test_books_row_when_clicked_survives_two_refreshes_with_its_depth_right_below(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280, height=700)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        tickers = exchange.markets.tickers()
        open_console(page, supervisor)
        wait_books(page, len(tickers))
        target = f'#books tr.book[data-ticker="{tickers[-1]}"]'
        page.locator(target).scroll_into_view_if_needed()
        # A click whose press and release straddle a refresh: lost when rows are rebuilt.
        box = page.locator(target).bounding_box()
        page.evaluate(f"() => {{ document.querySelector('{target}').__mark = 'same row'; }}")
        page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
        page.mouse.down()
        wait_refreshes(page, 1)
        page.mouse.up()
        page.wait_for_selector(
            f'#book-depth .depth-title[data-ticker="{tickers[-1]}"]', timeout=PAGE_WAIT_MS
        )
        wait_refreshes(page, 2)
        after = page.evaluate(
            f"""() => {{
                const row = document.querySelector('{target}');
                const depth = row.nextElementSibling;
                const r = row.getBoundingClientRect(), d = depth.getBoundingClientRect();
                return {{
                    same: row.__mark === 'same row',
                    selected: row.classList.contains('selected'),
                    depthBelow: depth.classList.contains('depth-row'),
                    gap: d.top - r.bottom,
                    depthTicker: depth.querySelector('.depth-title').dataset.ticker,
                    depthVisible: d.top < window.innerHeight && d.bottom > 0,
                }};
            }}"""
        )
        levels = page.eval_on_selector_all(
            "#book-depth table[data-side] tr[data-price]", "rows => rows.length"
        )

    assert after == {
        "same": True,
        "selected": True,
        "depthBelow": True,
        "gap": 0,
        "depthTicker": tickers[-1],
        "depthVisible": True,
    }
    assert levels > 0


# -- cards: their own entry numbers, labelled units ---------------------------------------------
def test_cards_of_an_earlier_pass_when_recovered_keep_their_own_entry_numbers_and_units(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        after = supervisor.recorder.last_id
        supervisor.inject(InjectFault(target=FaultTarget.SYNC, fault=ActorFault.CRASH))
        assert supervisor.recorder.wait_for_state(State.READY, WAIT, after=after)
        open_console(page, supervisor)
        wait_caught_up(page, supervisor)
        wait_state(page, State.READY)

        def meta(live: bool, state: str) -> str:
            return page.inner_text(
                f'.pass[data-live="{str(live).lower()}"] .card[data-state="{state}"] .card-meta'
            )

        earlier, latest = meta(False, "INITIALIZING"), meta(True, "INITIALIZING")
        ready = card_metadata(page, State.READY)
        shown = page.evaluate(
            """() => {
                const q = (s) => document.querySelector(s);
                const card = q('.pass[data-live=true] .card[data-state=READY]');
                const error = q('.pass[data-live=false] .card[data-state=ERROR]');
                const cell = (root, key, c) => root.querySelector(`tr[data-key=${key}] ${c}`);
                const text = (root, key) => cell(root, key, '> td.v').textContent;
                const label = (root, key) => cell(root, key, '.k').textContent;
                return {
                    balance: text(card, 'balance'), portfolio: text(card, 'portfolio_value'),
                    nextRestart: text(error, 'next_restart_in_ms'),
                    nextRestartLabel: label(error, 'next_restart_in_ms'),
                    figure: document.querySelector('[data-field=balance] .value').textContent,
                };
            }"""
        )

    assert "entry #1" in earlier and "entry #2" in latest
    cents = ready["trading_client"]["balance"]
    assert shown["balance"] == f"${cents // 100:,}.{cents % 100:02d}"
    assert shown["figure"] == shown["balance"]
    assert shown["portfolio"].startswith("$")
    assert shown["nextRestart"].endswith((" ms", " s"))
    assert shown["nextRestartLabel"] == "next_restart_in"


# -- the log: routine update syncs folded and hidden by default ------------------------------------
def test_log_when_update_syncs_repeat_folds_them_and_hides_them_by_default(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280)
    config = make_config(exchange, sync_interval=0.2)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        page.wait_for_function(
            """() => [...document.querySelectorAll('#log tr.row[data-routine=true]')]
                .some(r => r.dataset.ids.split(',').length >= 3)""",
            timeout=PAGE_WAIT_MS,
        )
        routine_visible = page.eval_on_selector_all(
            "#log tr.row[data-routine=true]", "rows => rows.filter(r => !r.hidden).length"
        )
        folded = page.eval_on_selector_all(
            "#log tr.row[data-routine=true]",
            "rows => rows.map(r => r.querySelector('[data-field=repeat]').textContent)",
        )
        page.select_option("[data-testid=log-kind]", "*")
        routine_shown = page.eval_on_selector_all(
            "#log tr.row[data-routine=true]", "rows => rows.filter(r => !r.hidden).length"
        )
        syncs = sum(e.type == "kalshi_sync_complete" for e in supervisor.recorder.events())

    assert routine_visible == 0
    assert any(text.startswith("\N{MULTIPLICATION SIGN}") for text in folded)
    assert routine_shown >= 1
    assert syncs >= 4


# -- loads cleanly ---------------------------------------------------------------------------------
def test_page_when_loaded_requests_nothing_that_fails(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        wait_refreshes(page, 1)
        icon = page.evaluate("() => document.querySelector('link[rel=icon]').href")

    assert failed == []
    assert icon.endswith("/static/favicon.svg")


def test_fault_panel_when_supervisor_refuses_says_refused_with_the_reason(
    browser: Any, exchange: EmbeddedExchange
) -> None:
    page = new_page(browser, 1280)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        page.fill("#fault-token", supervisor.control_token)
        # A stage this supervisor does not run (a renamed or dropped one, say).
        page.evaluate(
            """() => { const s = document.querySelector('#fault-target');
                       s.append(new Option('no_such_stage', 'no_such_stage'));
                       s.value = 'no_such_stage'; }"""
        )
        page.select_option("#fault-kind", "crash")
        page.click("#fault-form button[type=submit]")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=fault-reply]').dataset.outcome",
            timeout=PAGE_WAIT_MS,
        )
        reply = page.inner_text("[data-testid=fault-reply]")
        outcome = page.get_attribute("[data-testid=fault-reply]", "data-outcome")

    assert outcome == "refused"
    assert reply == "refused: no running no_such_stage stage"
