"""What the exchange says this account may spend: ``GET /account/limits`` and
``GET /account/endpoint_costs``, plus ``GET /exchange/user_data_timestamp``.

Why read them rather than hard-code a tier table: the published tables disagree with each
other and change (protocol §8.8 lists two), and the write bucket a client must pace itself
to is only known from ``/account/limits``. The costs per method and path come from
``/account/endpoint_costs``; :mod:`kalshi_api.write_pacer` builds its bucket from both.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from kalshi_api.models import ExactDecimal, OptionalTime

if TYPE_CHECKING:
    from kalshi_api.rest import KalshiRestClient

__all__ = [
    "AccountLimits",
    "BucketLimits",
    "EndpointCost",
    "EndpointCosts",
    "UserDataTimestamp",
    "get_account_limits",
    "get_endpoint_costs",
    "get_user_data_timestamp",
]


def _none_to_empty(value: object) -> object:
    return () if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class BucketLimits(_Model):
    """One token bucket: tokens added per second, and the most it holds."""

    refill_rate: ExactDecimal
    bucket_capacity: ExactDecimal


class AccountLimits(_Model):
    """``GET /account/limits``: the tier and both buckets (``grants`` kept as sent)."""

    usage_tier: str | None = None
    read: BucketLimits
    write: BucketLimits
    grants: Annotated[tuple[Any, ...], BeforeValidator(_none_to_empty)] = ()


class EndpointCost(_Model):
    """One exception to the default cost; ``path`` may hold ``{placeholders}``."""

    method: str
    path: str
    cost: ExactDecimal


class EndpointCosts(_Model):
    """``GET /account/endpoint_costs``: the default cost and the exceptions."""

    default_cost: ExactDecimal = Decimal(10)
    endpoint_costs: Annotated[tuple[EndpointCost, ...], BeforeValidator(_none_to_empty)] = ()


class UserDataTimestamp(_Model):
    """``GET /exchange/user_data_timestamp``: how fresh REST portfolio reads are (§8.2)."""

    as_of_time: OptionalTime = None


def get_account_limits(client: KalshiRestClient) -> AccountLimits:
    path = "/account/limits"
    return client.parse(AccountLimits, client.read(path), path)


def get_endpoint_costs(client: KalshiRestClient) -> EndpointCosts:
    path = "/account/endpoint_costs"
    return client.parse(EndpointCosts, client.read(path), path)


def get_user_data_timestamp(client: KalshiRestClient) -> datetime | None:
    """The time up to which portfolio reads are complete (None if the exchange gave none)."""
    path = "/exchange/user_data_timestamp"
    return client.parse(UserDataTimestamp, client.read(path), path).as_of_time
