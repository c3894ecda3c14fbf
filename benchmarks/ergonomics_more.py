"""The second list of ergonomics cases, run by `python benchmarks/ergonomics.py`.

Written separately from the first list (in ergonomics.py), as a held-out check that the
sandbox's fixes cover families of mistakes and not the first list's strings: first programs
as different models write them (long, typed, defensive code; `async def main()` with
guards and classes; `default_api`-style calls; small models' synchronous code), mistakes
included, and valid programs that must simply work (family `valid`). Same `Case` type,
fixtures and judge as the first list.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ergonomics import (
    AWAIT,
    BEST,
    C003,
    COMMITS,
    COMPANIES,
    DECODE,
    HOST,
    IMPORTS,
    LOOP,
    M1,
    NAMES,
    NOTES,
    OFFERS,
    OTHER,
    OVER,
    PRECHECK,
    Q3,
    RAW,
    TEAM,
    TEXT,
    Case,
    close,
    data,
    recent,
)

VALID, REGISTRY, CONCURRENCY, SERIALIZE, LIMITS = (
    "valid",
    "registry",
    "concurrency",
    "serialize",
    "limits",
)

# -- expected values, from the demo data and the benchmark's fixtures ------------------------

DEPTS = sorted({m["department"] for m in TEAM})
DEPT_Q3 = {d: round(sum(Q3[m["id"]] for m in TEAM if m["department"] == d), 2) for d in DEPTS}
BUDGETS = {"platform": 90000, "growth": 60000, "data": 30000, "field": 20000}
OVER_BY_SPEND = [
    m["name"] for m in sorted(TEAM, key=lambda m: -Q3[m["id"]]) if Q3[m["id"]] > data.BUDGET
]
ROLES = Counter(m["role"] for m in TEAM)
TECH = [o for o in OFFERS if "tech" in COMPANIES[o["company_id"]]["industry"].lower()]
BEST_TECH = max(TECH, key=lambda o: o["salary"])
QUARTERS = ["Q1", "Q2", "Q3", "Q4"]
M1_BY_Q = {q: round(sum(e["amount"] for e in data.expenses(M1, q)), 2) for q in QUARTERS}
TEAM_BY_Q = {
    q: round(sum(e["amount"] for m in TEAM for e in data.expenses(m["id"], q)), 2) for q in QUARTERS
}
ALL_LEADS = data.leads()
UNQUALIFIED = [x for x in ALL_LEADS if x["status"] == "unqualified"]
QUALIFIED = [x for x in ALL_LEADS if x["status"] == "qualified"]
MESSAGES = [m for m, _ in reversed(COMMITS)]
REF = date(2026, 1, 1)
LONGEST = max(TEAM, key=lambda m: (REF - date.fromisoformat(m["start_date"])).days)
GROUPS = Counter(
    {"engineer": "builders", "designer": "builders", "manager": "leads"}.get(m["role"], "business")
    for m in TEAM
)
EARLIEST3 = sorted(TEAM, key=lambda m: m["start_date"])[:3]
BUDGET_ROWS = {d: b for d, b in BUDGETS.items()}


def printed_has(*needles: str):
    return lambda r: isinstance(r, str) and all(n in r for n in needles)


def host_file(r, must_contain: str) -> bool:
    """The program says it wrote r["path"]: is it really on the host, with that text?"""
    p = Path(r["path"])
    return p.is_file() and must_contain in p.read_text()


# fmt: off
CASES: list[Case] = [
    # == valid programs: each must simply work ==============================================
    Case("claude_dataclass_report", VALID, """\
from dataclasses import dataclass, field
from typing import Any

BUDGET_PER_MEMBER: float = 10_000.0
QUARTER = "Q3"


@dataclass
class MemberSpend:
    member_id: str
    name: str
    department: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(r["amount"] for r in self.records), 2)

    @property
    def over_budget(self) -> bool:
        return self.total > BUDGET_PER_MEMBER


async def load_spend(member: dict[str, Any]) -> MemberSpend:
    records = await team.get_expenses(member_id=member["id"], quarter=QUARTER)
    return MemberSpend(member["id"], member["name"], member["department"], records)


