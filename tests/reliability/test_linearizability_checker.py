"""The checker itself, on hand-made histories: it accepts what is legal, catches what is not."""

import random

from tests.reliability.linearizability import Op, is_linearizable

A, B, C = ("a", "text/a"), ("b", "text/b"), ("c", "text/c")


def test_sequential_reads_of_the_last_write_pass():
    ops = [Op("put", 0, 1, A), Op("get", 2, 3, A), Op("put", 4, 5, B), Op("get", 6, 7, B)]
    assert is_linearizable(ops)


def test_a_stale_read_after_a_newer_write_completed_fails():
    ops = [Op("put", 0, 1, A), Op("put", 2, 3, B), Op("get", 4, 5, A)]
    assert not is_linearizable(ops)


def test_a_read_overlapping_a_write_may_see_either_value():
    for seen in (A, B):
        ops = [Op("put", 0, 1, A), Op("put", 2, 6, B), Op("get", 3, 4, seen)]
        assert is_linearizable(ops)


def test_a_value_nobody_wrote_fails():
    assert not is_linearizable([Op("put", 0, 1, A), Op("get", 2, 3, C)])


def test_a_body_paired_with_another_writes_content_type_fails():
    ops = [Op("put", 0, 1, A), Op("put", 0, 1, B), Op("get", 2, 3, ("a", "text/b"))]
    assert not is_linearizable(ops)


def test_reads_may_not_go_back_in_time_even_during_a_write():
    # Both reads overlap the write, but once one saw B the later one cannot see A again.
    ops = [Op("put", 0, 1, A), Op("put", 2, 10, B), Op("get", 3, 4, B), Op("get", 5, 6, A)]
    assert not is_linearizable(ops)


def test_an_unknown_write_may_take_effect_late_or_never():
    late = [Op("put", 0, 1, A), Op("put", 2, 3, B, known=False), Op("get", 8, 9, B)]
    never = [Op("put", 0, 1, A), Op("put", 2, 3, B, known=False), Op("get", 8, 9, A)]
    assert is_linearizable(late) and is_linearizable(never)


def test_an_unknown_write_cannot_take_effect_before_it_started():
    ops = [Op("put", 0, 1, A), Op("get", 2, 3, B), Op("put", 4, 5, B, known=False)]
    assert not is_linearizable(ops)


def test_delete_then_read_absent_and_a_read_of_a_deleted_value_fails():
    assert is_linearizable([Op("put", 0, 1, A), Op("delete", 2, 3), Op("get", 4, 5, None)])
    assert not is_linearizable([Op("put", 0, 1, A), Op("delete", 2, 3), Op("get", 4, 5, A)])


def _register_history(rng: random.Random, count: int) -> list[Op]:
    """Operations of about 8 overlapping clients against a correct register, each taking effect
    at a random moment inside its interval."""
    timed, now = [], 0.0
    for n in range(count):
        now += rng.random()
        start, end = now, now + rng.random() * 8
        kind = rng.choice(["put", "put", "get", "get", "get", "delete"])
        value = (str(n), "text/plain") if kind == "put" else None
        timed.append((rng.uniform(start, end), Op(kind, start, end, value)))
    state = None
    for _, op in sorted(timed, key=lambda t: t[0]):
        if op.kind == "get":
            op.value = state
        else:
            state = op.value
    return [op for _, op in timed]


def test_a_long_concurrent_legal_history_is_accepted():
    assert is_linearizable(_register_history(random.Random(7), 3000))


def test_one_stale_read_in_a_long_history_is_caught():
    ops = _register_history(random.Random(11), 3000)
    # A read that returns the value a completed write had replaced before the read began.
    puts = [op for op in ops if op.kind == "put"]
    first = puts[0]
    later = next(p for p in puts[1:] if p.start > first.end)
    ops.append(Op("get", later.end + 1000, later.end + 1001, first.value))
    ops.append(Op("put", later.end + 999, later.end + 999.5, later.value))
    assert not is_linearizable(ops)


def test_an_outage_of_hundreds_of_unknown_writes_checks_quickly_and_still_catches_staleness():
    """Unknown puts nobody read and unknown deletes, all concurrent with everything after
    them (as in an outage), around a history whose last read is stale."""
    ops = [Op("put", 0, 1, A)]
    ops += [Op("put", 2 + i * 0.01, 3, (f"lost{i}", "t"), known=False) for i in range(300)]
    ops += [Op("delete", 2 + i * 0.01, 3, known=False) for i in range(100)]
    ops += [Op("get", 10, 11, None), Op("put", 12, 13, B), Op("get", 14, 15, B)]
    assert is_linearizable(ops)
    assert not is_linearizable([*ops, Op("get", 16, 17, A)])
