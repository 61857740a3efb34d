"""``kalshi-supervisor exchange`` with trading knobs, in a real subprocess: a member key, a
trading fault armed from the command line, the truth URL, bad knobs refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kalshi_api.auth import load_signer

pytestmark = pytest.mark.slow  # subprocesses: every test starts kalshi-supervisor exchange

STARTUP_TIMEOUT = 60.0
PREFIX = "/trade-api/v2"


def _command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from cli.main import main; sys.exit(main())",
        "exchange",
        *args,
    ]


@pytest.fixture
def scrubbed_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_STATE_HOME"] = str(tmp_path)
    return env


@pytest.fixture
def served(scrubbed_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], dict]]:
    proc = subprocess.Popen(
        _command(
            "--markets",
            "3",
            "--rate",
            "0",
            "--member",
            "bob",
            "--tier",
            "premier",
            "--cancel-all-tail",
            "0",
            "--trading-fault",
            "drop_write",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=scrubbed_env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the address line (or EOF on failure)
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield proc, json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=STARTUP_TIMEOUT)


def test_exchange_when_knobs_given_serves_a_member_with_the_fault_armed(
    served: tuple[subprocess.Popen[str], dict],
) -> None:
    _proc, published = served
    [bob] = published["members"]
    assert bob["member"] == "bob" and Path(bob["private_key"]).stat().st_mode & 0o777 == 0o600
    signer = load_signer(bob["key_id"], Path(bob["private_key"]), env={})
    base = published["rest_url"].split(PREFIX)[0]
    with httpx.Client(base_url=base, trust_env=False, timeout=10.0) as http:

        def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            headers = signer.headers(method, PREFIX + path)
            return http.request(method, PREFIX + path, headers=headers, **kwargs)  # type: ignore[arg-type]

        assert call("GET", "/account/limits").json()["usage_tier"] == "premier"
        ticker = http.get(PREFIX + "/markets").json()["markets"][0]["ticker"]
        body = {
            "ticker": ticker,
            "side": "bid",
            "count": "1",
            "price": "0.40",
            "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "taker_at_cross",
            "client_order_id": "cli-1",
        }
        with pytest.raises(httpx.TransportError):
            call("POST", "/portfolio/events/orders", json=body)  # --trading-fault drop_write
        truth = httpx.get(published["truth_url"], trust_env=False, timeout=10.0).json()
        orders = truth["members"]["bob"]["orders"]
        assert [o["client_order_id"] for o in orders] == ["cli-1"]
        assert call("POST", "/portfolio/events/orders", json=body).status_code == 409


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--tier", "gold"), "unknown usage tier"),
        (("--trading-fault", "melt_down"), "unknown trading fault"),
    ],
)
def test_exchange_when_a_trading_knob_is_bad_prints_one_line_and_exits_2(
    scrubbed_env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    done = subprocess.run(
        _command("--markets", "1", "--rate", "0", *args),
        capture_output=True,
        text=True,
        env=scrubbed_env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=STARTUP_TIMEOUT,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in done.stderr