def department_totals(rows: list[MemberSpend]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in rows:
        totals[row.department] = round(totals.get(row.department, 0.0) + row.total, 2)
    return dict(sorted(totals.items()))


members = await team.get_team_members()
rows = await asyncio.gather(*(load_spend(m) for m in members))
over = sorted((r for r in rows if r.over_budget), key=lambda r: r.total, reverse=True)

report_lines = [f"{r.name:<20} ${r.total:>10,.2f}" for r in over]
print("\\n".join(report_lines))

return {
    "quarter": QUARTER,
    "over_budget": [r.name for r in over],
    "by_department": department_totals(rows),
}
""", lambda r: r["over_budget"] == OVER_BY_SPEND and r["quarter"] == "Q3" and all(
        close(r["by_department"][d], DEPT_Q3[d]) for d in DEPTS), ["amount"]),
    Case("gpt_defensive_unwrap", VALID, """\
import json
from typing import Any


def unwrap(result: Any) -> Any:
    \"\"\"Tool results may come back as JSON text or MCP content blocks; normalise them.\"\"\"
    if isinstance(result, str):
        try:
            return json.loads(result)
        except json.JSONDecodeError:
            return result
    if isinstance(result, dict) and isinstance(result.get("content"), list):
        texts = [c.get("text", "") for c in result["content"] if isinstance(c, dict)]
        return unwrap("".join(texts))
    return result


async def main() -> dict:
    offers = unwrap(await jobs.get_job_offers())
    company_ids = sorted({o["company_id"] for o in offers})
    details = await asyncio.gather(*[jobs.get_company_details(company_id=c) for c in company_ids])
    companies = {c: unwrap(d) for c, d in zip(company_ids, details)}
    tech = [o for o in offers if "tech" in companies[o["company_id"]]["industry"].lower()]
    if not tech:
        return {"error": "no tech offers"}
    best = max(tech, key=lambda o: o["salary"])
    return {
        "title": best["title"],
        "company": companies[best["company_id"]]["name"],
        "salary": best["salary"],
    }


result = await main()
result
""", lambda r: r == {"title": BEST_TECH["title"], "salary": BEST_TECH["salary"],
                     "company": COMPANIES[BEST_TECH["company_id"]]["name"]}, ["industry"]),
    Case("from_future_annotations", VALID, """\
from __future__ import annotations

from collections import defaultdict
from typing import TypedDict


class Row(TypedDict):
    department: str
    total: float


def summarise(rows: list[Row]) -> dict[str, float]:
    out: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        out[row["department"]] += row["total"]
    return {k: round(v, 2) for k, v in sorted(out.items())}


members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
rows: list[Row] = [
    {"department": m["department"], "total": sum(e["amount"] for e in recs)}
    for m, recs in zip(members, spend)
]
return summarise(rows)
""", lambda r: r.keys() == set(DEPTS) and all(close(r[d], DEPT_Q3[d]) for d in DEPTS),
         ["department"]),
    Case("pep701_pep695_syntax", VALID, """\
type Member = dict[str, str | None]


def first[T](items: list[T], n: int) -> list[T]:
    return items[:n]


members: list[Member] = await team.get_team_members()
veterans = first(sorted(members, key=lambda m: m["start_date"]), 3)
return [f"{m["name"]} ({m["role"]}, since {m["start_date"]})" for m in veterans]
""", lambda r: r == [f"{m['name']} ({m['role']}, since {m['start_date']})" for m in EARLIEST3],
         ["start_date"]),
    Case("match_and_walrus", VALID, """\
groups = {"builders": 0, "leads": 0, "business": 0}
for m in await team.get_team_members():
    match m:
        case {"role": "engineer" | "designer"}:
            groups["builders"] += 1
        case {"role": "manager"}:
            groups["leads"] += 1
        case _:
            groups["business"] += 1
if (biggest := max(groups, key=groups.get)) and groups[biggest] > 0:
    return {"groups": groups, "biggest": biggest}
""", lambda r: r["groups"] == {k: GROUPS.get(k, 0) for k in ("builders", "leads", "business")}
        and r["biggest"] == max(r["groups"], key=r["groups"].get), ["role"]),
    Case("recursive_org_chart", VALID, """\
members = await team.get_team_members()
by_manager = {}
for m in members:
    by_manager.setdefault(m["manager_id"], []).append(m)


def build(member):
    return {"name": member["name"],
            "reports": [build(r) for r in by_manager.get(member["id"], [])]}


def size(node):
    return 1 + sum(size(r) for r in node["reports"])


def depth(node):
    return 1 + max((depth(r) for r in node["reports"]), default=0)


roots = [build(m) for m in by_manager.get(None, [])]
return {"roots": len(roots), "size": sum(map(size, roots)), "depth": max(map(depth, roots)),
        "direct_reports_of_root": len(roots[0]["reports"])}
""", lambda r: r == {"roots": 1, "size": len(TEAM), "depth": 2,
                     "direct_reports_of_root": len(TEAM) - 1}, ["manager_id"]),
    Case("globals_dispatch", VALID, """\
ns = globals()["team"]
fetch = getattr(ns, "get_expenses")
results = await asyncio.gather(*[fetch(member_id="{M1}", quarter=q) for q in ("Q1", "Q2", "Q3", "Q4")])
return {q: round(sum(e["amount"] for e in recs), 2) for q, recs in zip(("Q1", "Q2", "Q3", "Q4"), results)}
""", lambda r: all(close(r[q], M1_BY_Q[q]) for q in QUARTERS), ["get_expenses"]),
    Case("exec_helper", VALID, """\
helper = '''
def money(x):
    return f"${x:,.2f}"
'''
exec(helper, globals())
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
return money(sum(r["amount"] for r in records))
""", lambda r: r == f"${Q3[M1]:,.2f}", ["money"]),
    Case("logging_setup", VALID, """\
import logging

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("team-report")

members = await team.get_team_members()
log.info("fetched %d members", len(members))
engineers = [m for m in members if m["role"] == "engineer"]
log.info("%d engineers", len(engineers))
return {"members": len(members), "engineers": len(engineers)}
""", lambda r: r == {"members": len(TEAM), "engineers": ROLES["engineer"]}, ["engineer"]),
    Case("print_report_only", VALID, """\
members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
print("Q3 budget report")
print("=" * 40)
for m, recs in zip(members, spend):
    total = sum(e["amount"] for e in recs)
    if total > 10_000:
        print(f"- {m['name']}: ${total:,.2f} (over budget by ${total - 10_000:,.2f})")
""", printed_has("Q3 budget report", *OVER), ["return"], printed=True),
    Case("async_generator", VALID, """\
from collections.abc import AsyncIterator


async def spend_by_member(quarter: str) -> AsyncIterator[tuple[str, float]]:
    for m in await team.get_team_members():
        records = await team.get_expenses(member_id=m["id"], quarter=quarter)
        yield m["name"], sum(r["amount"] for r in records)


over = [name async for name, total in spend_by_member("Q3") if total > 10_000]
return {"over_budget": over}
""", lambda r: r == {"over_budget": OVER}, ["async for"]),
    Case("queue_workers", VALID, """\
queue: asyncio.Queue = asyncio.Queue()
totals: dict[str, float] = {}

async def worker():
    while True:
        member = await queue.get()
        try:
            records = await team.get_expenses(member_id=member["id"], quarter="Q3")
            totals[member["name"]] = sum(r["amount"] for r in records)
        finally:
            queue.task_done()

for m in await team.get_team_members():
    queue.put_nowait(m)
workers = [asyncio.create_task(worker()) for _ in range(4)]
await queue.join()
for w in workers:
    w.cancel()
await asyncio.gather(*workers, return_exceptions=True)
return sorted(name for name, total in totals.items() if total > 10_000)
""", lambda r: r == sorted(OVER), ["queue"]),
    Case("attr_access_nested", VALID, """\
conv = await time.convert_time(source_timezone="UTC", time="12:00", target_timezone="Asia/Tokyo")
return {"tokyo": conv.target.datetime, "difference": conv.time_difference,
        "weekday": conv.target.day_of_week}
""", lambda r: r["tokyo"].endswith("T21:00:00+09:00") and r["difference"] == "+9.0h"
        and isinstance(r["weekday"], str), ["target"]),
    Case("positional_args", VALID, """\
records = await team.get_expenses("{M1}", "Q3")
notes = await fs.read_text_file("{ROOT}/notes.txt")
return {"total": round(sum(r["amount"] for r in records), 2),
        "first_note": notes["content"].splitlines()[0]}
""", lambda r: close(r["total"], Q3[M1]) and r["first_note"] == NOTES.splitlines()[0],
         ["member_id"]),
    Case("bare_and_namespaced", VALID, """\
members = await get_team_members()
offers = await get_job_offers()
best = max(offers, key=lambda o: o["salary"])
company = await get_company_details(company_id=best["company_id"])
mine = await team.get_expenses(member_id=members[0]["id"], quarter="Q3")
return {"best_company": company["name"], "first_member_q3": round(sum(e["amount"] for e in mine), 2)}
""", lambda r: r["best_company"] == COMPANIES[BEST["company_id"]]["name"]
        and close(r["first_member_q3"], Q3[M1]), ["get_team_members"]),
    Case("wait_for_and_timeout", VALID, """\
try:
    async with asyncio.timeout(10):
        members = await asyncio.wait_for(team.get_team_members(), timeout=5)
        offers = await asyncio.wait_for(jobs.get_job_offers(), timeout=5)
except TimeoutError:
    return {"error": "timed out"}
return {"members": len(members), "offers": len(offers)}
""", lambda r: r == {"members": len(TEAM), "offers": len(OFFERS)}, ["timeout"]),
    Case("argv_env_defaults", VALID, """\
import os
import sys

quarter = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("QUARTER", "Q3")
member = os.environ.get("MEMBER_ID", "{M1}")
records = await team.get_expenses(member_id=member, quarter=quarter)
return {"quarter": quarter, "total": round(sum(r["amount"] for r in records), 2)}
""", lambda r: r["quarter"] == "Q3" and close(r["total"], Q3[M1]), ["argv"]),
    Case("argparse_defaults", VALID, """\
import argparse

parser = argparse.ArgumentParser(description="Quarterly expense report")
parser.add_argument("--quarter", default="Q3")
parser.add_argument("--budget", type=float, default=10_000)
args = parser.parse_args()

members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter=args.quarter) for m in members])
return [m["name"] for m, recs in zip(members, spend) if sum(r["amount"] for r in recs) > args.budget]
""", lambda r: r == OVER, ["argparse"]),
    Case("return_json_string", VALID, """\
