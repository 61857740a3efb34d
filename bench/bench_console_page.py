"""The console page in Chromium: time from a state transition to its card being drawn.

Usage::

    .venv/bin/python bench/bench_console_page.py [--recoveries 5]

A supervisor runs in-process against the embedded exchange; the page is opened in headless
Chromium (``/usr/bin/chromium``, driven by Playwright). Each round injects an orderbook crash
and waits for READY and for the page to catch up; each card carries ``data-rendered-at``
(the page's ``Date.now()`` when it was drawn), compared with the event's own timestamp
(created) and with the moment the recorder got it (recorded). Both clocks are this machine's
wall clock. The test (``tests/browser/test_console_page.py``) checks the order of these
moments; the durations are figures, printed here.

Target: median recorded-to-card under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.handle import Supervisor
from bench.support import machine_info
from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.faults import ActorFault, FaultTarget, InjectFault
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig

CHROMIUM = Path("/usr/bin/chromium")
WAIT = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recoveries", type=int, default=5)
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        print(f"bench_console_page: no Chromium at {CHROMIUM} (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    exchange = EmbeddedExchange(
        ExchangeConfig(markets=6, delta_rate=200.0, read_tokens_per_second=None)
    ).start()
    config = SupervisorConfig(
        rest_url=exchange.rest_url,
        ws_url=exchange.ws_url,
        status_port=0,
        sync_interval=3600.0,
        restart=RestartSettings(min_backoff=0.01, max_backoff=0.05, random_factor=0.0),
    )
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    supervisor = Supervisor(config, signer, exchange=exchange, rng=random.Random(1))
    created: list[float] = []
    recorded: list[float] = []
    try:
        supervisor.start()
        assert supervisor.console is not None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()
            page.goto(f"{supervisor.console.url}/")
            page.wait_for_function("() => window.__console.instance !== null", timeout=WAIT * 1000)
            for _ in range(args.recoveries):
                after = supervisor.recorder.last_id
                supervisor.inject(InjectFault(target=FaultTarget.ORDERBOOK, fault=ActorFault.CRASH))
                if not supervisor.recorder.wait_for_state(State.READY, WAIT, after=after):
                    raise SystemExit("bench_console_page: no READY after the injected crash")
                page.wait_for_function(
                    "id => window.__console.renderedId >= id",
                    arg=supervisor.recorder.last_id,
                    timeout=WAIT * 1000,
                )
                cards = page.evaluate(
                    """() => [...document.querySelectorAll('.card[data-event-id]')]
                         .map(c => [Number(c.dataset.eventId), Number(c.dataset.renderedAt)])"""
                )
                records = {r.id: r for r in supervisor.recorder.records_since(after)[0]}
                for event_id, rendered in cards:
                    record = records.get(event_id)
                    if record is None:
                        continue
                    created.append(rendered - record.event.timestamp.timestamp() * 1000)
                    recorded.append(rendered - record.recorded_at * 1000)
            browser.close()
    finally:
        supervisor.shutdown(timeout=3.0)
        exchange.stop()
    print(machine_info())
    print(
        json.dumps(
            {
                "transition_created_to_card_ms_median": round(statistics.median(created), 1),
                "transition_recorded_to_card_ms_median": round(statistics.median(recorded), 1),
                "max_ms": round(max(created), 1),
                "n": len(created),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
