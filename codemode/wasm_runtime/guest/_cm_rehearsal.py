"""A rehearsal at build time: the runtime's own code runs before the heap is snapshotted.

Every execution starts from the build-time snapshot in a fresh instance, so whatever the
interpreter learns while running (CPython specializes each bytecode instruction the first
times it runs: attribute lookups, calls, comparisons) is lost with the instance, and every
run paid to learn it again: ~3x the time of a warm run for the same program. Running
typical programs here, once, before the snapshot, puts that state in the snapshot, where
each fresh instance starts with it.

The programs are fixed text; their tool calls are answered by a stand-in for the host
that is only installed for the rehearsal (a crossing cannot happen at build time). The
per-run state they leave (calls, notes, the catalog) is reset here and at every run.
"""

import _cm_bridge

TEAM = [{"id": f"m{i}", "name": f"Member {i}", "role": "eng"} for i in range(20)]
RECORDS = [{"id": f"e{i}", "amount": 120.5 + i, "category": "travel"} for i in range(5)]

CATALOG = {
    "functions": [
        {"path": "team.members", "target": "members", "params": []},
        {"path": "team.expenses", "target": "expenses",
         "params": [{"name": "member_id", "required": True, "takes_dict": False},
                    {"name": "quarter", "required": True, "takes_dict": False}]},
        {"path": "tool", "target": "tool",
         "params": [{"name": "x", "required": True, "takes_dict": True}]},
        {"path": "team.*", "target": "fallback"},
    ],
    "namespaces": [{"name": "team", "server": "team", "hidden": []}],
}  # fmt: skip

PROGRAMS = [
    "1 + 1",
    """\
import asyncio
members = await team.members()
expenses = await asyncio.gather(*[team.expenses(m["id"], "Q3") for m in members])
over = [m.name for m, recs in zip(members, expenses) if sum(e["amount"] for e in recs) > 600]
{"count": len(over), "names": over[:5]}
""",
    """\
total = 0
for i in range(40):
    total += await tool(i)
print("total", total)
return total
""",
    "rows = [await tool(1) for _ in range(3)]\nrows[5]",
    "await team.nothing()",
    "undefined_name + 1",
]


class _StandIn:
    """Answers every call of a batch at once, as a host would."""

    def wait(self, batch: str, timeout_ms: int) -> str:
        done = []
        for call in _cm_bridge.json_loads(batch) if batch else ():
            target = call["target"]
            if target == "members":
                value = TEAM
            elif target == "expenses":
                value = RECORDS
            elif target == "tool":
                value = call["args"]["x"] * 10
            else:
                error = {"type": "UnknownTool", "message": "no such tool"}
                done.append({"id": call["id"], "ok": False, "error": error})
                continue
            done.append({"id": call["id"], "ok": True, "value": value})
        return _cm_bridge.json_dumps({"expired": False, "done": done})


def rehearse(run, reset, rounds: int = 4) -> None:
    """Run each program `rounds` times through `run(code, options, catalog)`, then
    `reset()` the runtime's per-run state."""
    real = _cm_bridge.host
    _cm_bridge.host = _StandIn()
    try:
        catalog = _cm_bridge.json_dumps(CATALOG)
        options = _cm_bridge.json_dumps(
            {"catalog_id": "rehearsal", "limits": {"max_stdout_bytes": 0}}  # print, not written
        )
        for _ in range(rounds):
            for code in PROGRAMS:
                run(code, options, catalog)
    finally:
        _cm_bridge.host = real
        reset()