offers = await jobs.get_job_offers()
remote = [o for o in offers if o["remote"]]
summary = {"remote": len(remote), "max_remote_salary": max(o["salary"] for o in remote)}
return json.dumps(summary, indent=2)
""", lambda r: json.loads(r) == {"remote": sum(o["remote"] for o in OFFERS),
                                 "max_remote_salary": max(o["salary"] for o in OFFERS
                                                          if o["remote"])}, ["remote"]),
    Case("describe_then_call", VALID, """\
doc = tools.describe("team.get_expenses")
assert "member_id" in doc, doc
hits = tools.search("expenses")
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
return {"found": any("get_expenses" in h for h in hits), "n": len(records)}
""", lambda r: r == {"found": True, "n": 5}, ["get_expenses"]),
    Case("help_builtin", VALID, """\
help(team.get_expenses)
""", printed_has("member_id", "quarter"), ["member_id"], printed=True),
    Case("git_log_regex", VALID, """\
import re

log = await git.git_log(repo_path="{REPO}", max_count=10)
pattern = re.compile(r"Commit: (?P<sha>[0-9a-f]{40})\\nAuthor: .*\\nDate: (?P<date>\\S+).*\\nMessage: (?P<msg>.*)")
commits = [m.groupdict() for m in pattern.finditer(log)]
return [(c["msg"], c["date"]) for c in commits]
""", lambda r: [tuple(x) for x in r] == [(m, f"2026-03-0{3 - i}") for i, m in enumerate(MESSAGES)],
         ["Message:"]),
    Case("fs_budget_csv", VALID, """\
import csv
import io

text = (await fs.read_text_file(path="{ROOT}/budget.csv"))["content"]
budgets = {row["department"]: float(row["budget"]) for row in csv.DictReader(io.StringIO(text))}
members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
by_dept = {}
for m, recs in zip(members, spend):
    by_dept[m["department"]] = by_dept.get(m["department"], 0) + sum(r["amount"] for r in recs)
return {d: {"budget": budgets[d], "spent": round(s, 2), "over": s > budgets[d]}
        for d, s in sorted(by_dept.items())}
""", lambda r: all(r[d]["budget"] == BUDGETS[d] and close(r[d]["spent"], DEPT_Q3[d])
                   and r[d]["over"] == (DEPT_Q3[d] > BUDGETS[d]) for d in DEPTS), ["content"]),
    Case("fs_write_then_read", VALID, """\
members = await team.get_team_members()
lines = ["# Team", ""] + [f"- {m['name']} ({m['role']})" for m in members]
await fs.write_file(path="{ROOT}/out/team.md", content="\\n".join(lines) + "\\n")
back = await fs.read_text_file(path="{ROOT}/out/team.md")
return {"lines": len(back["content"].splitlines()), "first": back["content"].splitlines()[0]}
""", lambda r: r == {"lines": len(TEAM) + 2, "first": "# Team"}, ["write_file"]),
    Case("gather_return_exceptions", VALID, """\
ids = ["c001", "c002", "c999", "c060", "c404"]
results = await asyncio.gather(*[leads.get_company(company_id=i) for i in ids], return_exceptions=True)
found = {i: r["name"] for i, r in zip(ids, results) if not isinstance(r, Exception)}
failed = [i for i, r in zip(ids, results) if isinstance(r, ToolError)]
return {"found": found, "failed": failed}
""", lambda r: r == {"found": {c: COMPANIES[c]["name"] for c in ("c001", "c002", "c060")},
                     "failed": ["c999", "c404"]}, ["ToolError"]),
    Case("all_quarters_matrix", VALID, """\
members = await team.get_team_members()
quarters = ["Q1", "Q2", "Q3", "Q4"]
grid = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter=q)
                              for q in quarters for m in members])
n = len(members)
return {q: round(sum(e["amount"] for recs in grid[i * n:(i + 1) * n] for e in recs), 2)
        for i, q in enumerate(quarters)}
""", lambda r: all(close(r[q], TEAM_BY_Q[q]) for q in QUARTERS), ["quarter"]),
    Case("taskgroup_catch_inside", VALID, """\
found: dict[str, str] = {}
missing: list[str] = []

async def fetch(cid: str) -> None:
    try:
        found[cid] = (await jobs.get_company_details(company_id=cid))["name"]
    except ToolError:
        missing.append(cid)

async with asyncio.TaskGroup() as tg:
    for cid in ["c001", "c059", "c060", "c061", "c062"]:
        tg.create_task(fetch(cid))
return {"found": sorted(found), "missing": sorted(missing)}
""", lambda r: r == {"found": ["c001", "c059", "c060"], "missing": ["c061", "c062"]},
         ["TaskGroup"]),
    Case("as_completed_progress", VALID, """\
