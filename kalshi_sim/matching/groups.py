"""Order groups: a member's orders under one filled-contracts limit over a rolling window.

A group whose window total passes its limit triggers: its resting orders are cancelled and
new orders naming it are refused until it is reset (KALSHI_PROTOCOL.md §8.7).
"""

from __future__ import annotations

from typing import Literal

from kalshi_sim.engine_types import GroupEvent, Outcome, Reject
from kalshi_sim.matching.core import EngineCore
from kalshi_sim.matching.records import Changes, GroupRecord

MIN_GROUP_LIMIT_CENTI = 100
MAX_GROUP_LIMIT_CENTI = 1_000_000 * 100


class GroupRules(EngineCore):
    """Creating, triggering, resetting, deleting and re-limiting groups; counting fills."""

    def create_group(
        self,
        member: str,
        limit_centi: int,
        now_ms: int,
        subaccount: int = 0,
        exchange_index: int = 0,
    ) -> tuple[str, Outcome]:
        """A new, active group with a filled-contracts limit of 1-1,000,000 contracts."""
        _check_group_limit(limit_centi)
        account = self._account(member)
        if len(account.groups) >= self.options.max_groups_per_member:
            raise Reject(400, "invalid_parameters", "too many order groups")
        group = GroupRecord(self._new_id(), member, subaccount, exchange_index, limit_centi)
        self._groups[group.group_id] = group
        account.groups[group.group_id] = group
        changes = Changes()
        self._group_event(group, "created", now_ms, changes)
        return group.group_id, changes.outcome(None, now_ms)

    def trigger_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        group = self._member_group(member, group_id)
        changes = Changes()
        self._trigger(group, now_ms, changes)
        return changes.outcome(None, now_ms)

    def reset_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        """Active again, its window emptied."""
        group = self._member_group(member, group_id)
        group.triggered = False
        group.window.clear()
        group.window_total = 0
        changes = Changes()
        self._group_event(group, "reset", now_ms, changes)
        return changes.outcome(None, now_ms)

    def delete_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        """Cancel its resting orders and forget it (a later read is 404)."""
        group = self._member_group(member, group_id)
        changes = Changes()
        for order in list(group.orders.values()):
            self._cancel_resting(order, self.options.group_cancel_reason, now_ms, changes)
        del self._groups[group_id]
        del self._accounts[member].groups[group_id]
        self._group_event(group, "deleted", now_ms, changes)
        return changes.outcome(None, now_ms)

    def set_group_limit(self, member: str, group_id: str, limit_centi: int, now_ms: int) -> Outcome:
        """A new limit; cut below the window's volume, the group triggers."""
        _check_group_limit(limit_centi)
        group = self._member_group(member, group_id)
        group.limit = limit_centi
        changes = Changes()
        self._group_event(group, "limit_updated", now_ms, changes)
        self._roll_window(group, now_ms)
        if not group.triggered and group.window_total > group.limit:
            self._trigger(group, now_ms, changes)
        return changes.outcome(None, now_ms)

    # -- internals -----------------------------------------------------------------------------
    def _roll_window(self, group: GroupRecord, now: int) -> None:
        horizon = now - self.options.group_window_ms
        window = group.window
        while window and window[0][0] <= horizon:
            group.window_total -= window.popleft()[1]

    def _count_group_fill(
        self, group: GroupRecord, quantity: int, now: int, changes: Changes
    ) -> None:
        group.window.append((now, quantity))
        group.window_total += quantity
        self._roll_window(group, now)
        if not group.triggered and group.window_total > group.limit:
            self._trigger(group, now, changes)

    def _trigger(self, group: GroupRecord, now: int, changes: Changes) -> None:
        """Trigger: the group's resting orders are cancelled, new ones refused until reset.
        A taker of the group still matching is stopped by its caller (status check)."""
        group.triggered = True
        for order in list(group.orders.values()):
            self._cancel_resting(order, self.options.group_cancel_reason, now, changes)
        self._group_event(group, "triggered", now, changes)
        for order in list(changes.orders.values()):
            # a taker of this group mid-match is not resting yet: stop it here
            if (
                order.order_group_id == group.group_id
                and order.status == "resting"
                and order.order_id not in self._accounts[order.member].live
                and order.remaining_centi > 0
            ):
                self._end(order, "canceled", self.options.group_cancel_reason, now, changes)

    def _group_event(
        self,
        group: GroupRecord,
        event_type: Literal["created", "triggered", "reset", "deleted", "limit_updated"],
        now: int,
        changes: Changes,
    ) -> None:
        changes.groups.append(
            GroupEvent(group.member, group.subaccount, group.group_id, event_type, group.limit, now)
        )


def _check_group_limit(limit_centi: int) -> None:
    if not MIN_GROUP_LIMIT_CENTI <= limit_centi <= MAX_GROUP_LIMIT_CENTI:
        raise Reject(400, "invalid_parameters", "contracts_limit must be 1-1,000,000")
