"""Per-service risk limits and the automatic halt switches from ``run``'s flags, the
environment and the config file, down to the order gateway: parsed exactly, a bad value is
one line, and a limit given as a flag refuses an order over real sockets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from app.handle import Supervisor
from cli.run import (
    ConfigError,
    build_parser,
    config_from_settings,
    flags_from_args,
    parse_service_limits,
    services_from_settings,
)
from cli.settings import ENV_PREFIX, SettingsError, load_settings
from messages.orders import OrderStatus, RiskLimits
from messages.states import State
from supervision.config import GatewaySettings
from tests.actors.gateway_support import RECORDERS, WAIT, Recorder, quiet_market
from tests.conftest import ExchangeFactory
from tests.harness import signer_for

D = Decimal
TRADER = "trader=tests.actors.gateway_support:Trader"


@pytest.fixture(autouse=True)
def _no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def _gateway(*argv: str, config: Path | None = None) -> GatewaySettings:
    flags = flags_from_args(build_parser().parse_args(list(argv)))
    settings, sources = load_settings(flags, config)
    services_from_settings(settings, sources)
    return config_from_settings(settings, sources, rest_url="http://x", ws_url="ws://x").gateway


def test_service_limit_flags_reach_the_gateway_exactly_and_merge_per_name() -> None:
    gateway = _gateway(
        "--service", TRADER, "--service-option", "trader.key=k",
        "--service-limit", "trader:max_order_count=10,max_notional=12.50",
        "--service-limit", "trader:max_position=0.5,max_open_orders=3",
    )
    assert gateway.service_risk_limits == {
        "trader": RiskLimits(max_order_count=D(10), max_notional=D("12.50"),
                             max_position=D("0.5"), max_open_orders=3)
    }
    limits = gateway.service_risk_limits["trader"]
    assert isinstance(limits.max_notional, Decimal) and str(limits.max_notional) == "12.50"
    assert gateway.risk_limits == RiskLimits()  # the global ones are untouched


def test_halt_switches_default_on_and_each_flag_turns_one_off() -> None:
    default = _gateway()
    assert (default.halt_on_not_ready, default.halt_on_pause, default.halt_on_daily_loss,
            default.halt_on_group_trigger, default.cancel_orders_on_service_stop) == (
        True, True, True, True, True)
    assert _gateway("--no-halt-on-pause").halt_on_pause is False
    assert _gateway("--no-halt-on-not-ready").halt_on_not_ready is False
    assert _gateway("--no-halt-on-daily-loss").halt_on_daily_loss is False
    assert _gateway("--no-halt-on-group-trigger").halt_on_group_trigger is False
    off = _gateway("--no-cancel-orders-on-service-stop", "--no-halt-on-pause")
    assert off.cancel_orders_on_service_stop is False and off.halt_on_pause is False
    assert off.halt_on_not_ready is True


def test_limits_and_switches_from_the_file_and_environment_merge_under_the_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(
        'halt_on_group_trigger = false\n[service_limits.trader]\nmax_position = 20\n'
        'max_notional = "2.25"\n'
    )
    monkeypatch.setenv(f"{ENV_PREFIX}HALT_ON_PAUSE", "false")
    gateway = _gateway("--service", TRADER, "--service-option", "trader.key=k", config=config)
    assert gateway.service_risk_limits == {
        "trader": RiskLimits(max_position=D(20), max_notional=D("2.25"))
    }
    assert gateway.halt_on_pause is False and gateway.halt_on_group_trigger is False
    # merged per key: the flag's keys win, the file's others stay
    flagged = _gateway("--service", TRADER, "--service-option", "trader.key=k",
                       "--service-limit", "trader:max_order_count=1,max_position=2",
                       config=config)
    assert flagged.service_risk_limits == {
        "trader": RiskLimits(max_order_count=D(1), max_position=D(2), max_notional=D("2.25"))
    }


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["max_position=5"], "expected NAME:KEY=VALUE"),
        (["mm:"], "expected NAME:KEY=VALUE"),
        (["mm:max_position"], "'max_position' is not KEY=VALUE"),
        (["mm:max_position=5,"], "'' is not KEY=VALUE"),
        ([":max_position=5"], "expected NAME:KEY=VALUE"),
    ],
)
def test_parse_service_limits_when_malformed_says_so_in_one_line(
    items: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_service_limits(items)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("trader:max_positions=5", "--service-limit: service_limits.trader.max_positions: "
                                   "unknown setting"),
        ("trader:max_notional=-1", "service_limits.trader.max_notional: Input should be greater"),
        ("trader:max_order_count=ten", "service_limits.trader.max_order_count"),
        ("trader:max_open_orders=1.5", "service_limits.trader.max_open_orders"),
        ("trader:max_daily_loss=NaN", "service_limits.trader.max_daily_loss"),
    ],
)
def test_service_limit_when_a_key_or_value_is_bad_raises_one_line_naming_it(
    limit: str, expected: str
) -> None:
    flags = flags_from_args(build_parser().parse_args(["--service-limit", limit]))
    with pytest.raises(SettingsError) as caught:
        load_settings(flags)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_service_limit_for_a_service_not_configured_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        _gateway("--service", TRADER, "--service-option", "trader.key=k",
                 "--service-limit", "tradr:max_position=1")
    assert str(caught.value) == (
        "--service-limit: limits for unknown service(s): tradr (services: trader)"
    )


def test_service_limit_from_the_flag_refuses_an_order_over_it_and_admits_one_within(
    make_exchange: ExchangeFactory,
) -> None:
    """The path ``run`` takes (parser, settings, services, config), then a supervisor on the
    embedded exchange: the service's own limit refuses what the global ones would allow."""
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    key = "flag_limit"
    argv = [
        "--service", TRADER, "--service-option", f"trader.key={key}",
        "--service-limit", "trader:max_order_count=3",
        "--max-order-count", "100", "--market-count", "3", "--status-port", "0",
        "--sync-interval", "3600",
    ]
    flags = flags_from_args(build_parser().parse_args(argv))
    settings, sources = load_settings(flags)
    specs = services_from_settings(settings, sources)
    config = config_from_settings(settings, sources, rest_url=exchange.rest_url,
                                  ws_url=exchange.ws_url)
    recorder = Recorder()
    RECORDERS[key] = recorder
    supervisor = Supervisor(config, signer_for(exchange), services=specs, exchange=exchange)
    supervisor.start()
    try:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert recorder.wait(lambda r: r.ref is not None and r.ready)
        over = recorder.call(lambda s: s.trading.place(q.ticker, "bid", 4, q.below(1)))
        assert recorder.wait(lambda r: r.status_of(over) is OrderStatus.REJECTED)
        reason = recorder.last(over).reason or ""  # type: ignore[union-attr]
        assert "refused locally" in reason and "trader" in reason and "exceeds 3" in reason
        within = recorder.call(lambda s: s.trading.place(q.ticker, "bid", 3, q.below(1)))
        assert recorder.wait(lambda r: r.status_of(within) is OrderStatus.RESTING)
        member = exchange.account.member
        sent = {o.client_order_id for o in exchange.truth(member)[member].orders}
        assert over not in sent and within in sent
    finally:
        supervisor.shutdown(timeout=5.0)
        RECORDERS.pop(key, None)