members = await team.get_team_members()
coros = [team.get_expenses(member_id=m["id"], quarter="Q3") for m in members]
totals = {}
for i, fut in enumerate(asyncio.as_completed(coros), 1):
    records = await fut
    totals[records[0]["member_id"]] = sum(r["amount"] for r in records)
    if i % 5 == 0:
        print(f"{i}/{len(coros)} done")
names = {m["id"]: m["name"] for m in members}
return sorted(names[k] for k, v in totals.items() if v > 10_000)
""", lambda r: r == sorted(OVER), ["as_completed"]),
    Case("sync_sleep_rate_limit", VALID, """\
import time

members = await team.get_team_members()
over = []
for m in members:
    records = await team.get_expenses(member_id=m["id"], quarter="Q3")
    if sum(r["amount"] for r in records) > 10_000:
        over.append(m["name"])
    time.sleep(0.05)  # be nice to the API
return over
""", lambda r: r == OVER, ["sleep"]),
    Case("zoneinfo_local_times", VALID, """\
from datetime import datetime
from zoneinfo import ZoneInfo

CITY_TZ = {"Berlin": "Europe/Berlin", "Lisbon": "Europe/Lisbon", "Toronto": "America/Toronto",
           "Osaka": "Asia/Tokyo", "Austin": "America/Chicago"}
now = datetime.fromisoformat((await time.get_current_time(timezone="UTC"))["datetime"])
members = await team.get_team_members()
local = {}
for m in members:
    t = now.astimezone(ZoneInfo(CITY_TZ[m["location"]]))
    local[m["location"]] = t.utcoffset().total_seconds() / 3600
return local
""", lambda r: r.keys() == {m["location"] for m in TEAM} and r["Osaka"] == 9.0
        and r["Berlin"] in (1.0, 2.0) and r["Austin"] in (-6.0, -5.0), ["ZoneInfo"]),
    Case("tenure_dates", VALID, """\
from datetime import date

REFERENCE = date(2026, 1, 1)
members = await team.get_team_members()

def tenure_days(m: dict) -> int:
    return (REFERENCE - date.fromisoformat(m["start_date"])).days

longest = max(members, key=tenure_days)
avg_years = sum(tenure_days(m) for m in members) / len(members) / 365.25
return {"longest": longest["name"], "avg_years": round(avg_years, 2)}
""", lambda r: r["longest"] == LONGEST["name"] and close(r["avg_years"], round(statistics.mean(
        (REF - date.fromisoformat(m["start_date"])).days for m in TEAM) / 365.25, 2)),
         ["start_date"]),
    Case("main_guard_await", VALID, """\
async def main() -> None:
    offers = await jobs.get_job_offers()
    remote = sorted((o for o in offers if o["remote"]), key=lambda o: -o["salary"])
    for o in remote[:3]:
        print(f"{o['id']}: {o['title']} ${o['salary']:,}")


if __name__ == "__main__":
    await main()
""", printed_has(*[o["id"] + ":" for o in sorted((o for o in OFFERS if o["remote"]),
                                                key=lambda o: -o["salary"])[:3]]),
         ["main"], printed=True),
    Case("retry_decorator", VALID, """\
import functools
import random
from collections import Counter


