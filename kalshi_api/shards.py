"""Account money across exchange shards: what one balance call cannot tell.

Since 2026-08 collateral is held per shard (``exchange_index``) [SH]. ``GET
/portfolio/balance`` without a shard returns the *total* balance but a
``portfolio_value`` covering only the requested shard (the default shard when none is
named), so the true portfolio value needs one scoped call per shard. The shards come
from ``GET /exchange/status`` (``exchange_index_statuses``).

Exchanges differ in what they do with an unknown parameter; if every scoped answer is
identical to the unscoped one (the shard filter was ignored), adding them up would
count the account several times over, so the unscoped answer is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from kalshi_api.models import Balance, ExchangeStatus
from kalshi_api.rest import KalshiRestClient


@dataclass(frozen=True, slots=True)
class ShardMoney:
    """One shard's collateral in integer cents, and whether it accepts orders now."""

    exchange_index: int
    balance: int
    portfolio_value: int
    trading_active: bool


@dataclass(frozen=True, slots=True)
class AccountMoney:
    """Totals across shards (what READY reports) and the per-shard breakdown."""

    balance: int
    portfolio_value: int
    shards: tuple[ShardMoney, ...]
    scoped: bool
    """False when the exchange ignored ``exchange_index`` and the totals are unscoped."""


def read_account_money(client: KalshiRestClient, status: ExchangeStatus) -> AccountMoney:
    """The balance and portfolio value of every shard ``status`` lists, and their totals."""
    unscoped = client.get_balance()
    scoped = {index: client.get_balance(exchange_index=index) for index in status.shard_indexes()}
    return combine(unscoped, scoped, status)


def combine(unscoped: Balance, scoped: dict[int, Balance], status: ExchangeStatus) -> AccountMoney:
    """Totals from per-shard answers; pure, so every exchange variant is testable."""
    ignored = len(scoped) > 1 and all(
        (b.balance, b.portfolio_value) == (unscoped.balance, unscoped.portfolio_value)
        for b in scoped.values()
    )
    shards = tuple(
        ShardMoney(
            exchange_index=index,
            balance=balance.balance,
            portfolio_value=balance.portfolio_value,
            trading_active=status.trading_active_on(index),
        )
        for index, balance in sorted(scoped.items())
    )
    if ignored or not shards:
        return AccountMoney(
            balance=unscoped.balance,
            portfolio_value=unscoped.portfolio_value,
            shards=shards,
            scoped=False,
        )
    # The unscoped balance is documented as the total, and stays right even for a shard
    # the status does not list yet; the portfolio value has no unscoped total.
    return AccountMoney(
        balance=unscoped.balance,
        portfolio_value=sum(s.portfolio_value for s in shards),
        shards=shards,
        scoped=True,
    )
