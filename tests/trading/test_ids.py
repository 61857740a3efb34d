"""client_order_id allocation: unique forever, inside FIX's alphabet, persisted before use."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import CLIENT_ORDER_ID_MAX, is_client_order_id
from trading.ids import ClientOrderIdAllocator, IdStateError, is_ours, load_high_water


def test_next_id_when_called_many_times_gives_distinct_legal_ids() -> None:
    allocator = ClientOrderIdAllocator(block=7)
    ids = [allocator.next_id() for _ in range(500)]
    assert len(set(ids)) == 500
    for cid in ids:
        assert is_client_order_id(cid) and len(cid) <= CLIENT_ORDER_ID_MAX


def test_next_id_when_two_processes_share_no_file_never_collide() -> None:
    first, second = ClientOrderIdAllocator(), ClientOrderIdAllocator()
    assert first.run_id != second.run_id
    assert {first.next_id() for _ in range(200)}.isdisjoint({second.next_id() for _ in range(200)})


@pytest.mark.slow  # 30 examples, each reserving blocks with an fsync per block
@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=6))
def test_next_id_when_process_restarts_with_same_run_id_never_reuses_a_number(
    tmp_path_factory: pytest.TempPathFactory, uses: list[int]
) -> None:
    # The worst case for the file: every restart draws the *same* random run id, so only
    # the persisted high-water mark keeps ids apart.
    path = tmp_path_factory.mktemp("ids") / "ids.json"
    seen: set[str] = set()
    for used in uses:  # each element is one process lifetime using `used` ids, then crashing
        allocator = ClientOrderIdAllocator(path, block=5, run_id="abc")
        for _ in range(used):
            cid = allocator.next_id()
            assert cid not in seen
            seen.add(cid)


def test_next_id_when_block_reserved_writes_state_before_handing_out(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    allocator = ClientOrderIdAllocator(path, block=10, run_id="1")
    assert not path.exists()  # nothing reserved until an id is needed
    first = allocator.next_id()
    assert first == "ks-1-0"
    assert load_high_water(path) == 10
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for _ in range(10):
        allocator.next_id()
    assert load_high_water(path) == 20
    restarted = ClientOrderIdAllocator(path, block=10, run_id="1")
    assert restarted.next_id() == "ks-1-20"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"version": 1, "high_water": -3}',
        b'{"version": 9, "high_water": 3}',
        b'{"version": 1, "high_water": "7"}',
        b"\xff\xfe",
    ],
)
def test_allocator_when_state_file_corrupt_refuses_with_one_line_and_keeps_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "ids.json"
    path.write_bytes(content)
    with pytest.raises(IdStateError) as caught:
        ClientOrderIdAllocator(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert path.read_bytes() == content  # the evidence is kept for the operator


def test_allocator_when_state_file_moved_away_starts_afresh_with_a_new_run(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    before = ClientOrderIdAllocator(path)
    old = {before.next_id() for _ in range(3)}
    path.unlink()
    after = ClientOrderIdAllocator(path)
    assert {after.next_id() for _ in range(3)}.isdisjoint(old)
    assert json.loads(path.read_text())["high_water"] > 0


def test_allocator_when_state_dir_unwritable_raises_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "ids.json"
    allocator = ClientOrderIdAllocator(path)
    with pytest.raises(IdStateError) as caught:
        allocator.next_id()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("prefix", ["", "has-dash", "x" * 17, "é"])
def test_allocator_when_prefix_illegal_refuses(prefix: str) -> None:
    with pytest.raises(ValueError):
        ClientOrderIdAllocator(prefix=prefix)


def test_is_ours_when_allocator_handed_the_id_out_is_true(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    allocator = ClientOrderIdAllocator(path, prefix="mm1", block=5)
    ids = [allocator.next_id() for _ in range(7)]
    high_water = load_high_water(path)
    assert all(is_ours(cid, prefix="mm1", high_water=high_water) for cid in ids)
    assert all(is_ours(cid, prefix="mm1") for cid in ids)


@pytest.mark.parametrize(
    "client_order_id",
    [
        None,
        "",
        "someone-else-1",
        "ks-00ff-10",  # seq at the high-water mark: never handed out
        "KS-00ff-1",  # another prefix (prefixes are case-sensitive)
        "ks-00FF-1",  # run ids are lowercase hex
        "ks-00ff-1-extra",
        "ks-00ff",
        "xks-00ff-1",
    ],
)
def test_is_ours_when_id_is_not_the_allocators_is_false(client_order_id: str | None) -> None:
    assert not is_ours(client_order_id, prefix="ks", high_water=10)


def test_is_ours_when_no_state_file_decides_by_prefix_and_shape() -> None:
    assert is_ours("ks-00ff-123456", prefix="ks", high_water=None)
    assert not is_ours("ks-00ff-123456", prefix="ks", high_water=0)


def test_skip_past_an_adopted_id_of_this_run_moves_the_counter_beyond_it(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    allocator = ClientOrderIdAllocator(path, prefix="ks", block=10, run_id="abc")
    assert allocator.next_id() == "ks-abc-0"
    # another run's id, another prefix, a foreign id, an id already passed: nothing moves
    for other in ("ks-abd-50", "zz-abc-50", "by-hand-1", None, "ks-abc-0"):
        assert not allocator.skip_past(other)
    assert allocator.skip_past("ks-abc-25")  # beyond the reserved block: reserved first
    assert load_high_water(path) >= 26
    assert allocator.next_id() == "ks-abc-26"
    assert ClientOrderIdAllocator(path, prefix="ks", run_id="abc").next_id() != "ks-abc-25"