def retry(times: int = 3, delay: float = 0.01):
    def deco(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            for attempt in range(1, times + 1):
                try:
                    return await fn(*args, **kwargs)
                except ToolError:
                    if attempt == times:
                        raise
                    await asyncio.sleep(delay * attempt + random.random() / 100)
        return wrapper
    return deco


@retry(times=3)
async def company(cid: str) -> dict:
    return await jobs.get_company_details(company_id=cid)


offers = await jobs.get_job_offers()
details = await asyncio.gather(*(company(o["company_id"]) for o in offers))
return dict(sorted(Counter(d["country"] for d in details).items()))
""", lambda r: r == dict(sorted(Counter(COMPANIES[o["company_id"]]["country"]
                                        for o in OFFERS).items())), ["country"]),
    Case("partial_and_kwargs", VALID, """\
import functools

q3 = functools.partial(team.get_expenses, quarter="Q3")
params = {"member_id": "{M1}"}
mine = await q3(**params)
members = await team.get_team_members()
everyone = await asyncio.gather(*map(lambda m: q3(member_id=m["id"]), members))
return {"mine": round(sum(e["amount"] for e in mine), 2),
        "records": sum(len(r) for r in everyone)}
""", lambda r: close(r["mine"], Q3[M1]) and r["records"] == 5 * len(TEAM), ["quarter"]),
    Case("fs_edit_dry_run", VALID, """\
diff = await fs.edit_file(
    path="{ROOT}/notes.txt",
    edits=[{"oldText": "ship the report", "newText": "ship the Q3 report"}],
    dryRun=True,
)
text = diff["content"]
return {"changed": "+ship the Q3 report" in text, "removed": "-ship the report" in text}
""", lambda r: r == {"changed": True, "removed": True}, ["edit_file"]),
    Case("git_show_head", VALID, """\
show = await git.git_show(repo_path="{REPO}", revision="HEAD")
return {"is_latest": "Document the report script" in show, "touches_readme": "README.md" in show}
""", lambda r: r == {"is_latest": True, "touches_readme": True}, ["git_show"]),
    Case("clock_skew", VALID, """\
from datetime import datetime, timezone

tool_now = datetime.fromisoformat((await time.get_current_time(timezone="UTC"))["datetime"])
local_now = datetime.now(timezone.utc)
return {"skew_s": abs((local_now - tool_now).total_seconds()), "sandbox_utc": local_now.isoformat()}
""", lambda r: r["skew_s"] < 5 and recent(r["sandbox_utc"]), ["datetime"]),
    Case("json_dumps_default_str", VALID, """\
from datetime import datetime, timezone

offers = await jobs.get_job_offers()
report = {"generated": datetime.now(timezone.utc), "count": len(offers),
          "titles": sorted({o["title"] for o in offers})}
print(json.dumps(report, default=str))
""", lambda r: r["count"] == len(OFFERS) and r["titles"] == sorted({o["title"] for o in OFFERS}),
         ["isoformat"], printed=True),
    Case("async_context_client", VALID, """\
class ExpenseClient:
    \"\"\"Small wrapper so the rest of the code doesn't care about the tool names.\"\"\"

    def __init__(self, quarter: str):
        self.quarter = quarter
        self.calls = 0

    async def __aenter__(self) -> "ExpenseClient":
        self.members = await team.get_team_members()
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def total(self, member_id: str) -> float:
        self.calls += 1
        records = await team.get_expenses(member_id=member_id, quarter=self.quarter)
        return sum(r["amount"] for r in records)


async with ExpenseClient("Q3") as client:
    totals = await asyncio.gather(*(client.total(m["id"]) for m in client.members))
    over = [m["name"] for m, t in zip(client.members, totals) if t > 10_000]
return {"calls": client.calls, "over": over}
""", lambda r: r == {"calls": len(TEAM), "over": OVER}, ["get_expenses"]),
    Case("from_time_import_and_tool", VALID, """\
from time import perf_counter, sleep

t0 = perf_counter()
berlin = await time.get_current_time(timezone="Europe/Berlin")
sleep(0.01)
return {"tz": berlin["timezone"], "elapsed_ok": perf_counter() - t0 >= 0.01}
""", lambda r: r == {"tz": "Europe/Berlin", "elapsed_ok": True}, ["import time"]),
    Case("toolerror_str_and_attrs", VALID, """\
try:
    await team.get_expenses(member_id="m99999", quarter="Q3")
    outcome = "no error"
except ToolError as err:
    outcome = "error"
    text = str(err)
return {"outcome": outcome, "mentions_id": "m99999" in text}
""", lambda r: r == {"outcome": "error", "mentions_id": True}, ["ToolError"]),

    # == tools as a registry, or MCP client APIs ===========================================
    Case("tools_subscript", REGISTRY, """\
get_members = tools["team.get_team_members"]
members = await get_members()
return {"team_size": len(members)}
""", lambda r: r == {"team_size": len(TEAM)}, ["team.get_team_members"]),
    Case("tools_call_string", REGISTRY, """\
members = await tools.call("team.get_team_members", {})
managers = [m["name"] for m in members if m["role"] == "manager"]
return {"managers": managers}
""", lambda r: r == {"managers": [m["name"] for m in TEAM if m["role"] == "manager"]},
         ["team.get_team_members"]),
    Case("call_tool_flat_kwargs", REGISTRY, """\
records = await call_tool("get_expenses", member_id="{M1}", quarter="Q3")
return {"total": round(sum(r["amount"] for r in records), 2)}
""", lambda r: close(r["total"], Q3[M1]), [("team.get_expenses", "server")]),
    Case("mcp_request_dict", REGISTRY, """\
request = {"name": "get_expenses", "arguments": {"member_id": "{M1}", "quarter": "Q3"}}
records = await team.get_expenses(request)
return len(records)
""", lambda r: r == 5, [("member_id=", "**")]),
    Case("mcp_session_call", REGISTRY, """\
result = await session.call_tool("get_team_members", arguments={})
members = json.loads(result.content[0].text)
return {"team_size": len(members)}
""", lambda r: r == {"team_size": len(TEAM)}, ["team.get_team_members"]),
    Case("tools_items_loop", REGISTRY, """\
available = {}
for name, fn in tools.items():
    available[name] = fn.__doc__.splitlines()[0] if fn.__doc__ else ""
return sorted(available)
""", lambda r: "team.get_expenses" in r and len(r) >= 30, [("tools.list", "tools.search")]),
    Case("namespace_subscript", REGISTRY, """\
fn = team["get_expenses"]
records = await fn(member_id="{M1}", quarter="Q3")
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["team.get_expenses"]),

    # == names from other tool-calling conventions ========================================
    Case("claude_code_mcp_name", NAMES, """\
members = await mcp__team__get_team_members()
return sorted({m["department"] for m in members})
""", lambda r: r == DEPTS, [("team.get_team_members", "get_team_members")]),
    Case("gemini_default_api_flat", NAMES, """\
result = default_api.team_get_expenses(member_id="{M1}", quarter="Q3")
total = sum(r["amount"] for r in result)
print(f"Total: {total:.2f}")
""", lambda r: r == f"Total: {Q3[M1]:.2f}", ["team.get_expenses", "await"], printed=True),
    Case("jobs_get_company", NAMES, """\
offers = await jobs.get_job_offers()
best = max(offers, key=lambda o: o["salary"])
company = await jobs.get_company(company_id=best["company_id"])
return {"title": best["title"], "company": company["name"]}
""", lambda r: r == {"title": BEST["title"], "company": COMPANIES[BEST["company_id"]]["name"]},
         [("get_company_details", "leads.get_company")]),

    # == await / async mistakes ===========================================================
    Case("small_model_sync", AWAIT, """\
members = get_team_members()
first = members[0]
expenses = get_expenses(first["id"], "Q3")
print(sum(e["amount"] for e in expenses))
""", lambda r: close(r, Q3[M1]), ["await"], printed=True),
    Case("result_on_coroutine", AWAIT, """\
offers = jobs.get_job_offers().result()
return max(o["salary"] for o in offers)
""", lambda r: r == BEST["salary"], ["await"]),
    Case("listcomp_await_in_def", AWAIT, """\
def fetch_companies(ids):
    return [await jobs.get_company_details(company_id=c) for c in ids]

offers = await jobs.get_job_offers()
companies = fetch_companies(sorted({o["company_id"] for o in offers}))
return len(companies)
""", lambda r: r == len({o["company_id"] for o in OFFERS}), ["async def"]),
    Case("await_in_sort_key", AWAIT, """\
offers = await jobs.get_job_offers()
ranked = sorted(offers, key=lambda o: (await jobs.get_company_details(company_id=o["company_id"]))["employees"], reverse=True)
return [o["id"] for o in ranked[:3]]
""", lambda r: r == [o["id"] for o in sorted(
        OFFERS, key=lambda o: COMPANIES[o["company_id"]]["employees"], reverse=True)[:3]],
         ["gather"]),
    Case("async_gen_plain_for", AWAIT, """\
async def expenses_of(members):
    for m in members:
        yield m, await team.get_expenses(member_id=m["id"], quarter="Q3")

members = await team.get_team_members()
over = []
for m, records in expenses_of(members):
    if sum(r["amount"] for r in records) > 10_000:
        over.append(m["name"])
return over
""", lambda r: r == OVER, ["async for"]),

    # == concurrency APIs misused =========================================================
    Case("asyncio_wait_coroutines", CONCURRENCY, """\
members = await team.get_team_members()
done, pending = await asyncio.wait(
    [team.get_expenses(member_id=m["id"], quarter="Q3") for m in members]
)
totals = [sum(e["amount"] for e in task.result()) for task in done]
return {"over_budget": sum(t > 10_000 for t in totals)}
""", lambda r: r == {"over_budget": len(OVER)}, [("gather", "create_task")]),
    Case("taskgroup_result_early", CONCURRENCY, """\
members = await team.get_team_members()
async with asyncio.TaskGroup() as tg:
    tasks = {m["name"]: tg.create_task(team.get_expenses(member_id=m["id"], quarter="Q3"))
             for m in members}
    totals = {name: sum(e["amount"] for e in t.result()) for name, t in tasks.items()}
return [name for name, total in totals.items() if total > 10_000]
""", lambda r: r == OVER, [("await", "after")]),
    Case("threadpool_map", CONCURRENCY, """\
from concurrent.futures import ThreadPoolExecutor

members = await team.get_team_members()

def total(member):
    records = asyncio.run(team.get_expenses(member_id=member["id"], quarter="Q3"))
    return sum(r["amount"] for r in records)

with ThreadPoolExecutor(max_workers=8) as pool:
    totals = list(pool.map(total, members))
return [m["name"] for m, t in zip(members, totals) if t > 10_000]
""", lambda r: r == OVER, ["gather"]),
    Case("fire_and_forget_tasks", CONCURRENCY, """\
totals = {}

async def fetch(member):
    records = await team.get_expenses(member_id=member["id"], quarter="Q3")
    totals[member["name"]] = sum(r["amount"] for r in records)

for m in await team.get_team_members():
    asyncio.create_task(fetch(m))

return {"members": len(totals), "over": sorted(n for n, t in totals.items() if t > 10_000)}
""", lambda r: r == {"members": len(TEAM), "over": sorted(OVER)}, [("gather", "await")]),
    Case("gather_dict_keys", CONCURRENCY, """\
members = await team.get_team_members()
calls = {m["id"]: team.get_expenses(member_id=m["id"], quarter="Q3") for m in members}
results = dict(zip(calls, await asyncio.gather(*calls)))
return {k: round(sum(e["amount"] for e in v), 2) for k, v in results.items() if k == "{M1}"}
""", lambda r: close(r[M1], Q3[M1]), ["values()"]),
    Case("lru_cache_coroutine", CONCURRENCY, """\
from functools import lru_cache

@lru_cache(maxsize=None)
async def company(cid):
    return await jobs.get_company_details(company_id=cid)

industries = {}
for offer in await jobs.get_job_offers():
    c = await company(offer["company_id"])
    industries[c["industry"]] = industries.get(c["industry"], 0) + 1
return industries
""", lambda r: r == dict(Counter(COMPANIES[o["company_id"]]["industry"] for o in OFFERS)),
         ["lru_cache"]),

    # == event loops ======================================================================
    Case("asyncio_run_in_sync_helper", LOOP, """\
def fetch_company(cid: str) -> dict:
    return asyncio.run(jobs.get_company_details(company_id=cid))

offers = await jobs.get_job_offers()
best = max(offers, key=lambda o: o["salary"])
company = fetch_company(best["company_id"])
return {"title": best["title"], "company": company["name"]}
""", lambda r: r == {"title": BEST["title"], "company": COMPANIES[BEST["company_id"]]["name"]},
         ["async def"]),
    Case("asyncio_runner", LOOP, """\
import asyncio


async def main() -> dict:
    members = await team.get_team_members()
    return {"locations": sorted({m["location"] for m in members})}


with asyncio.Runner() as runner:
    summary = runner.run(main())
summary
""", lambda r: r == {"locations": sorted({m["location"] for m in TEAM})}, ["await main()"]),
    Case("new_event_loop", LOOP, """\
import asyncio
import json


async def build_report():
    offers = await jobs.get_job_offers()
    return {"offers": len(offers), "remote": sum(o["remote"] for o in offers)}


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
try:
    report = loop.run_until_complete(build_report())
finally:
    loop.close()
print(json.dumps(report))
""", lambda r: r == {"offers": len(OFFERS), "remote": sum(o["remote"] for o in OFFERS)},
         ["await build_report()"], printed=True),
    Case("nest_asyncio", LOOP, """\
import nest_asyncio
nest_asyncio.apply()


async def main():
    members = await team.get_team_members()
    return len(members)

print(asyncio.run(main()))
""", lambda r: r == len(TEAM), ["await"], printed=True),

    # == arguments of the wrong shape or value ============================================
    Case("quarter_iso_format", OTHER, """\
members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="2024-Q3") for m in members])
over = [m["name"] for m, recs in zip(members, spend) if sum(r["amount"] for r in recs) > 10_000]
return {"over_budget": over, "count": len(over)}
""", lambda r: r == {"over_budget": OVER, "count": len(OVER)}, ["Q3"]),
    Case("quarter_as_int", PRECHECK, """\
records = await team.get_expenses(member_id="{M1}", quarter=3)
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["quarter", ("str", "string")]),
    Case("member_ids_from_range", OTHER, """\
totals = await asyncio.gather(*[team.get_expenses(member_id=i, quarter="Q3") for i in range(1, 21)])
return sum(1 for recs in totals if sum(r["amount"] for r in recs) > 10_000)
""", lambda r: r == len(OVER), [("str", "string")]),
    Case("pagination_kwargs", PRECHECK, """\
offers, page = [], 1
while True:
    batch = await jobs.get_job_offers(page=page, per_page=50)
    if not batch:
        break
    offers.extend(batch)
    page += 1
return {"offers": len(offers)}
""", lambda r: r == {"offers": len(OFFERS)}, ["get_job_offers()"]),
    Case("two_wrong_keywords", PRECHECK, """\
log = await git.git_log(repo="{REPO}", limit=5)
return log.count("Commit:")
""", lambda r: r == 3, ["repo_path", "max_count"]),
    Case("score_lead_by_id", PRECHECK, """\
pending = await leads.get_leads(query="unqualified")
scores = await asyncio.gather(*[leads.score_lead(lead_id=x["id"]) for x in pending[:10]])
return dict(zip([x["id"] for x in pending[:10]], scores))
""", lambda r: r == {x["id"]: data.score(x) for x in UNQUALIFIED[:10]}, ["lead"]),
    Case("score_lead_id_string", OTHER, """\
pending = await leads.get_leads(query="unqualified")
scores = await asyncio.gather(*[leads.score_lead(lead=x["id"]) for x in pending[:10]])
return dict(zip([x["id"] for x in pending[:10]], scores))
""", lambda r: r == {x["id"]: data.score(x) for x in UNQUALIFIED[:10]}, ["dict"]),

    # == result shapes assumed wrongly ====================================================
    Case("status_code_check", RAW, """\
company = await jobs.get_company_details(company_id="c003")
if company.status_code != 200:
    raise RuntimeError(f"lookup failed: {company.status_code}")
return company["name"]
""", lambda r: r == C003["name"], ["industry"]),
    Case("result_wrapper_key", RAW, """\
now = (await time.get_current_time(timezone="Asia/Tokyo"))["result"]["datetime"]
return {"tokyo": now}
""", lambda r: r["tokyo"].endswith("+09:00") and recent(r["tokyo"]), ["day_of_week"]),
    Case("content_blocks_join", RAW, """\
res = await fs.read_text_file(path="{ROOT}/notes.txt")
text = "".join(block.get("text", "") for block in res["content"] if block.get("type") == "text")
return {"lines": text.count("\\n")}
""", lambda r: r == {"lines": 4}, ["content", ("str", "string")]),
    Case("loads_git_text", DECODE, """\
status = json.loads(await git.git_status(repo_path="{REPO}"))
return {"branch": status["branch"], "clean": not status["files"]}
""", lambda r: r == {"branch": "main", "clean": True}, [("str", "plain text")]),
    Case("try_except_swallows", OTHER, """\
try:
    members = await team.get_team_members()
    spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
    over = []
    for m, recs in zip(members, spend):
        total = sum(e["cost"] for e in recs)
        if total > 10_000:
            over.append({"name": m["name"], "total": round(total, 2)})
    return {"over_budget": over}
except Exception as e:
    return {"error": str(e)}
""", lambda r: [o["name"] for o in r["over_budget"]] == OVER, ["amount"]),
    Case("strptime_iso", OTHER, """\
from datetime import datetime

now = await time.get_current_time(timezone="UTC")
dt = datetime.strptime(now["datetime"], "%Y-%m-%dT%H:%M:%S")
return {"hour": dt.hour, "weekday": dt.strftime("%A")}
""", lambda r: isinstance(r["hour"], int) and isinstance(r["weekday"], str),
         [("fromisoformat", "%z")]),
    Case("naive_vs_aware", OTHER, """\
from datetime import datetime

now = datetime.fromisoformat((await time.get_current_time(timezone="UTC"))["datetime"])
cutoff = datetime(2026, 1, 1)
return {"after_cutoff": now > cutoff}
""", lambda r: r == {"after_cutoff": True}, [("tzinfo", "timezone.utc", "aware")]),

    # == text results of git and fs =======================================================
    Case("csv_reader_on_result", TEXT, """\
import csv

rows = list(csv.DictReader(await fs.read_text_file(path="{ROOT}/budget.csv")))
budgets = {row["department"]: int(row["budget"]) for row in rows if "department" in row}
return {"budgets": budgets, "total": sum(budgets.values())}
""", lambda r: r == {"budgets": BUDGETS, "total": sum(BUDGETS.values())}, ["content"]),
    Case("multiple_files_unpack", TEXT, """\
notes, budget = await fs.read_multiple_files(paths=["{ROOT}/notes.txt", "{ROOT}/budget.csv"])
return {"notes_lines": len(notes.splitlines()), "budget_rows": len(budget.splitlines()) - 1}
""", lambda r: r == {"notes_lines": 4, "budget_rows": 4}, ["content"]),
    Case("git_log_oneline_parse", TEXT, """\
log = await git.git_log(repo_path="{REPO}", max_count=3)
commits = []
for line in log.strip().splitlines():
    sha, message = line.split(" ", 1)
    commits.append({"sha": sha[:7], "message": message})
return commits
""", lambda r: [c["message"] for c in r] == MESSAGES, [("Message:", "Commit:")]),

    # == host files, processes and the console ============================================
    Case("os_getcwd_listing", HOST, """\
import os

listing = await fs.list_directory(path=os.getcwd())
files = [line.split(" ", 1)[1] for line in listing["content"].splitlines() if line.startswith("[FILE]")]
return sorted(files)
""", lambda r: r == ["budget.csv", "notes.txt"], [("list_allowed_directories", "{ROOT}")]),
    Case("input_prompt", HOST, """\
quarter = input("Quarter (e.g. Q3): ").strip() or "Q3"
records = await team.get_expenses(member_id="{M1}", quarter=quarter)
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["input"]),
    Case("sys_argv_required", HOST, """\
import sys

member_id, quarter = sys.argv[1], sys.argv[2]
records = await team.get_expenses(member_id=member_id, quarter=quarter)
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["argv"]),
    Case("pathlib_write_report", HOST, """\
from pathlib import Path

members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
lines = ["# Over budget (Q3)", ""]
for m, recs in zip(members, spend):
    total = sum(r["amount"] for r in recs)
    if total > 10_000:
        lines.append(f"- {m['name']}: ${total:,.2f}")
out = Path("{ROOT}/out/over_budget.md")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("\\n".join(lines) + "\\n")
return {"path": str(out), "entries": len(lines) - 2}
""", lambda r: host_file(r, OVER[0]), ["write_file"]),
    Case("shutil_copy", HOST, """\
import shutil

dst = shutil.copy("{ROOT}/notes.txt", "{ROOT}/out/notes-backup.txt")
return {"path": dst}
""", lambda r: host_file(r, "standup"), [("read_text_file", "write_file")]),

    # == imports ==========================================================================
    Case("mcp_error_import", IMPORTS, """\
from mcp.shared.exceptions import McpError

try:
    company = await jobs.get_company_details(company_id="c999")
except McpError as e:
    company = {"error": str(e)}
return {"found": "error" not in company}
""", lambda r: r == {"found": False}, ["ToolError"]),
    Case("pydantic_models", IMPORTS, """\
from pydantic import BaseModel


class Offer(BaseModel):
    id: str
    title: str
    salary: int
    remote: bool


offers = [Offer(**o) for o in await jobs.get_job_offers()]
return {"remote": sum(o.remote for o in offers)}
""", lambda r: r == {"remote": sum(o["remote"] for o in OFFERS)},
         [("dataclasses", "TypedDict")]),
    Case("pytz_timezone", IMPORTS, """\
from datetime import datetime
import pytz

tokyo = pytz.timezone("Asia/Tokyo")
now = datetime.now(pytz.utc).astimezone(tokyo)
return {"tokyo_offset_h": now.utcoffset().total_seconds() / 3600}
""", lambda r: r == {"tokyo_offset_h": 9.0}, [("zoneinfo", "convert_time")]),

    # == results that are not JSON =========================================================
    Case("print_json_set", SERIALIZE, """\
members = await team.get_team_members()
summary = {"departments": {m["department"] for m in members}, "size": len(members)}
print(json.dumps(summary))
""", lambda r: sorted(r["departments"]) == DEPTS and r["size"] == len(TEAM),
         [("list", "sorted")], printed=True),
    Case("return_generator", SERIALIZE, """\
members = await team.get_team_members()
return (m["name"] for m in members if m["role"] == "engineer")
""", lambda r: r == [m["name"] for m in TEAM if m["role"] == "engineer"], ["list"]),
    Case("return_dataclasses", SERIALIZE, """\
from dataclasses import dataclass

@dataclass
class Offer:
    id: str
    salary: int

offers = await jobs.get_job_offers()
top = sorted((Offer(o["id"], o["salary"]) for o in offers), key=lambda o: -o.salary)[:3]
return top
""", lambda r: r == [{"id": o["id"], "salary": o["salary"]}
                     for o in sorted(OFFERS, key=lambda o: -o["salary"])[:3]],
         [("asdict", "dict")]),
    Case("return_tuple_keys", SERIALIZE, """\
from collections import Counter

members = await team.get_team_members()
return Counter((m["department"], m["role"]) for m in members)
""", lambda r: isinstance(r, dict) and sum(r.values()) == len(TEAM)
        and len(r) == len({(m["department"], m["role"]) for m in TEAM}), [("str", "string")]),

    # == limits ===========================================================================
    Case("over_call_limit", LIMITS, """\
all_leads = await leads.get_leads(query="all")

async def enrich(lead):
    score, company = await asyncio.gather(leads.score_lead(lead=lead),
                                          leads.get_company(company_id=lead["company_id"]))
    return {"id": lead["id"], "score": score, "company": company["name"]}

rows = await asyncio.gather(*[enrich(x) for x in all_leads])
return sorted(rows, key=lambda r: -r["score"])[:5]
""", lambda r: [x["score"] for x in r] == sorted((data.score(x) for x in ALL_LEADS),
                                                  reverse=True)[:5], ["1000"]),
    Case("huge_return", LIMITS, """\
all_leads = await leads.get_leads(query="all")
scores = await asyncio.gather(*[leads.score_lead(lead=x) for x in all_leads])
return [{**x, "score": s} for x, s in zip(all_leads, scores)]
""", lambda r: isinstance(r, list) and len(r) == len(ALL_LEADS),
         [("64 KB", "summary", "smaller", "aggregate")]),
    Case("print_everything", LIMITS, """\
members = await team.get_team_members()
grid = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter=q)
                              for m in members for q in ("Q1", "Q2", "Q3", "Q4")])
