"""Order groups over REST: the exchange's fill-velocity kill switch (protocol §8.9).

Why use them: REST and WebSocket have no cancel-on-disconnect (§8.10). A group caps the
contracts *filled* across its orders in a rolling 15-second window; past the cap (or on a
manual trigger) it turns Triggered, its resting orders are cancelled and new ones refused
until it is reset. One group per service, triggered on a fault, is the substitute. Every
action is a write (write bucket, sent once, typed refusal or outcome-unknown), except the
two reads.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from kalshi_api.errors import UnexpectedResponseError
from kalshi_api.models import NonNegativeDecimal
from kalshi_api.order_models import count_text
from kalshi_api.rest import KalshiRestClient

__all__ = ["CreatedOrderGroup", "OrderGroup", "OrderGroupApi", "OrderGroupDetail"]

GROUPS = "/portfolio/order_groups"
GROUP = GROUPS + "/{order_group_id}"
MAX_CONTRACTS_LIMIT = Decimal(1_000_000)


def _none_to_empty(value: object) -> object:
    return () if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class CreatedOrderGroup(_Model):
    order_group_id: str
    subaccount: int | None = None
    exchange_index: int | None = None


class OrderGroup(_Model):
    """One group of the list (which says ``id`` where create says ``order_group_id``).
    ``is_auto_cancel_enabled`` reads as "triggered" on demo (UNCONFIRMED)."""

    id: str = Field(validation_alias=AliasChoices("id", "order_group_id"))
    contracts_limit_fp: NonNegativeDecimal | None = Field(
        default=None, validation_alias=AliasChoices("contracts_limit_fp", "contracts_limit")
    )
    is_auto_cancel_enabled: bool | None = None
    exchange_index: int | None = None
    subaccount: int | None = None


class OrderGroupDetail(_Model):
    is_auto_cancel_enabled: bool | None = None
    orders: Annotated[tuple[Any, ...], BeforeValidator(_none_to_empty)] = ()
    contracts_limit_fp: NonNegativeDecimal | None = Field(
        default=None, validation_alias=AliasChoices("contracts_limit_fp", "contracts_limit")
    )
    exchange_index: int | None = None


def _limit(contracts_limit: Decimal) -> str:
    text = count_text(contracts_limit, "contracts_limit")
    if Decimal(text) < 1 or Decimal(text) > MAX_CONTRACTS_LIMIT:
        raise ValueError(f"contracts_limit must be 1 to 1,000,000, got {contracts_limit}")
    return text


class OrderGroupApi:
    """Order groups of one account through one REST client."""

    def __init__(self, client: KalshiRestClient) -> None:
        self.client = client

    def create(
        self,
        contracts_limit: Decimal,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> CreatedOrderGroup:
        body: dict[str, Any] = {"contracts_limit_fp": _limit(contracts_limit)}
        if subaccount is not None:
            body["subaccount"] = subaccount
        if exchange_index is not None:
            body["exchange_index"] = exchange_index
        reply = self.client.write("POST", GROUPS + "/create", body=body, route=GROUPS + "/create")
        return self.client.parse(CreatedOrderGroup, reply.data, GROUPS + "/create")

    def list(
        self, *, subaccount: int | None = None, exchange_index: int | None = None
    ) -> tuple[OrderGroup, ...]:
        data = self.client.read(
            GROUPS, {"subaccount": subaccount, "exchange_index": exchange_index}
        )
        groups = data.get("order_groups") or []
        if not isinstance(groups, list):
            raise UnexpectedResponseError("'order_groups' is not a list", method="GET", path=GROUPS)
        return tuple(self.client.parse(OrderGroup, g, GROUPS) for g in groups)

    def get(self, order_group_id: str, **scope: int | None) -> OrderGroupDetail:
        path = f"{GROUPS}/{_id(order_group_id)}"
        return self.client.parse(OrderGroupDetail, self.client.read(path, scope), path)

    def delete(self, order_group_id: str, **scope: int | None) -> None:
        """Delete the group; its resting orders are cancelled."""
        self._action("DELETE", order_group_id, "", scope)

    def reset(self, order_group_id: str, **scope: int | None) -> None:
        """Clear the trigger and the 15-second counter."""
        self._action("PUT", order_group_id, "/reset", scope)

    def trigger(self, order_group_id: str, **scope: int | None) -> None:
        """Trigger by hand: resting group orders cancelled, new ones refused until reset."""
        self._action("PUT", order_group_id, "/trigger", scope)

    def set_limit(self, order_group_id: str, contracts_limit: Decimal, **scope: int | None) -> None:
        """A limit below the current window's volume triggers the group."""
        body = {"contracts_limit_fp": _limit(contracts_limit)}
        self._action("PUT", order_group_id, "/limit", scope, body)

    def _action(
        self,
        method: str,
        order_group_id: str,
        suffix: str,
        scope: dict[str, int | None],
        body: dict[str, Any] | None = None,
    ) -> None:
        unknown = set(scope) - {"subaccount", "exchange_index"}
        if unknown:
            raise TypeError(f"unexpected scope arguments: {sorted(unknown)}")
        self.client.write(
            method,
            f"{GROUPS}/{_id(order_group_id)}{suffix}",
            params=scope,
            body=body,
            route=GROUP + suffix,
        )


def _id(order_group_id: str) -> str:
    if not isinstance(order_group_id, str) or not order_group_id:
        raise ValueError("order_group_id is required")
    return quote(order_group_id, safe="")
