"""``cli.settings``: merge order and defaults, in-process (test_cli_process.py runs the CLI)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from cli.settings import ENV_PREFIX, RunSettings, SettingsError, load_settings
from messages.exchange import PauseTiming
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig
from supervision.policy import RestartType, Strategy

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def _no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not decide these tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_load_settings_when_no_source_gives_defaults_equal_to_the_config_models() -> None:
    settings, _ = load_settings({})
    config = settings.supervisor_config(rest_url="http://x", ws_url="ws://x")
    reference = SupervisorConfig(rest_url="http://x", ws_url="ws://x")

    assert config == reference
    assert config.restart == RestartSettings()


def test_load_settings_when_file_env_and_flags_overlap_flags_beat_env_beat_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.toml"
    config.write_text("sync_interval = 1\nmarket_count = 2\nmax_restarts = 3\nseries = 'FILE'\n")
    monkeypatch.setenv("KALSHI_SUPERVISOR_SYNC_INTERVAL", "11")
    monkeypatch.setenv("KALSHI_SUPERVISOR_MARKET_COUNT", "12")

    settings, sources = load_settings({"sync_interval": 21.0}, config)

    assert (settings.sync_interval, settings.market_count, settings.max_restarts) == (21.0, 12, 3)
    assert settings.series == "FILE"
    assert settings.min_backoff == 0.1  # nobody set it: the default
    assert sources.of("sync_interval") == "--sync-interval"
    assert sources.of("market_count") == "KALSHI_SUPERVISOR_MARKET_COUNT"
    assert sources.of("max_restarts") == f"config file {config}"
    assert sources.of("min_backoff") == ""


def test_load_settings_when_tables_come_from_env_and_file_parses_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.toml"
    config.write_text('markets = ["A-1", "B-2"]\n[restart_types]\nsync = "transient"\n')
    monkeypatch.setenv("KALSHI_SUPERVISOR_DEADLINES", '{"orderbook_connect": 5}')
    monkeypatch.setenv("KALSHI_SUPERVISOR_STRATEGY", "one_for_one")

    settings, _ = load_settings({}, config)

    assert settings.markets == ("A-1", "B-2")
    assert settings.deadlines == {State.ORDERBOOK_CONNECT: 5.0}
    assert settings.restart_types == {"sync": RestartType.TRANSIENT}
    assert settings.strategy is Strategy.ONE_FOR_ONE


def test_load_settings_when_markets_come_as_comma_string_from_env_splits_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KALSHI_SUPERVISOR_MARKETS", " A-1, B-2 ,")

    settings, _ = load_settings({})

    assert settings.markets == ("A-1", "B-2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("market_count = 'many'\n", "market_count:"),
        ("exchange_rate = -1\n", "exchange_rate:"),
        ("[deadlines]\nnowhere = 1\n", "deadlines.nowhere:"),
        ("log_level = 'LOUD'\n", "log_level:"),
        ("private_key = 5\n", "private_key:"),
    ],
)
def test_load_settings_when_file_value_bad_raises_one_line_naming_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(text)

    with pytest.raises(SettingsError) as caught:
        load_settings({}, config)

    message = str(caught.value)
    assert message.startswith(f"config file {config}: {expected}")
    assert "\n" not in message


def test_load_settings_when_file_is_not_utf8_raises_one_line(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_bytes(b"\xff\xfe = 1\n")

    with pytest.raises(SettingsError, match=r"not valid TOML"):
        load_settings({}, config)


def test_readme_example_toml_when_loaded_is_valid_and_means_what_it_says(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "the README lost its example config"
    config = tmp_path / "supervisor.toml"
    config.write_text(block.group(1))

    settings, _ = load_settings({}, config)

    assert settings.env.value == "paper"
    assert settings.private_key == Path("/etc/kalshi/demo.pem")
    assert settings.deadlines[State.ORDERBOOK_CONNECT] == 5.0
    assert settings.restart_types == {
        "sync": RestartType.TRANSIENT,
        "spread_alert": RestartType.TRANSIENT,
    }
    assert settings.services == ("examples/spread_alert.py:SpreadAlert",)
    assert settings.service_options == {"spread_alert": {"threshold": "0.03"}}
    settings.supervisor_config(rest_url="http://x", ws_url="ws://x")  # valid end to end


def test_run_settings_when_every_run_flag_listed_has_a_field() -> None:
    """Every ``run`` flag is a setting (so an env variable and a file key exist for it)."""
    from cli.run import FlagRow, build_parser

    rows: list[FlagRow] = []
    build_parser(rows)
    dests = {row.dest for row in rows if row.dest != "config"}

    assert dests == set(RunSettings.model_fields)


def test_load_settings_when_market_count_all_from_flag_env_or_file_means_every_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.arguments import market_count

    flag, _ = load_settings({"market_count": market_count("all")})
    monkeypatch.setenv("KALSHI_SUPERVISOR_MARKET_COUNT", "ALL")
    env, _ = load_settings({})
    monkeypatch.delenv("KALSHI_SUPERVISOR_MARKET_COUNT")
    file = tmp_path / "s.toml"
    file.write_text('market_count = "all"\n')
    toml, _ = load_settings({}, file)
    for settings in (flag, env, toml):
        config = settings.supervisor_config(rest_url="http://x", ws_url="ws://x")
        assert config.market_count is None
    assert market_count("7") == 7


def test_load_settings_when_pause_settings_come_from_each_source_reach_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--exchange-check-interval`` and the pause re-check bounds, from a flag, a variable
    and the file at once, land in ``SupervisorConfig`` (``pause_timing`` is one model)."""
    file = tmp_path / "s.toml"
    file.write_text("pause_far_poll = 60\n")
    monkeypatch.setenv("KALSHI_SUPERVISOR_PAUSE_MAX_POLL", "2")

    settings, sources = load_settings({"exchange_check_interval": 0.5, "pause_min_poll": 0.1}, file)
    config = settings.supervisor_config(rest_url="http://x", ws_url="ws://x")

    assert config.exchange_check_interval == 0.5
    assert config.pause_timing == PauseTiming(min_poll=0.1, max_poll=2.0, far_poll=60.0)
    assert sources.of("pause_max_poll") == "KALSHI_SUPERVISOR_PAUSE_MAX_POLL"
    assert sources.of("pause_far_poll") == f"config file {file}"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"pause_min_poll": 2.0}, "pause_min_poll (2) must not exceed pause_max_poll (1)"),
        ({"pause_max_poll": 40.0}, "pause_max_poll (40) must not exceed pause_far_poll (30)"),
    ],
)
def test_load_settings_when_pause_bounds_out_of_order_raises_one_line_in_setting_names(
    flags: dict[str, float], expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(flags)

    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PAUSE_MIN_POLL", "-1", "KALSHI_SUPERVISOR_PAUSE_MIN_POLL: pause_min_poll: Input should"),
        ("PAUSE_FAR_POLL", "inf", "KALSHI_SUPERVISOR_PAUSE_FAR_POLL: pause_far_poll:"),
        ("EXCHANGE_CHECK_INTERVAL", "0", "exchange_check_interval: Input should be greater"),
        ("EXCHANGE_CHECK_INTERVAL", "soon", "exchange_check_interval: Input should be a valid"),
    ],
)
def test_config_from_settings_when_pause_value_bad_names_the_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """Values argparse never sees (variables, the file) are checked by the models, and the
    error names the setting the user wrote, not ``pause_timing.min_poll``."""
    from cli.run import ConfigError, config_from_settings

    monkeypatch.setenv(f"{ENV_PREFIX}{variable}", value)
    with pytest.raises((SettingsError, ConfigError)) as caught:
        settings, sources = load_settings({})
        config_from_settings(settings, sources, rest_url="http://x", ws_url="ws://x")

    message = str(caught.value)
    assert expected in message
    assert f"{ENV_PREFIX}{variable}" in message
    assert "\n" not in message


def test_load_settings_when_risk_limits_come_from_flags_and_file_reach_the_gateway_exactly(
    tmp_path: Path,
) -> None:
    config = tmp_path / "s.toml"
    config.write_text('max_daily_loss = "25.50"\nmax_open_orders = 40\n')

    settings, _ = load_settings({"max_position": "10", "max_notional": "0.1"}, config)
    limits = settings.supervisor_config(rest_url="http://x", ws_url="ws://x").gateway.risk_limits

    assert limits.max_position == Decimal("10") and limits.max_notional == Decimal("0.1")
    assert (limits.max_daily_loss, limits.max_open_orders) == (Decimal("25.50"), 40)
    assert limits.max_order_count is None


def test_load_settings_when_a_risk_limit_is_a_float_in_the_file_refuses_it_in_one_line(
    tmp_path: Path,
) -> None:
    config = tmp_path / "s.toml"
    config.write_text("max_notional = 0.1\n")

    with pytest.raises(SettingsError) as caught:
        load_settings({}, config)

    assert "max_notional" in str(caught.value) and "float" in str(caught.value)
    assert "\n" not in str(caught.value)