for recs in grid:
    for r in recs:
        print(r)
return {"records": sum(len(r) for r in grid)}
""", lambda r: r == {"records": 5 * 4 * len(TEAM)}, ["64 KB"]),

    # == more valid programs (stdlib corners a first program reaches for) ================
    Case("strptime_start_dates", VALID, """\
from datetime import datetime

members = await team.get_team_members()
starts = {m["name"]: datetime.strptime(m["start_date"], "%Y-%m-%d") for m in members}
first = min(starts, key=starts.get)
return {"first": first, "year": starts[first].year}
""", lambda r: r == {"first": min(TEAM, key=lambda m: m["start_date"])["name"],
                     "year": int(min(m["start_date"] for m in TEAM)[:4])}, ["strptime"]),
    Case("inspect_signature", VALID, """\
import inspect

return {name: str(inspect.signature(getattr(team, name))) for name in ("get_expenses", "get_team_members")}
""", lambda r: "member_id" in r["get_expenses"] and "quarter" in r["get_expenses"],
         ["member_id"]),
    Case("stderr_and_pprint", VALID, """\
import pprint
import sys

offers = await jobs.get_job_offers()
print(f"fetched {len(offers)} offers", file=sys.stderr)
by_title = {}
for o in offers:
    by_title.setdefault(o["title"], []).append(o["salary"])
