"""`asyncio.gather(...)` of tool calls, without a task per call.

A gather whose every argument is a tool call not yet started (what `gather(*[tool(x)
for x in xs])` passes) queues the calls in the bridge itself and gives back one future for
all of them. Stock gather wraps each call in a Task: three loop callbacks and two
coroutine steps per call, which in the sandbox cost more than the call's own crossing.

What a program sees is what stock gather gives: the results in order; with
`return_exceptions=True` the ToolErrors in their places, otherwise the first one raised
(the other calls run on, their results dropped); cancelling the future raises
CancelledError where it is awaited and drops the calls' late results; the calls' notes and
hints are the same. Anything else given to gather (a task, a future, a coroutine of the
program's own, a call already started, the same call twice) takes stock gather.
"""

import asyncio
from typing import ClassVar

from _cm_api import Calls, _bound_hint, _remember, _tool_call
from _cm_bridge import bridge

_TOOL_CALL = _tool_call.__code__


class _BatchFuture(asyncio.Future):
    """As stock gather's future: cancelling it ends it with CancelledError as its
    exception, so awaiting it raises CancelledError while `cancelled()` stays False."""

    def cancel(self, msg=None) -> bool:
        if self.done():
            return False
        self.set_exception(asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg))
        return True


class _Batch:
    """The calls of one gather: their results so far, and the future that gives them."""

    __slots__ = ("calls", "future", "left", "results", "return_exceptions")

    def __init__(self, future, calls: list, return_exceptions: bool):
        self.future = future
        self.calls = calls  # (function, arguments, positional count) per call
        self.results = [None] * len(calls)
        self.left = len(calls)
        self.return_exceptions = return_exceptions

    def pending(self) -> int:
        return self.left if not self.future.done() else 0


class _Slot:
    """One call's place in its batch; the bridge settles it as it would a call's future."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: _Batch, index: int):
        self.batch = batch
        self.index = index

    def done(self) -> bool:  # once the batch is settled, late results are dropped
        return self.batch.future.done()

    def set_result(self, value) -> None:
        batch = self.batch
        fn, args, _ = batch.calls[self.index]
        _remember(fn.path, value, args)
        batch.results[self.index] = value
        self._settled()

    def set_exception(self, exc) -> None:
        batch = self.batch
        fn, args, positional = batch.calls[self.index]
        if positional:
            _bound_hint(exc, fn, args, positional)
        if not batch.return_exceptions:
            batch.future.set_exception(exc)
            return
        batch.results[self.index] = exc
        self._settled()

    def _settled(self) -> None:
        batch = self.batch
        batch.left -= 1
        if not batch.left:
            batch.future.set_result(batch.results)


class Batches:
    """The batches of this run that may still be waited for (for the end-of-run note)."""

    open: ClassVar[list] = []

    @classmethod
    def reset(cls) -> None:
        cls.open = []

    @classmethod
    def pending_calls(cls) -> int:
        return sum(batch.pending() for batch in cls.open)


def _unstarted_call(aw):
    """(function, arguments, positional count, key) of a tool call not yet started, or None."""
    if getattr(aw, "cr_code", None) is not _TOOL_CALL:
        return None
    frame = aw.cr_frame
    if frame is None or aw.cr_running or aw.cr_suspended:
        return None
    local = frame.f_locals
    return local["fn"], local["args"], local["positional"], local["key"]


def gather_calls(aws: tuple, return_exceptions: bool):
    """One future for `aws`, if every one is a tool call not yet started; else None."""
    if not aws:
        return None
    loop = asyncio._get_running_loop()
    if loop is None:
        return None
    found = []
    for aw in aws:
        call = _unstarted_call(aw)
        if call is None:
            return None
        found.append(call)
    if len({id(aw) for aw in aws}) != len(aws):
        return None  # the same call twice: stock gather gives its one result twice
    batch = _Batch(_BatchFuture(loop=loop), [call[:3] for call in found], return_exceptions)
    for index, (aw, (fn, args, _, key)) in enumerate(zip(aws, found)):
        Calls.pending.pop(key, None)
        aw.close()  # never started: closing it says nothing ("never awaited" is for leaks)
        bridge.queue(fn.target, args, _Slot(batch, index))
    Batches.open.append(batch)
    return batch.future
