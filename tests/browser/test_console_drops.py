"""The console page under an event burst the bus cannot hold: it says events were dropped,
and its header shows the supervisor's true state although READY itself was dropped.

The set-up is ``tests/app/test_event_burst.py``'s: a listener holds the bus's dispatcher on
the first event while a real supervisor runs to READY through a bus that holds 2 events, so
the recorder (and the page's feed behind it) never hears of READY.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.handle import Supervisor
from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange
from messages.states import State
from tests.app.test_event_burst import HeldListener, ReadySeen
from tests.harness import WAIT, make_config

pytestmark = pytest.mark.slow  # a real Chromium


def test_page_when_bus_drops_events_shows_the_count_and_the_true_state(
    page: Any, exchange: EmbeddedExchange
) -> None:
    held, seen = HeldListener(), ReadySeen()
    supervisor = Supervisor(
        make_config(exchange),
        load_signer(exchange.key_id, exchange.private_key_path),
        exchange=exchange,
        listeners=[held],
        inline_listeners=[seen],
        event_capacity=2,
    )
    supervisor.start()
    try:
        assert held.entered.wait(WAIT)
        assert seen.ready.wait(WAIT)
        assert supervisor.console is not None
        assert supervisor.recorder.state is not State.READY  # the log cannot know READY

        page.goto(supervisor.console.url)
        dropped = page.get_by_test_id("events-dropped")
        dropped.wait_for(state="visible", timeout=WAIT * 1000)
        header = page.get_by_test_id("current-state")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=current-state]').textContent === 'READY'",
            timeout=WAIT * 1000,
        )
        shown = int(dropped.inner_text().split()[0])
        source = header.get_attribute("data-source")
        total = supervisor.events_dropped()
    finally:
        held.release.set()
        supervisor.shutdown(timeout=3.0)

    assert 0 < shown <= total  # a count the page read from /status, never more than dropped
    assert source == "status"  # READY came from the supervisor's snapshot, not from the log
