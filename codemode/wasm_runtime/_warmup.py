"""After a build: the pages of the new artifact that runs touch, read once and recorded.

A build leaves the artifact out of the page cache (`_pagecache.drop`), and every worker
advises its mappings MADV_RANDOM, so a page a run touches that is not cached is read
alone. With no record yet (`pages.json`), the first runs on a new artifact each read a
thousand or more single pages: ~50 ms on this machine's disk, seconds where reads queue
(a loaded or throttled disk), which a first program's timeout then pays for. So a build
ends here: one worker runs programs that go the common ways (a result, prints, tool calls
one by one and gathered, a tool's error caught, uncaught errors with their tracebacks and
hints, a name the check finds undefined, a syntax error, the modules programs import
most), and `_pagecache.remember` records what they touched. A pool's first worker then
finds those pages read ahead (`settle_soon`), and later runs add what else they touch.
A quick (baseline) build's warm-up runs in the background once the pool's first worker
is up, in its upgrade (`_build.warm_up`), and that of code copied from the package after
the pool's first answer: the first worker reads its pages one at a time (~0.07 s more to
start here), which a first answer ~0.4 s sooner pays for.

Advice only: if this fails, the build is no less good (said at debug level)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import CallFailed, WorkerError
from . import _pagecache
from ._execution import Execution, memory_bytes
from ._process import WorkerProcess, library_path
from ._types import FunctionSpec, Limits, Param

log = logging.getLogger("codemode.sandbox")

PROGRAMS = (
    "return 1",
    """
import json, re, math, itertools, collections, datetime, statistics, textwrap
rows = await lookup(key="a")
many = await asyncio.gather(*[lookup(key=str(i)) for i in range(20)])
counts = collections.Counter(r["key"][0] for r in many)
words = re.findall(r"[a-z]+", json.dumps(rows).lower())
print(f"{len(many)} rows, {sum(counts.values())} keys", sorted(words)[:3])
day = datetime.date(2026, 1, 5) + datetime.timedelta(days=3)
try:
    await fail(reason="no such record")
except ToolError as exc:
    print("caught", type(exc).__name__)
{"day": day.isoformat(), "mean": statistics.mean(r["n"] for r in many),
 "pairs": list(itertools.combinations("abc", 2)), "root": math.sqrt(len(many)),
 "text": textwrap.shorten(" ".join(words), 20)}
""",
    """
import json

squares = [i * i for i in range(100_000)]
table = {i: str(i) for i in range(5000)}
text = ",".join(table.values())
table = json.loads(json.dumps({str(k): [k, k * 2.5, None, v] for k, v in table.items()}))
parts = sorted(set(text.split(",")), key=len, reverse=True)
total = sum(squares) + len(parts) + round(sum(x / 7 for x in range(1000)), 2)


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


points = [Point(i, -i) for i in range(1000)]
far = max(points, key=lambda p: p.x)
{"total": f"{total:,.2f}", "big": 2**200 % 97, "far": far.x, "bytes": text.encode()[:4]}
""",
    "import socket\nsocket.create_connection(('127.0.0.1', 9))",
    "rows = await lookup(key='x')\nprint(rows['key'])\nrows['missing']",
    "open('/etc/hostname').read()",
    "value = undefined_name + 1",
    "def ratio(a, b):\n    return a / b\n\n\nratio(len('x'), 0)",
    "def f(:\n    pass",
)
"""What the warm-up runs: programs as a model writes them, each ending a common way."""


class _Host:
    """The warm-up's two tools: `lookup` answers, `fail` fails."""

    def functions(self) -> list[FunctionSpec]:
        key = (Param("key", True),)
        return [
            FunctionSpec("lookup", "lookup", key, "lookup(key)", "Look up a record."),
            FunctionSpec("fail", "fail", (Param("reason", True),), "fail(reason)", "Fail."),
        ]

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        if target == "fail":
            raise CallFailed(str(args.get("reason")))
        return {"key": str(args.get("key")), "n": len(str(args.get("key")))}


async def record_pages(compiled: Path, strategy: str) -> None:
    """Run `PROGRAMS` in a worker of the artifact at `compiled`, then record the pages
    they touched beside it (`_pagecache.remember`)."""
    if _pagecache._libc() is None:
        return  # nothing would be recorded
    limits = Limits()
    try:
        worker = await WorkerProcess.start(compiled, memory_bytes(limits), strategy)
    except WorkerError as exc:
        log.debug("no warm-up of the build: %s", exc)
        return
    try:
        host = _Host()
        for seq, code in enumerate(PROGRAMS, 1):
            await Execution(seq, worker, host, limits).run(code)
        if worker.alive:
            files = [str(compiled), library_path()]
            record = compiled.parent / _pagecache.RECORD_NAME
            _pagecache.remember_locked(record, files, worker.proc.pid)
    except (WorkerError, OSError) as exc:
        log.debug("the warm-up of the build failed: %s", exc)
    finally:
        await worker.kill()
