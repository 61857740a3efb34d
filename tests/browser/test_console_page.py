"""The console page in a real browser (Chromium from Debian, driven by Playwright).

Outside CI a machine without Chromium skips these tests and says why; in CI (``CI=true``)
a missing browser is a failure. Run locally: ``apt-get install chromium`` and
``.venv/bin/python -m pytest tests/browser``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StateTransition
from messages.exchange import PauseTiming
from messages.faults import ActorFault, FaultTarget, InjectFault
from messages.states import State
from tests.harness import (
    READY_KEYS,
    SEED_KEYS,
    TRADING_CLIENT_KEYS,
    WAIT,
    make_config,
    metadata_of,
    running_supervisor,
    truth_depth,
    truth_top,
)

pytestmark = pytest.mark.slow  # a real Chromium

ARTIFACTS = Path(
    os.environ.get(
        "KALSHI_SUPERVISOR_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
    )
)
SCREENSHOT = ARTIFACTS / "console-ready.png"
"""The page at READY, saved by every run as a test artifact (``docs/console.png`` is the
README's copy, refreshed by hand from here)."""
PAGE_WAIT_MS = WAIT * 1000
SEED_CARDS = [
    State.INITIALIZING,
    State.ORDERBOOK_CONNECT,
    State.TRADING_CLIENT_CONNECT,
    State.KALSHI_DATA_SYNC,
    State.READY,
]


def open_console(page: Any, supervisor: Supervisor) -> None:
    assert supervisor.console is not None
    page.goto(f"{supervisor.console.url}/")
    wait_state(page, State.READY)


def wait_state(page: Any, state: State) -> None:
    page.wait_for_function(
        "s => document.querySelector('[data-testid=current-state]').textContent === s",
        arg=state.name,
        timeout=PAGE_WAIT_MS,
    )


def wait_caught_up(page: Any, supervisor: Supervisor) -> None:
    """Until the page has received and drawn every event the recorder holds."""
    page.wait_for_function(
        "id => window.__console.renderedId >= id",
        arg=supervisor.recorder.last_id,
        timeout=PAGE_WAIT_MS,
    )


def card_metadata(page: Any, state: State, live: bool = True) -> dict[str, Any]:
    """The key/values shown on the live pass's card for ``state``, as JSON values."""
    return page.evaluate(
        """([state, live]) => {
            const pass = document.querySelector(`.pass[data-live="${live}"]`);
            const card = pass.querySelector(`.card[data-state="${state}"]`);
            const table = card.querySelector(':scope > table.kv');
            const out = {};
            for (const row of table.querySelectorAll(':scope > tbody > tr, :scope > tr')) {
                out[row.dataset.key] = JSON.parse(row.querySelector(':scope > td.v').dataset.value);
            }
            return out;
        }""",
        [state.name, live],
    )


def wait_books(page: Any, count: int) -> None:
    """Until the books panel shows ``count`` markets (it polls ``/books`` once a second)."""
    page.wait_for_function(
        "n => document.querySelectorAll('#books tr.book').length === n",
        arg=count,
        timeout=PAGE_WAIT_MS,
    )


def shown_tops(page: Any) -> dict[str, dict[str, Any]]:
    """Each books row's market, top of book and state, as the page shows them."""
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#books tr.book')].map(row => {
            const cell = (side) => row.querySelector(`td[data-field=best_yes_${side}]`);
            const value = (text) => text === '' ? null : text;
            return {
                ticker: row.dataset.ticker,
                stale: row.dataset.stale === 'true',
                best_yes_bid: value(cell('bid').dataset.value),
                best_yes_bid_size: value(cell('bid').dataset.size),
                best_yes_ask: value(cell('ask').dataset.value),
                best_yes_ask_size: value(cell('ask').dataset.size),
                tag: row.querySelector('.tag').textContent,
                text: row.innerText,
            };
        })"""
    )
    return {row["ticker"]: row for row in rows}


def shown_depth(page: Any) -> dict[str, list[dict[str, str]]]:
    return page.evaluate(
        """() => Object.fromEntries(['bid', 'ask'].map(side => [side,
            [...document.querySelectorAll(`#book-depth table[data-side=${side}] tr[data-price]`)]
              .map(r => ({price: r.dataset.price, size: r.dataset.size}))]))"""
    )


def stage_health(page: Any) -> dict[str, dict[str, str]]:
    """The stage-health table: stage -> {liveness, failures, restarts}."""
    rows = page.eval_on_selector_all(
        "#health tr[data-stage]",
        """rows => rows.map(r => [r.dataset.stage, {
            liveness: r.querySelector('[data-field=liveness]').textContent,
            failures: r.children[2].textContent, restarts: r.children[3].textContent}])""",
    )
    return dict(rows)


def log_ids(page: Any) -> list[int]:
    """Every event id the log holds (a row of folded repeats holds several)."""
    ids = page.eval_on_selector_all(
        "#log tr.row", "rows => rows.flatMap(r => r.dataset.ids.split(',').map(Number))"
    )
    return sorted(ids)


# -- tests ---------------------------------------------------------------------------------------
def test_page_at_ready_shows_the_five_seed_cards_with_their_own_metadata(
    page: Any, exchange: EmbeddedExchange
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        wait_caught_up(page, supervisor)
        shown = {state: card_metadata(page, state) for state in SEED_CARDS}
        statuses = page.eval_on_selector_all(
            ".pass[data-live=true] .card",
            "cards => cards.map(c => [c.dataset.state, c.dataset.status])",
        )
        truth = {state: metadata_of(supervisor, state) for state in SEED_CARDS}
        latencies = page.evaluate(
            """() => [...document.querySelectorAll('.card[data-event-id]')]
                 .map(c => Number(c.dataset.renderedAt))"""
        )
        health = stage_health(page)
        wait_books(page, len(exchange.markets.tickers()))  # the screenshot shows the books
        first = exchange.markets.tickers()[0]
        page.click(f'#books tr.book[data-ticker="{first}"]')  # ... and one market's depth
        page.wait_for_selector(
            f'#book-depth .depth-title[data-ticker="{first}"]', timeout=PAGE_WAIT_MS
        )
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the shot
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    for state in SEED_CARDS:
        assert shown[state] == truth[state], state
        if state in SEED_KEYS:
            assert set(shown[state]) == SEED_KEYS[state], state
    assert set(shown[State.READY]) == READY_KEYS | {"trading_client"}
    assert set(shown[State.READY]["trading_client"]) == TRADING_CLIENT_KEYS
    assert "balance" not in shown[State.ORDERBOOK_CONNECT]
    assert statuses == [[s.name, "done"] for s in SEED_CARDS]
    assert health == {
        name: {"liveness": "answering pings", "failures": "0", "restarts": "0"}
        for name in ("orderbook", "trading", "sync", "order_gateway")  # the gateway: a service
    }
    assert len(latencies) == 5
    assert SCREENSHOT.stat().st_size > 10_000


def test_page_in_orderbook_only_mode_shows_no_trading_card_or_field(
    page: Any, exchange: EmbeddedExchange
) -> None:
    config = make_config(exchange, trading_enabled=False)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        wait_caught_up(page, supervisor)
        cards = page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.state)")
        text = page.inner_text("body").lower()
        dom = page.content().lower()
        ready = card_metadata(page, State.READY)

    assert cards == ["INITIALIZING", "ORDERBOOK_CONNECT", "READY"]
    assert set(ready) == READY_KEYS
    for word in ("trading", "balance", "portfolio", "kalshi_data_sync", "positions"):
        assert word not in text, word
        assert word not in dom, word


def test_page_when_a_fault_is_injected_from_the_panel_shows_error_then_recovery(
    page: Any, exchange: EmbeddedExchange
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        after = supervisor.recorder.last_id
        page.fill("#fault-token", supervisor.control_token)
        page.select_option("#fault-target", "orderbook")
        page.select_option("#fault-kind", "crash")
        page.click("#fault-form button[type=submit]")
        error = supervisor.recorder.wait_for_state(State.ERROR, WAIT, after=after)
        assert error is not None
        assert supervisor.recorder.wait_for_state(State.READY, WAIT, after=after)
        wait_caught_up(page, supervisor)
        wait_state(page, State.READY)
        earlier = card_metadata(page, State.ERROR, live=False)
        failed = page.eval_on_selector_all(
            '.pass[data-live=false] .card[data-status="failed"]',
            "cs => cs.map(c => c.dataset.state)",
        )
        title = page.inner_text(".pass[data-live=true] .pass-title")
        recovery = card_metadata(page, State.STARTUP)
        logged = page.eval_on_selector_all(
            "#log tr.row[data-type=fault_injected]", "rows => rows.map(r => r.textContent)"
        )
        reply = page.inner_text("[data-testid=fault-reply]")
        health = stage_health(page)

    assert earlier == error.metadata.model_dump(mode="json")
    assert health["orderbook"] == {
        "liveness": "answering pings",
        "failures": "1",
        "restarts": "1",
    }
    assert earlier["actor"] == "orderbook"
    assert failed == ["READY"]
    assert "recovery" in title
    assert recovery["restarting"][0] == "orderbook"
    assert len(logged) == 1 and "injected crash into orderbook" in logged[0]
    assert reply.startswith("accepted")


def test_page_after_reload_and_server_restart_has_every_event_once(
    page: Any, exchange: EmbeddedExchange
) -> None:
    with running_supervisor(exchange) as supervisor:
        console = supervisor.console
        assert console is not None
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        wait_caught_up(page, supervisor)
        page.reload()
        wait_state(page, State.READY)
        wait_caught_up(page, supervisor)
        after_reload = log_ids(page)

        console.stop()  # the server goes away; events keep happening meanwhile
        page.wait_for_function(
            "() => document.querySelector('[data-testid=connection]').textContent"
            " !== 'console live'",
            timeout=PAGE_WAIT_MS,
        )
        after = supervisor.recorder.last_id
        supervisor.inject(InjectFault(target=FaultTarget.ORDERBOOK, fault=ActorFault.CRASH))
        assert supervisor.recorder.wait_for_state(State.READY, WAIT, after=after)
        console.start()
        wait_caught_up(page, supervisor)
        final = log_ids(page)
        last = supervisor.recorder.last_id

    assert after_reload == list(range(1, after + 1))
    assert final == list(range(1, last + 1))


def test_cards_when_a_recovery_is_recorded_render_each_transition_after_it_in_id_order(
    page: Any, exchange: EmbeddedExchange
) -> None:
    """Every transition of a recovery gets its card for its own state, each drawn after the
    recorder had it. How long that takes is a figure: ``bench/bench_console_page.py``."""
    with running_supervisor(exchange) as supervisor:
        assert supervisor.console is not None
        page.goto(f"{supervisor.console.url}/")
        page.wait_for_function("() => window.__console.instance !== null", timeout=PAGE_WAIT_MS)
        after = supervisor.recorder.last_id
        supervisor.inject(InjectFault(target=FaultTarget.ORDERBOOK, fault=ActorFault.CRASH))
        assert supervisor.recorder.wait_for_state(State.READY, WAIT, after=after)
        wait_caught_up(page, supervisor)
        wait_state(page, State.READY)
        cards = page.evaluate(
            """() => [...document.querySelectorAll('.card[data-event-id]')]
                 .map(c => [Number(c.dataset.eventId), Number(c.dataset.renderedAt),
                            c.dataset.state])"""
        )
        records = {r.id: r for r in supervisor.recorder.records_since(after)[0]}
    transition_ids = sorted(
        event_id for event_id, r in records.items() if r.event.type == "state_transition"
    )
    drawn = sorted(card for card in cards if card[0] in records)
    assert [event_id for event_id, _, _ in drawn] == transition_ids, (cards, transition_ids)
    assert transition_ids[-1] == max(records)  # READY, the recovery's last event, is drawn
    for event_id, rendered, state in drawn:
        event = records[event_id].event
        assert isinstance(event, StateTransition) and state == event.to_state.name
        # Drawn after the recorder had it (one wall clock; 1 ms of rounding allowed).
        assert rendered + 1 >= records[event_id].recorded_at * 1000, (event_id, rendered)


def test_books_panel_shows_every_market_at_the_truths_top_and_its_depth_on_click(
    page: Any, exchange: EmbeddedExchange
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        exchange.pause_stream()
        supervisor.book_digests()  # a barrier: every delta the exchange sent is applied
        tickers = exchange.markets.tickers()
        open_console(page, supervisor)
        wait_books(page, len(tickers))
        tops = shown_tops(page)
        depths = {}
        for ticker in (tickers[0], tickers[2]):  # two-sided, and YES bids only
            page.click(f'#books tr.book[data-ticker="{ticker}"]')
            page.wait_for_selector(
                f'#book-depth .depth-title[data-ticker="{ticker}"]', timeout=PAGE_WAIT_MS
            )
            depths[ticker] = shown_depth(page)
        counters = page.eval_on_selector_all(
            "#stream-health [data-counter]", "rows => rows.map(r => r.dataset.counter)"
        )

    assert set(tops) == set(tickers)
    for ticker in tickers:
        truth = truth_top(exchange, ticker)
        shown = tops[ticker]
        assert {k: shown[k] for k in truth if k in shown} == {
            k: v for k, v in truth.items() if k in shown
        }, ticker
        assert shown["tag"] == "live"
        for price in (truth["best_yes_bid"], truth["best_yes_ask"]):
            if price is not None:
                assert price in shown["text"]
    for ticker, shown in depths.items():
        truth = truth_depth(exchange, ticker)
        assert shown == {"bid": truth["yes_bids"], "ask": truth["yes_asks"]}, ticker
    assert depths[tickers[2]]["ask"] == []
    assert {"gaps", "resyncs", "reconnects", "malformed_frames"} <= set(counters)


def pause_rows(page: Any) -> list[dict[str, str]]:
    """The pause banner's rows: shard, scope and each shown field's text."""
    return page.eval_on_selector_all(
        "[data-testid=pause-banner] .pause",
        """rows => rows.map(r => ({
            shard: r.dataset.shard, scope: r.dataset.scope,
            title: r.querySelector('strong').textContent,
            resume: r.querySelector('[data-field=resume]').textContent,
            pausedFor: r.querySelector('[data-field=paused-for]').textContent }))""",
    )


def wait_pause_rows(page: Any, keys: list[str]) -> None:
    """Until the banner shows exactly these ``shard/scope`` rows (none: the banner is gone)."""
    page.wait_for_function(
        """keys => {
            const box = document.querySelector('[data-testid=pause-banner]');
            const shown = [...box.querySelectorAll('.pause')]
                .map(r => `${r.dataset.shard}/${r.dataset.scope}`);
            return JSON.stringify(shown) === JSON.stringify(keys)
                && box.hidden === (keys.length === 0);
        }""",
        arg=keys,
        timeout=PAGE_WAIT_MS,
    )


def test_pause_banner_shows_each_pause_injected_into_the_exchange_and_goes_on_resume(
    page: Any, exchange: EmbeddedExchange
) -> None:
    """Pauses injected into the embedded exchange behind a running supervisor: from the page's
    fault panel and through ``Supervisor.inject``; the banner follows the pause events, a
    reload redraws it from the feed's snapshot, and it goes when the exchange resumes.

    While the whole exchange is paused its status is a 503 that says nothing per shard, so
    the banner shows that one pause; the shards' trading pauses come back after it. A re-check
    waits for a far estimate at most ``far_poll`` (1 s here), so the exchange's short pause
    is seen ending soon after it ends."""
    config = make_config(
        exchange,
        exchange_check_interval=3600.0,
        pause_timing=PauseTiming(min_poll=0.1, max_poll=0.5, far_poll=1.0),
    )
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.console is not None
        assert supervisor.wait_for_state(State.READY, WAIT)
        open_console(page, supervisor)
        banner_hidden_at_ready = page.is_hidden("[data-testid=pause-banner]")
        page.fill("#fault-token", supervisor.control_token)
        page.select_option("#fault-target", "exchange")
        page.select_option("#fault-kind", "pause_trading")
        page.fill("#fault-shard", "2")
        page.click("#fault-form button[type=submit]")
        wait_pause_rows(page, ["2/trading"])
        reply = page.inner_text("[data-testid=fault-reply]")
        without_estimate = pause_rows(page)

        supervisor.inject(
            InjectFault(target=FaultTarget.EXCHANGE, fault="pause_trading", shard=1, resume_in=600)
        )
        wait_pause_rows(page, ["1/trading", "2/trading"])
        page.wait_for_function(  # the new estimate (one for the exchange) reaches both rows
            "() => [...document.querySelectorAll('[data-testid=pause-banner] .pause')]"
            ".every(r => r.dataset.resumeEstimate)",
            timeout=PAGE_WAIT_MS,
        )
        shards = pause_rows(page)
        metrics = httpx.get(f"{supervisor.console.url}/metrics").text
        page.reload()  # the page starts over from the hello's snapshot
        wait_pause_rows(page, ["1/trading", "2/trading"])
        after_reload = pause_rows(page)

        supervisor.inject(
            InjectFault(target=FaultTarget.EXCHANGE, fault="pause_exchange", resume_in=1.0)
        )
        wait_pause_rows(page, ["all/exchange"])
        whole = pause_rows(page)
        wait_pause_rows(page, ["1/trading", "2/trading"])  # it ended on its own
        supervisor.inject(InjectFault(target=FaultTarget.EXCHANGE, fault="resume"))
        wait_pause_rows(page, [])
        state = page.inner_text("[data-testid=current-state]")
        failures = [e for e in supervisor.recorder.events() if e.type == "stage_failure"]

    assert banner_hidden_at_ready
    assert reply.startswith("accepted")
    assert [(r["title"], r["resume"]) for r in without_estimate] == [
        ("Trading paused on shard 2", "no resume estimate")
    ]
    assert [r["title"] for r in shards] == [
        "Trading paused on shard 1",
        "Trading paused on shard 2",
    ]
    for row in shards:
        assert row["resume"].startswith("estimated resume "), row
        assert "(in 9 min" in row["resume"] or "(in 10 min" in row["resume"], row
        assert row["pausedFor"].startswith("paused for "), row
    assert [r["title"] for r in after_reload] == [r["title"] for r in shards]
    assert 'kalshi_supervisor_exchange_paused{scope="trading",shard="1"} 1.0' in metrics
    assert 'kalshi_supervisor_exchange_paused{scope="trading",shard="2"} 1.0' in metrics
    assert "kalshi_supervisor_exchange_pauses 2.0" in metrics
    assert [(r["title"], r["resume"].startswith("estimated resume")) for r in whole] == [
        ("Exchange paused", True)
    ]
    assert state == State.READY.name
    assert failures == []
