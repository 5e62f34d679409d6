"""A linearizability checker for one key's history, as a register of (body hash, Content-Type).

The search is Wing & Gong's, with Lowe's memoisation (the algorithm of Porcupine and Knossos):
take, in time order, any operation that could have taken effect next; when none can, undo the
last choice. A history is linearizable when every operation can be so ordered, each read seeing
the value of the write ordered last before it.

Writes whose outcome is unknown (timeout, connection error, 503) end at infinity: they may take
effect at any moment after they start, or never (ordered last, after everything observable).
"""

import math
from dataclasses import dataclass
from typing import Literal

Value = tuple[str, str] | None  # (body hash, Content-Type), or None for no value
Kind = Literal["put", "get", "delete"]


@dataclass
class Op:
    """One client operation on one key: what was asked, what came back, when.

    `value` is what a put wrote or what a get read (None: 404); `known` is False when a write's
    outcome is unknown (then `end` is ignored).
    """

    kind: Kind
    start: float
    end: float
    value: Value = None
    known: bool = True


def step(state: Value, op: Op) -> tuple[bool, Value]:
    """The register: whether `op` may happen in `state`, and the state after it."""
    if op.kind == "put":
        return True, op.value
    if op.kind == "delete":
        return True, None
    return op.value == state, state


def is_linearizable(ops: list[Op], initial: Value = None) -> bool:
    """Whether the operations on one key, as observed, have a legal order consistent with
    real time. Unknown writes need not take effect; failed reads must not be passed in.

    Two reductions keep outages (hundreds of unknown writes, each concurrent with everything
    after it) tractable: an unknown put whose value nobody read is dropped, since ordering it
    last (no effect) is always legal if anything is; and of the unknown deletes that may go
    next, only the earliest-started is tried, since they are interchangeable.
    """
    read = {op.value for op in ops if op.kind == "get"}
    ops = [op for op in ops if op.known or op.kind != "put" or op.value in read]
    ends = [op.end if op.known else math.inf for op in ops]
    if any(end < op.start for op, end in zip(ops, ends, strict=True)):
        raise ValueError("an operation ends before it starts")
    by_start = sorted(range(len(ops)), key=lambda i: ops[i].start)
    by_end = sorted(range(len(ops)), key=lambda i: ends[i])
    everything = (1 << len(ops)) - 1

    def first_open(order: list[int], at: int, done: int) -> int:
        """The position in `order` of the first operation not done, from `at` on."""
        while at < len(order) and done >> order[at] & 1:
            at += 1
        return at

    def candidates(done: int, state: Value, lo_start: int, lo_end: int) -> list[int]:
        """The operations that may take effect next, the likeliest first.

        Those are the ones not yet done that started no later than the earliest end among the
        ones not yet done (at equal times they are taken to overlap). A read that sees `state`
        is the only candidate when there is one: taking it at once is always safe, since it
        changes nothing and nothing that must precede it is left.
        """
        first = by_end[lo_end]
        deadline = ends[first]
        window = []
        for at in range(lo_start, len(by_start)):
            i = by_start[at]
            if ops[i].start > deadline:
                break
            if not done >> i & 1:
                if ops[i].kind == "get" and ops[i].value == state:
                    return [i]
                window.append(i)
        # The operation whose end is nearest must go soon: if it is a write, try it first;
        # if it is a read, try first the writes of the value it saw.
        reading = ops[first].kind == "get"
        writes, unknown_delete = [], False
        for i in window:  # in order of start
            if ops[i].kind == "get":
                continue
            if ops[i].kind == "delete" and not ops[i].known:
                if unknown_delete:
                    continue
                unknown_delete = True
            writes.append(i)
        writes.sort(key=lambda i: (i != first, not reading or ops[i].value != ops[first].value))
        return writes

    seen: set[tuple[int, Value]] = set()
    # Depth-first; each frame holds what held before its choice, and the choices left.
    frames: list[tuple[int, Value, int, int, list[int]]] = []
    done, state, lo_start, lo_end = 0, initial, 0, 0
    choices = candidates(done, state, lo_start, lo_end) if ops else []
    while done != everything:
        while choices:
            i = choices.pop(0)
            after = step(state, ops[i])[1]
            marked = done | 1 << i
            if (marked, after) not in seen:
                seen.add((marked, after))
                frames.append((done, state, lo_start, lo_end, choices))
                done, state = marked, after
                lo_start = first_open(by_start, lo_start, done)
                lo_end = first_open(by_end, lo_end, done)
                if done != everything:
                    choices = candidates(done, state, lo_start, lo_end)
                break
        else:
            if not frames:
                return False
            done, state, lo_start, lo_end, choices = frames.pop()
    return True