pprint.pprint({t: max(s) for t, s in sorted(by_title.items())})
return {t: max(s) for t, s in sorted(by_title.items())}
""", lambda r: r == {t: max(o["salary"] for o in OFFERS if o["title"] == t)
                     for t in sorted({o["title"] for o in OFFERS})}, ["salary"]),
    Case("semaphore_batched_suppress", VALID, """\
import contextlib
import itertools

sem = asyncio.Semaphore(4)
names = {}

async def lookup(cid: str) -> None:
    async with sem:
        with contextlib.suppress(ToolError):
            names[cid] = (await leads.get_company(company_id=cid))["name"]

ids = [f"c{i:03d}" for i in range(55, 66)]
for batch in itertools.batched(ids, 5):
    await asyncio.gather(*(lookup(c) for c in batch))
return sorted(names)
""", lambda r: r == [f"c{i:03d}" for i in range(55, 61)], ["Semaphore"]),
    Case("traceback_in_except", VALID, """\
import traceback

errors = []
for cid in ["c001", "nope"]:
    try:
        await jobs.get_company_details(company_id=cid)
    except ToolError:
        errors.append(traceback.format_exc().strip().splitlines()[-1])
return {"errors": len(errors), "last_line_mentions_id": "nope" in errors[0]}
""", lambda r: r == {"errors": 1, "last_line_mentions_id": True}, ["traceback"]),

    # == more mistakes ===================================================================
    Case("await_gather_results", AWAIT, """\
members = await team.get_team_members()
results = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
totals = [sum(e["amount"] for e in await r) for r in results]
return sum(t > 10_000 for t in totals)
""", lambda r: r == len(OVER), ["list"]),
    Case("return_decimal", SERIALIZE, """\
from decimal import Decimal, ROUND_HALF_UP

records = await team.get_expenses(member_id="{M1}", quarter="Q3")
total = sum(Decimal(str(r["amount"])) for r in records)
return {"member": "{M1}", "total": total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)}
""", lambda r: r["member"] == M1 and close(float(r["total"]), Q3[M1]), [("float", "str")]),
    Case("dunder_file_paths", HOST, """\
from pathlib import Path

BASE = Path(__file__).resolve().parent
notes = (BASE / "notes.txt").read_text()
return {"lines": len(notes.splitlines())}
""", lambda r: r == {"lines": 4}, ["read_text_file"]),
]
# fmt: on
