"""The third list of ergonomics cases, run by `python benchmarks/ergonomics.py`.

Written after the first two lists (ergonomics.py, ergonomics_more.py), without reading
their fixes, as a second held-out check: mistakes neither list was written against
(results treated as other types, argument shapes, datetime and locale habits, empty
sequences, paths) and valid programs a sandbox might get wrong. Same `Case` type,
fixtures, runner and judge as the first list.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import statistics
import sys
import textwrap
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from string import Template

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import ergonomics as E  # noqa: E402
from ergonomics import (  # noqa: E402
    AWAIT,
    BEST,
    C003,
    COMMITS,
    HOST,
    IMPORTS,
    M1,
    NAMES,
    NO_RESULT,
    NOTES,
    OFFERS,
    OVER,
    PRECHECK,
    Q3,
    README_1,
    README_3,
    TEAM,
    TEXT,
    TOOL_ERROR,
    Case,
    close,
    data,
    judged,  # noqa: F401 - reused through measure(); imported to show it is the same judge
    recent,
)

VALID = "valid"
RESULT_TYPE = "result_type"  # results treated as pydantic models, dataclasses, text, ...
ARGS = "arg_shapes"  # arguments of the wrong shape, order or value
EXIT = "exit"  # sys.exit / quit / SystemExit
CONCURRENCY = "concurrency"
COMPUTE = "compute"  # plain-Python errors on tool data (None, empty, str vs int, ...)
DATETIME = "datetime"
PATHS = "paths"  # fs / git paths relative, home, outside the root
REGISTRY = "registry"

# -- expected values -----------------------------------------------------------------------

ALL_LEADS = data.leads()
UNQUALIFIED = [x for x in ALL_LEADS if x["status"] == "unqualified"]
QUARTERS = ["Q1", "Q2", "Q3", "Q4"]
M1_BY_Q = {q: round(sum(e["amount"] for e in data.expenses(M1, q)), 2) for q in QUARTERS}
M1_Q3 = data.expenses(M1, "Q3")
TOP3 = [o["id"] for o in sorted(OFFERS, key=lambda o: o["salary"], reverse=True)[:3]]
TOP5 = [o["id"] for o in sorted(OFFERS, key=lambda o: o["salary"], reverse=True)[:5]]
BEST_BY_TITLE = {
    t: max((o for o in sorted(OFFERS, key=lambda o: (o["title"], o["salary"])) if o["title"] == t),
           key=lambda o: o["salary"])["id"]
    for t in sorted({o["title"] for o in OFFERS})
}  # fmt: skip
SCORES = [data.score(x) for x in ALL_LEADS]
C003_SHA = hashlib.sha256(
    json.dumps(C003, sort_keys=True, separators=(",", ":")).encode()
).hexdigest()
with localcontext(prec=28, rounding=ROUND_HALF_EVEN):
    DEC_TOTAL = sum(
        (Decimal(str(r["amount"])) for m in TEAM for r in data.expenses(m["id"], "Q3")), Decimal(0)
    )
    DEC_AVG = (DEC_TOTAL / len(TEAM)).quantize(Decimal("0.01"))
LOCATIONS = ", ".join(sorted({m["location"] for m in TEAM}))
WRAPPED_LINES = len(textwrap.fill("Locations: " + LOCATIONS, width=30).splitlines())
ADDED = [
    line[1:]
    for line in difflib.unified_diff(README_1.splitlines(), README_3.splitlines(), lineterm="")
    if line.startswith("+") and not line.startswith("+++")
]
ROW = Template("$name ($role) spent $$$total in $quarter")
TEMPLATE_LINES = [
    ROW.substitute(name=m["name"], role=m["role"], total=f"{Q3[m['id']]:,.2f}", quarter="Q3")
    for m in TEAM[:3]
]
TOP3_SPEND = [
    {"name": m["name"], "total": round(Q3[m["id"]], 2)}
    for m in sorted(TEAM, key=lambda m: Q3[m["id"]], reverse=True)[:3]
]
BUCKETS = Counter("large" if r["amount"] >= 1_000 else "small" for r in M1_Q3)


def shape(key: str) -> tuple[str, ...]:
    """A result treated as something it is not: the answer must say what it is (a plain,
    already parsed value) or show its real fields (a key the program did not write)."""
    return (key, "already parsed", "plain dict", "plain Python", "plain value")


# fmt: off
CASES: list[Case] = [
    # == valid programs (3.11+ features, stdlib corners, exits): each must simply work ======
    Case("exception_add_note", VALID, """\
try:
    await jobs.get_company_details(company_id="c404")
    notes = []
except ToolError as e:
    e.add_note("while looking up the best offer's company")
    notes = list(getattr(e, "__notes__", []))
return {"notes": notes}
""", lambda r: r == {"notes": ["while looking up the best offer's company"]}, ["add_note"]),
    Case("except_star_taskgroup", VALID, """\
names = {}
errors = []

async def fetch(cid):
    names[cid] = (await leads.get_company(company_id=cid))["name"]

try:
    async with asyncio.TaskGroup() as tg:
        for cid in ["c001", "c002", "c998", "c999"]:
            tg.create_task(fetch(cid))
except* ToolError as group:
    errors = [str(e) for e in group.exceptions]
return {"errors": len(errors), "all_name_an_id": all("c99" in e for e in errors)}
""", lambda r: 1 <= r["errors"] <= 2 and r["all_name_an_id"] is True, ["except*"]),
    Case("match_sequence_git_log", VALID, """\
log = await git.git_log(repo_path="{REPO}", max_count=10)
commits, current = [], {}
for line in log.splitlines():
    match line.split(": ", 1):
        case ["Commit", sha] if len(sha) == 40:
            current = {"sha": sha[:7]}
            commits.append(current)
        case ["Date", when]:
            current["day"] = when.split()[0]
        case ["Message", text]:
            current["message"] = text
        case _:
            pass
return [(c["day"], c["message"]) for c in commits]
""", lambda r: [tuple(x) for x in r] == [(f"2026-03-0{3 - i}", m) for i, (m, _) in
                                        enumerate(reversed(COMMITS))], ["Commit"]),
    Case("timeout_expires", VALID, """\
members = await team.get_team_members()
timed_out = False
try:
    async with asyncio.timeout(0.05):
        await asyncio.sleep(5)
except TimeoutError:
    timed_out = True
return {"members": len(members), "timed_out": timed_out}
""", lambda r: r == {"members": len(TEAM), "timed_out": True}, ["timeout"]),
    Case("functools_cache_helper", VALID, """\
import functools


@functools.cache
def bucket(amount: float) -> str:
    return "large" if amount >= 1_000 else "small"


records = await team.get_expenses(member_id="{M1}", quarter="Q3")
counts = {}
for r in records:
    counts[bucket(r["amount"])] = counts.get(bucket(r["amount"]), 0) + 1
return {"counts": counts, "cached": bucket.cache_info().currsize}
""", lambda r: r == {"counts": dict(BUCKETS), "cached": len({x["amount"] for x in M1_Q3})},
         ["cache"]),
    Case("itemgetter_groupby", VALID, """\
from itertools import groupby
from operator import itemgetter

offers = await jobs.get_job_offers()
offers.sort(key=itemgetter("title", "salary"))
return {title: max(group, key=itemgetter("salary"))["id"]
        for title, group in groupby(offers, key=itemgetter("title"))}
""", lambda r: r == BEST_BY_TITLE, ["itemgetter"]),
    Case("dataclass_slots_order", VALID, """\
from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True, order=True, kw_only=True)
class Offer:
    salary: int
    id: str = field(compare=False)
    remote: bool = field(compare=False, default=False)


offers = [Offer(salary=o["salary"], id=o["id"], remote=o["remote"])
          for o in await jobs.get_job_offers()]
top = sorted(offers, reverse=True)[:3]
return {"top": [o.id for o in top], "has_dict": hasattr(top[0], "__dict__")}
""", lambda r: r == {"top": TOP3, "has_dict": False}, ["slots"]),
    Case("strenum_quarter_param", VALID, """\
from enum import StrEnum


class Quarter(StrEnum):
    Q1 = "Q1"
    Q2 = "Q2"
    Q3 = "Q3"
    Q4 = "Q4"


results = await asyncio.gather(*[team.get_expenses(member_id="{M1}", quarter=q) for q in Quarter])
return {q: round(sum(r["amount"] for r in recs), 2) for q, recs in zip(Quarter, results)}
""", lambda r: r.keys() == set(QUARTERS) and all(close(r[q], M1_BY_Q[q]) for q in QUARTERS),
         ["StrEnum"]),
    Case("zoneinfo_vs_convert_time", VALID, """\
from datetime import datetime
from zoneinfo import ZoneInfo

conv = await time.convert_time(source_timezone="UTC", time="12:00", target_timezone="Europe/London")
source = datetime.fromisoformat(conv["source"]["datetime"])
target = datetime.fromisoformat(conv["target"]["datetime"])
local = source.astimezone(ZoneInfo("Europe/London"))
return {"agree": local == target and local.utcoffset() == target.utcoffset(),
        "offset_h": local.utcoffset().total_seconds() / 3600,
        "dst_agrees": conv["target"]["is_dst"] == bool(local.dst())}
""", lambda r: r["agree"] is True and r["dst_agrees"] is True and r["offset_h"] in (0.0, 1.0),
         ["ZoneInfo"]),
    Case("decimal_localcontext", VALID, """\
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
with localcontext(prec=28, rounding=ROUND_HALF_EVEN):
    total = sum((Decimal(str(r["amount"])) for recs in spend for r in recs), Decimal(0))
    avg = (total / len(members)).quantize(Decimal("0.01"))
return {"total": str(total), "avg_per_member": str(avg)}
""", lambda r: r == {"total": str(DEC_TOTAL), "avg_per_member": str(DEC_AVG)}, ["Decimal"]),
    Case("fractions_budget_share", VALID, """\
from fractions import Fraction

text = (await fs.read_text_file(path="{ROOT}/budget.csv"))["content"]
rows = [line.split(",") for line in text.strip().splitlines()[1:]]
budgets = {dept: int(amount) for dept, amount in rows}
total = sum(budgets.values())
shares = {dept: Fraction(b, total) for dept, b in budgets.items()}
return {**{d: f"{s.numerator}/{s.denominator}" for d, s in shares.items()},
        "sums_to_one": sum(shares.values()) == 1}
""", lambda r: r == {"platform": "9/20", "growth": "3/10", "data": "3/20", "field": "1/10",
                     "sums_to_one": True}, ["Fraction"]),
    Case("textwrap_write_read", VALID, """\
import textwrap

members = await team.get_team_members()
locations = ", ".join(sorted({m["location"] for m in members}))
body = textwrap.dedent(f'''\\
    # Team report
    Members: {len(members)}
    Locations: {locations}
''')
wrapped = textwrap.fill("Locations: " + locations, width=30)
await fs.write_file(path="{ROOT}/out/report.md", content=body)
back = (await fs.read_text_file(path="{ROOT}/out/report.md"))["content"]
return {"same": back == body, "first": back.splitlines()[0],
        "wrapped_lines": len(wrapped.splitlines())}
""", lambda r: r == {"same": True, "first": "# Team report", "wrapped_lines": WRAPPED_LINES},
         ["dedent"]),
    Case("difflib_readme_versions", VALID, """\
import difflib

old = await git.git_show(repo_path="{REPO}", revision="HEAD~2:README.md")
new = (await fs.read_text_file(path="{REPO}/README.md"))["content"]
diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", lineterm=""))
added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
ratio = difflib.SequenceMatcher(None, old, new).ratio()
return {"added": added, "similar": 0.3 < ratio < 1.0}
""", lambda r: r == {"added": ADDED, "similar": True}, ["difflib"]),
    Case("string_template_lines", VALID, """\
from string import Template

row = Template("$name ($role) spent $$$total in $quarter")
members = (await team.get_team_members())[:3]
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
return [row.substitute(name=m["name"], role=m["role"],
                       total=f"{sum(r['amount'] for r in recs):,.2f}", quarter="Q3")
        for m, recs in zip(members, spend)]
""", lambda r: r == TEMPLATE_LINES, ["Template"]),
    Case("call_tool_by_server", VALID, """\
log = await call_tool("git", "git_log", {"repo_path": "{REPO}", "max_count": 2})
members = await call_tool("team", "get_team_members", {})
return {"commits": log.count("Commit: "), "members": len(members)}
""", lambda r: r == {"commits": 2, "members": len(TEAM)}, ["call_tool"]),
    Case("logging_default_level", VALID, """\
import logging

log = logging.getLogger(__name__)
offers = await jobs.get_job_offers()
logging.info("dropped: the root logger is at WARNING by default")
log.warning("checked %d offers", len(offers))
if not any(o["remote"] for o in offers):
    log.error("no remote offers")
return {"offers": len(offers), "remote": sum(o["remote"] for o in offers)}
""", lambda r: r == {"offers": len(OFFERS), "remote": sum(o["remote"] for o in OFFERS)},
         ["logging"]),
    Case("warnings_warn_continue", VALID, """\
import warnings

offers = await jobs.get_job_offers()
if len(offers) > 10:
    warnings.warn(f"{len(offers)} offers; only the top 5 are returned", stacklevel=2)
warnings.warn("the salary field is deprecated", DeprecationWarning)
top = sorted(offers, key=lambda o: o["salary"], reverse=True)[:5]
return [o["id"] for o in top]
""", lambda r: r == TOP5, ["warn"]),
    Case("sys_exit_zero_after_print", VALID, """\
import sys

members = await team.get_team_members()
print(json.dumps({"members": len(members), "managers": sum(m["role"] == "manager" for m in members)}))
sys.exit(0)
""", lambda r: r == {"members": len(TEAM), "managers": sum(m["role"] == "manager" for m in TEAM)},
         ["exit"], printed=True),
    Case("quit_unreached_branch", VALID, """\
members = await team.get_team_members()
if not members:
    print("no team members found")
    quit()
return {"members": len(members)}
""", lambda r: r == {"members": len(TEAM)}, ["quit"]),
    Case("sys_exit_await_main", VALID, """\
import sys


async def main() -> int:
    offers = await jobs.get_job_offers()
    print(f"{len(offers)} offers, best {max(o['salary'] for o in offers)}")
    return 0


if __name__ == "__main__":
    sys.exit(await main())
""", lambda r: r == f"{len(OFFERS)} offers, best {BEST['salary']}", ["exit"], printed=True),
    Case("threading_lock_guard", VALID, """\
import threading

lock = threading.Lock()
totals = {}


async def total(m):
    records = await team.get_expenses(member_id=m["id"], quarter="Q3")
    with lock:
        totals[m["name"]] = sum(r["amount"] for r in records)


members = await team.get_team_members()
await asyncio.gather(*(total(m) for m in members))
return sorted(n for n, t in totals.items() if t > 10_000)
""", lambda r: r == sorted(OVER), ["Lock"]),
    Case("semaphore_score_all", VALID, """\
sem = asyncio.Semaphore(20)


async def bounded(coro):
    async with sem:
        return await coro


everyone = await leads.get_leads(query="all")
scores = await asyncio.gather(*(bounded(leads.score_lead(lead=x)) for x in everyone))
return {"scored": len(scores), "hot": sum(s >= 0.7 for s in scores), "best": max(scores)}
""", lambda r: r == {"scored": len(ALL_LEADS), "hot": sum(s >= 0.7 for s in SCORES),
                     "best": max(SCORES)}, ["Semaphore"]),
    Case("pickle_deepcopy_results", VALID, """\
import copy
import pickle

members = await team.get_team_members()
blob = pickle.dumps(members)
clone = pickle.loads(blob)
deep = copy.deepcopy(members)
return {"equal": clone == members and deep == members, "first": clone[0]["name"]}
""", lambda r: r == {"equal": True, "first": TEAM[0]["name"]}, ["pickle"]),
    Case("hashlib_json_fingerprint", VALID, """\
import hashlib

company = await jobs.get_company_details(company_id="c003")
canonical = json.dumps(company, sort_keys=True, separators=(",", ":"))
return {"sha256": hashlib.sha256(canonical.encode()).hexdigest()}
""", lambda r: r == {"sha256": C003_SHA}, ["sha256"]),
    Case("contextvar_per_task", VALID, """\
import contextvars

current = contextvars.ContextVar("member", default=None)


async def load(m):
    current.set(m["id"])
    await asyncio.sleep(0)
    records = await team.get_expenses(member_id=current.get(), quarter="Q3")
    return current.get(), len(records)


members = await team.get_team_members()
pairs = await asyncio.gather(*(load(m) for m in members))
return {"consistent": all(mid == m["id"] for (mid, _), m in zip(pairs, members)),
        "outside": current.get()}
""", lambda r: r == {"consistent": True, "outside": None}, ["ContextVar"]),
    Case("graphlib_org_order", VALID, """\
from graphlib import TopologicalSorter

members = await team.get_team_members()
graph = {m["id"]: ({m["manager_id"]} if m["manager_id"] else set()) for m in members}
order = list(TopologicalSorter(graph).static_order())
return {"first": order[0], "count": len(order)}
""", lambda r: r == {"first": TEAM[0]["id"], "count": len(TEAM)}, ["TopologicalSorter"]),
    Case("tomllib_thresholds", VALID, """\
import tomllib

CONFIG = '''
[budget]
per_member = 10_000
quarter = "Q3"
'''
cfg = tomllib.loads(CONFIG)["budget"]
members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter=cfg["quarter"])
                               for m in members])
return [m["name"] for m, recs in zip(members, spend)
        if sum(r["amount"] for r in recs) > cfg["per_member"]]
""", lambda r: r == OVER, ["tomllib"]),
    Case("fromisoformat_git_dates", VALID, """\
from datetime import datetime, timedelta

log = await git.git_log(repo_path="{REPO}", max_count=10)
dates = [datetime.fromisoformat(line.removeprefix("Date: "))
         for line in log.splitlines() if line.startswith("Date: ")]
return {"commits": len(dates), "span_days": (max(dates) - min(dates)) / timedelta(days=1),
        "aware": all(d.tzinfo is not None for d in dates)}
""", lambda r: r == {"commits": 3, "span_days": 2.0, "aware": True}, ["fromisoformat"]),
    Case("asynccontextmanager_timer", VALID, """\
import time as clock
from contextlib import asynccontextmanager

timings = {}


@asynccontextmanager
async def timed(label):
    start = clock.perf_counter()
    try:
        yield
    finally:
        timings[label] = clock.perf_counter() - start


async with timed("members"):
    members = await team.get_team_members()
async with timed("offers"):
    offers = await jobs.get_job_offers()
return {"members": len(members), "offers": len(offers), "timed": sorted(timings),
        "nonneg": all(v >= 0 for v in timings.values())}
""", lambda r: r == {"members": len(TEAM), "offers": len(OFFERS), "timed": ["members", "offers"],
                     "nonneg": True}, ["asynccontextmanager"]),
    Case("namedtuple_asdict", VALID, """\
from typing import NamedTuple


class Row(NamedTuple):
    name: str
    total: float


members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
rows = sorted((Row(m["name"], round(sum(r["amount"] for r in recs), 2))
               for m, recs in zip(members, spend)), key=lambda r: r.total, reverse=True)
return [r._asdict() for r in rows[:3]]
""", lambda r: r == TOP3_SPEND, ["_asdict"]),
    Case("aiter_anext", VALID, """\
async def by_quarter():
    for q in ("Q1", "Q2", "Q3", "Q4"):
        yield q, await team.get_expenses(member_id="{M1}", quarter=q)

it = aiter(by_quarter())
first_q, first_records = await anext(it)
rest = [q async for q, _ in it]
return {"first": first_q, "records": len(first_records), "rest": rest}
""", lambda r: r == {"first": "Q1", "records": 5, "rest": ["Q2", "Q3", "Q4"]}, ["anext"]),

    # == results treated as models, dataclasses, text ======================================
    Case("model_dump_result", RESULT_TYPE, """\
company = await jobs.get_company_details(company_id="c003")
info = company.model_dump()
return {"name": info["name"], "employees": info["employees"]}
""", lambda r: r == {"name": C003["name"], "employees": C003["employees"]}, [shape("industry")]),
    Case("dict_method_records", RESULT_TYPE, """\
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
rows = [r.dict() for r in records]
return round(sum(row["amount"] for row in rows), 2)
""", lambda r: close(r, Q3[M1]), [shape("merchant")]),
    Case("asdict_on_dict", RESULT_TYPE, """\
from dataclasses import asdict

offers = await jobs.get_job_offers()
rows = [asdict(o) for o in offers if o["remote"]]
return {"remote": len(rows), "max_salary": max(r["salary"] for r in rows)}
""", lambda r: r == {"remote": sum(o["remote"] for o in OFFERS),
                     "max_salary": max(o["salary"] for o in OFFERS if o["remote"])},
         [shape("company_id")]),
    Case("re_on_company_dict", RESULT_TYPE, """\
import re

company = await jobs.get_company_details(company_id="c003")
employees = int(re.search(r"employees\\D*(\\d+)", company).group(1))
return employees
""", lambda r: r == C003["employees"], [shape("industry")]),
    Case("json_loads_str_repr", RESULT_TYPE, """\
company = await jobs.get_company_details(company_id="c003")
parsed = json.loads(str(company))
return parsed["industry"]
""", lambda r: r == C003["industry"], [("dict", "already parsed", "str(")]),
    Case("for_kv_over_dict", RESULT_TYPE, """\
company = await jobs.get_company_details(company_id="c003")
fields = {}
for key, value in company:
    fields[key] = value
return fields
""", lambda r: r == C003, ["items()"]),
    Case("pagination_cursor", RESULT_TYPE, """\
collected, cursor = [], None
while True:
    page = await leads.get_leads(query="all", cursor=cursor) if cursor else await leads.get_leads(query="all")
    collected.extend(page["items"])
    cursor = page.get("next_cursor")
    if not cursor:
        break
return len(collected)
""", lambda r: r == len(ALL_LEADS), ["list"]),
    Case("sum_of_records", RESULT_TYPE, """\
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
return round(sum(records), 2)
""", lambda r: close(r, Q3[M1]), ["amount"]),
    Case("offers_by_id_index", RESULT_TYPE, """\
offers = await jobs.get_job_offers()
o = offers["o07"]
return {"title": o["title"], "salary": o["salary"]}
""", lambda r: r == {k: next(o for o in OFFERS if o["id"] == "o07")[k] for k in ("title", "salary")},
         ["list"]),
    Case("score_as_dict", RESULT_TYPE, """\
pending = await leads.get_leads(query="unqualified")
result = await leads.score_lead(lead=pending[0])
return {"lead": pending[0]["id"], "score": result["score"]}
""", lambda r: r == {"lead": UNQUALIFIED[0]["id"], "score": data.score(UNQUALIFIED[0])},
         ["float"]),
    Case("file_info_size", RESULT_TYPE, """\
info = await fs.get_file_info(path="{ROOT}/notes.txt")
return {"size": info["size"], "is_file": info["isFile"]}
""", lambda r: r == {"size": len(NOTES.encode()), "is_file": True}, ["content"]),
    Case("company_index_zero", RESULT_TYPE, """\
company = await jobs.get_company_details(company_id="c003")
return company[0]["name"]
""", lambda r: r == C003["name"], [shape("industry")]),
    Case("dataclass_from_record", RESULT_TYPE, """\
from dataclasses import dataclass


@dataclass
class Member:
    id: str
    name: str
    role: str


members = [Member(**m) for m in await team.get_team_members()]
return sorted({m.role for m in members})
""", lambda r: r == sorted({m["role"] for m in TEAM}), ["email"]),
    Case("start_date_strftime", RESULT_TYPE, """\
members = await team.get_team_members()
return sorted({m["start_date"].strftime("%Y") for m in members})
""", lambda r: r == sorted({m["start_date"][:4] for m in TEAM}),
         [("fromisoformat", "strptime", "[:4]")]),

    # == await and concurrency mistakes =====================================================
    Case("as_completed_no_await", AWAIT, """\
members = await team.get_team_members()
coros = [team.get_expenses(member_id=m["id"], quarter="Q3") for m in members]
over = 0
for fut in asyncio.as_completed(coros):
    records = fut
    if sum(r["amount"] for r in records) > 10_000:
        over += 1
return over
""", lambda r: r == len(OVER), ["await"]),
    Case("async_with_tool", AWAIT, """\
async with team.get_team_members() as members:
    names = [m["name"] for m in members]
return names[:3]
""", lambda r: r == [m["name"] for m in TEAM[:3]], ["await"]),
    Case("async_for_over_list", AWAIT, """\
names = []
async for m in await team.get_team_members():
    names.append(m["name"])
return len(names)
""", lambda r: r == len(TEAM), ["list"]),
    Case("await_list_of_coros", AWAIT, """\
members = await team.get_team_members()
results = await [team.get_expenses(member_id=m["id"], quarter="Q3") for m in members]
return sum(len(r) for r in results)
""", lambda r: r == 5 * len(TEAM), ["gather"]),
    Case("list_of_coros_no_gather", AWAIT, """\
members = await team.get_team_members()
pending = [team.get_expenses(member_id=m["id"], quarter="Q3") for m in members]
totals = [sum(r["amount"] for r in recs) for recs in pending]
return sum(t > 10_000 for t in totals)
""", lambda r: r == len(OVER), ["gather"]),
    Case("async_genexp_sum", AWAIT, """\
members = await team.get_team_members()
totals = (sum(r["amount"] for r in await team.get_expenses(member_id=m["id"], quarter="Q3"))
          for m in members)
return sum(t > 10_000 for t in totals)
""", lambda r: r == len(OVER), [("gather", "async for")]),
    Case("await_plain_function", AWAIT, """\
def summarize(members):
    return {"size": len(members), "roles": sorted({m["role"] for m in members})}

members = await team.get_team_members()
summary = await summarize(members)
return summary
""", lambda r: r == {"size": len(TEAM), "roles": sorted({m["role"] for m in TEAM})},
         [("async def", "summarize")]),
    Case("asyncio_sleep_unawaited", AWAIT, """\
members = await team.get_team_members()
over = []
for m in members:
    asyncio.sleep(0.01)  # rate limit
    records = await team.get_expenses(member_id=m["id"], quarter="Q3")
    if sum(r["amount"] for r in records) > 10_000:
        over.append(m["name"])
return over
""", lambda r: r == OVER, ["await"]),
    Case("gather_generator", CONCURRENCY, """\
members = await team.get_team_members()
coros = (team.get_expenses(member_id=m["id"], quarter="Q3") for m in members)
results = await asyncio.gather(coros)
return sum(len(r) for r in results)
""", lambda r: r == 5 * len(TEAM), [("gather(*", "*coros")]),
    Case("gather_named", CONCURRENCY, """\
results = await asyncio.gather(members=team.get_team_members(), offers=jobs.get_job_offers())
return {"members": len(results["members"]), "offers": len(results["offers"])}
""", lambda r: r == {"members": len(TEAM), "offers": len(OFFERS)}, [("positional", "unpack")]),
    Case("gather_uncalled_functions", CONCURRENCY, """\
members, offers = await asyncio.gather(team.get_team_members, jobs.get_job_offers)
return {"members": len(members), "offers": len(offers)}
""", lambda r: r == {"members": len(TEAM), "offers": len(OFFERS)}, ["get_team_members()"]),

    # == arguments of the wrong shape, order or value =======================================
    Case("sortby_enum_date", ARGS, """\
listing = await fs.list_directory_with_sizes(path="{ROOT}", sortBy="date")
return listing["content"].splitlines()[:3]
""", lambda r: False, ["sortBy", "size"]),
    Case("query_list_for_str", ARGS, """\
both = await leads.get_leads(query=["qualified", "unqualified"])
return len(both)
""", lambda r: r == len(ALL_LEADS), ["query", ("str", "string")]),
    Case("path_list_for_str", ARGS, """\
res = await fs.read_text_file(path=["{ROOT}/notes.txt", "{ROOT}/budget.csv"])
return len(res["content"])
""", lambda r: False, ["path", ("str", "string")]),
    Case("starstar_list", ARGS, """\
args = ["{M1}", "Q3"]
records = await team.get_expenses(**args)
return len(records)
""", lambda r: r == 5, [("*args", "member_id")]),
    Case("star_dict", ARGS, """\
params = {"member_id": "{M1}", "quarter": "Q3"}
records = await team.get_expenses(*params)
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), [("**params", "**kwargs", "**{")]),
    Case("positional_swapped", ARGS, """\
records = await team.get_expenses("Q3", "{M1}")
return len(records)
""", lambda r: r == 5, ["member_id"]),
    Case("convert_time_positional_order", ARGS, """\
tokyo = await time.convert_time("UTC", "Asia/Tokyo", "09:00")
return tokyo["target"]["datetime"]
""", lambda r: "T18:00:00+09:00" in r, ["target_timezone"]),
    Case("score_whole_list", ARGS, """\
pending = await leads.get_leads(query="unqualified")
scores = await leads.score_lead(lead=pending[:10])
return scores
""", lambda r: r == [data.score(x) for x in UNQUALIFIED[:10]], ["lead", ("dict", "object")]),
    Case("edits_wrong_keys", ARGS, """\
res = await fs.edit_file(path="{ROOT}/notes.txt",
                         edits=[{"old": "ship the report", "new": "ship the Q3 report"}],
                         dryRun=True)
return "+ship the Q3 report" in res["content"]
""", lambda r: r is True, ["oldText", "newText"]),
    Case("dryrun_string", ARGS, """\
await fs.write_file(path="{ROOT}/out/draft.txt", content="close the quarter\\n")
res = await fs.edit_file(path="{ROOT}/out/draft.txt",
                         edits=[{"oldText": "close the quarter", "newText": "close Q3"}],
                         dryRun="true")
return "+close Q3" in res["content"]
""", lambda r: r is True, ["dryRun", ("bool", "boolean")]),
    Case("convert_time_full_iso", ARGS, """\
conv = await time.convert_time(source_timezone="UTC", time="2026-03-01T12:00:00",
                               target_timezone="Asia/Tokyo")
return conv["target"]["datetime"]
""", lambda r: "21:00:00+09:00" in r, ["HH:MM"]),
    Case("query_as_filter", ARGS, """\
hot = await leads.get_leads(query="visits > 30")
best = max(hot, key=lambda x: x["visits"])
return {"hot": len(hot), "best": best["id"]}
""", lambda r: r["hot"] == sum(x["visits"] > 30 for x in ALL_LEADS), [("'all'", '"all"')]),
    Case("fs_write_dict_content", ARGS, """\
members = await team.get_team_members()
summary = {"members": len(members), "locations": sorted({m["location"] for m in members})}
await fs.write_file(path="{ROOT}/out/summary.json", content=summary)
return {"written": True}
""", lambda r: r == {"written": True} and json.loads(
        Path(PLACES["ROOT"], "out", "summary.json").read_text())["members"] == len(TEAM),
         [("json.dumps", "str", "string")]),
    Case("git_add_str_files", ARGS, """\
await git.git_add(repo_path="{REPO}", files="README.md")
status = await git.git_status(repo_path="{REPO}")
return "nothing to commit" in status
""", lambda r: r is True, ["files", ("list", "array")]),
    Case("fs_read_lines_kwarg", PRECHECK, """\
first = await fs.read_text_file(path="{ROOT}/notes.txt", lines=2)
return first["content"].splitlines()
""", lambda r: r == NOTES.splitlines()[:2], ["head"]),
    Case("git_log_since_kwarg", PRECHECK, """\
log = await git.git_log(repo_path="{REPO}", since="2026-03-02")
return log.count("Commit: ")
""", lambda r: r == 2, ["start_timestamp"]),

    # == names: hyphens, config keys, packages ==============================================
    Case("getattr_hyphen", NAMES, """\
fn = getattr(team, "get-expenses")
records = await fn(member_id="{M1}", quarter="Q3")
return len(records)
""", lambda r: r == 5, ["get_expenses"]),
    Case("call_tool_hyphen", REGISTRY, """\
records = await call_tool("team", "get-expenses", {"member_id": "{M1}", "quarter": "Q3"})
return len(records)
""", lambda r: r == 5, ["get_expenses"]),
    Case("call_tool_package_name", REGISTRY, """\
log = await call_tool("mcp-server-git", "git_log", {"repo_path": "{REPO}", "max_count": 3})
return log.count("Commit: ")
""", lambda r: r == 3, [("'git'", '"git"', "git.git_log", " git,")]),

    # == exits =============================================================================
    Case("sys_exit_error_stderr", EXIT, """\
import sys

try:
    company = await jobs.get_company_details(company_id="c999")
except ToolError as e:
    print(f"lookup failed: {e}", file=sys.stderr)
    sys.exit(1)
return company["name"]
""", lambda r: False, ["jobs.get_company_details", "c999"]),
    Case("return_print", NO_RESULT, """\
offers = await jobs.get_job_offers()
remote = [o for o in offers if o["remote"]]
return print(f"{len(remote)} remote offers")
""", lambda r: r == f"{sum(o['remote'] for o in OFFERS)} remote offers", ["return"],
         printed=True),

    # == plain-Python errors on tool data ===================================================
    Case("none_for_missing", TOOL_ERROR, """\
company = await jobs.get_company_details(company_id="c999")
if company is None:
    return {"found": False}
return {"found": True, "name": company["name"]}
""", lambda r: r == {"found": False}, ["ToolError"]),
    Case("int_id_lookup", COMPUTE, """\
members = await team.get_team_members()
by_id = {m["id"]: m for m in members}
manager = by_id[1]
return manager["name"]
""", lambda r: r == TEAM[0]["name"], [("m00001", "str")]),
    Case("fstring_none_format", COMPUTE, """\
members = await team.get_team_members()
lines = [f"{m['name']:<12} reports to {m['manager_id']:>8}" for m in members]
return lines[:3]
""", lambda r: isinstance(r, list) and len(r) == 3, [("None", "manager_id")]),
    Case("sort_by_manager_id", COMPUTE, """\
members = await team.get_team_members()
ordered = sorted(members, key=lambda m: m["manager_id"])
return [m["name"] for m in ordered[:3]]
""", lambda r: isinstance(r, list) and r[0] == TEAM[0]["name"], [("None", "manager_id")]),
    Case("max_empty_title", COMPUTE, """\
offers = await jobs.get_job_offers()
staff = [o["salary"] for o in offers if o["title"] == "Staff Engineer"]
return {"max": max(staff), "count": len(staff)}
""", lambda r: False, [("default", "Backend Engineer")]),
    Case("mean_empty_case", COMPUTE, """\
import statistics

offers = await jobs.get_job_offers()
sre = [o["salary"] for o in offers if o["title"].lower() == "SRE"]
return round(statistics.mean(sre))
""", lambda r: r == round(statistics.mean(o["salary"] for o in OFFERS if o["title"] == "SRE")),
         ["empty"]),
    Case("salary_compare_str", COMPUTE, """\
offers = await jobs.get_job_offers()
high = [o["id"] for o in offers if o["salary"] > "150000"]
return len(high)
""", lambda r: r == sum(o["salary"] > 150000 for o in OFFERS), ["int"]),
    Case("hashlib_on_dict", COMPUTE, """\
import hashlib

company = await jobs.get_company_details(company_id="c003")
return hashlib.sha256(company).hexdigest()
""", lambda r: isinstance(r, str) and len(r) == 64, [("json.dumps", "encode")]),
    Case("base64_of_str", COMPUTE, """\
import base64

notes = (await fs.read_text_file(path="{ROOT}/notes.txt"))["content"]
return base64.b64encode(notes).decode()
""", lambda r: r == base64.b64encode(NOTES.encode()).decode(), ["encode"]),

    # == datetimes and time zones ===========================================================
    Case("utcnow_minus_tool_time", DATETIME, """\
from datetime import datetime

now = await time.get_current_time(timezone="Europe/Berlin")
tool_now = datetime.fromisoformat(now["datetime"])
drift = (datetime.utcnow() - tool_now).total_seconds()
return {"in_sync": abs(drift) < 5}
""", lambda r: r == {"in_sync": True}, [("timezone.utc", "tzinfo", "now(timezone", "datetime.UTC")]),
    Case("pst_abbreviation", DATETIME, """\
now = await time.get_current_time(timezone="PST")
return {"la": now["datetime"]}
""", lambda r: recent(r["la"]), ["America/Los_Angeles"]),
    Case("zoneinfo_localize", DATETIME, """\
from datetime import datetime
from zoneinfo import ZoneInfo

berlin = ZoneInfo("Europe/Berlin")
meeting = berlin.localize(datetime(2026, 3, 30, 9, 0))
conv = await time.convert_time(source_timezone="Europe/Berlin", time=meeting.strftime("%H:%M"),
                               target_timezone="America/New_York")
return conv["target"]["datetime"]
""", lambda r: isinstance(r, str) and ":00:00-0" in r, [("replace(tzinfo", "tzinfo=")]),
    Case("locale_currency", DATETIME, """\
import locale

locale.setlocale(locale.LC_ALL, "en_US.UTF-8")
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
return locale.currency(sum(r["amount"] for r in records), grouping=True)
""", lambda r: r == f"${sum(x['amount'] for x in M1_Q3):,.2f}", [(",.2f", ":,")]),

    # == host environment: env, home, tmp, network, identity ===============================
    Case("dotenv_import", HOST, """\
import os
from dotenv import load_dotenv

load_dotenv()
quarter = os.getenv("REPORT_QUARTER", "Q3")
records = await team.get_expenses(member_id="{M1}", quarter=quarter)
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["dotenv"]),
    Case("environ_required_key", HOST, """\
import os

token = os.environ["TEAM_API_TOKEN"]
members = await team.get_team_members()
return {"members": len(members)}
""", lambda r: r == {"members": len(TEAM)}, [("environment", "environ")]),
    Case("tempfile_then_fs", HOST, """\
import csv
import tempfile

members = await team.get_team_members()
with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["id", "name"])
    writer.writerows([m["id"], m["name"]] for m in members)
    path = f.name
info = await fs.get_file_info(path=path)
return {"path": path, "info": info["content"]}
""", lambda r: Path(r["path"]).is_file(), ["write_file"]),
    Case("urllib_company", IMPORTS, """\
import json
import urllib.request

with urllib.request.urlopen("https://api.example.com/companies/c003", timeout=10) as resp:
    company = json.load(resp)
return company["name"]
""", lambda r: r == C003["name"], [("get_company_details", "get_company")]),
    Case("getpass_socket_header", HOST, """\
import getpass
import socket

header = f"Report by {getpass.getuser()} on {socket.gethostname()}"
members = await team.get_team_members()
return {"header": header, "members": len(members)}
""", lambda r: r["members"] == len(TEAM) and isinstance(r["header"], str), ["getpass"]),
    Case("platform_in_report", HOST, """\
import platform

members = await team.get_team_members()
return {"python": platform.python_version(), "system": platform.system(), "members": len(members)}
""", lambda r: r["members"] == len(TEAM) and isinstance(r["python"], str), ["sys.version"]),
    Case("os_path_exists_guard", HOST, """\
import os

path = "{ROOT}/notes.txt"
if not os.path.exists(path):
    return {"error": f"{path} not found"}
notes = await fs.read_text_file(path=path)
return {"lines": len(notes["content"].splitlines())}
""", lambda r: r == {"lines": 4}, [("get_file_info", "list_directory", "read_text_file")]),

    # == fs and git paths ===================================================================
    Case("path_home_notes", PATHS, """\
from pathlib import Path

notes = await fs.read_text_file(path=str(Path.home() / "notes.txt"))
return notes["content"].splitlines()
""", lambda r: r == NOTES.splitlines(), [("{ROOT}", "list_allowed_directories")]),
    Case("relative_fs_path", PATHS, """\
notes = await fs.read_text_file(path="notes.txt")
return notes["content"].splitlines()[0]
""", lambda r: r == NOTES.splitlines()[0], [("{ROOT}", "list_allowed_directories")]),
    Case("git_relative_repo", PATHS, """\
log = await git.git_log(repo_path=".", max_count=3)
return log.count("Commit: ")
""", lambda r: r == 3, ["{REPO}"]),
    Case("git_show_path_only", PATHS, """\
readme = await git.git_show(repo_path="{REPO}", revision="README.md")
return readme.splitlines()[0]
""", lambda r: r == "# ledger", [("HEAD:README.md", "<revision>:<path>")]),
    Case("list_directory_json", TEXT, """\
listing = json.loads((await fs.list_directory(path="{ROOT}"))["content"])
return sorted(e["name"] for e in listing if e["type"] == "file")
""", lambda r: r == ["budget.csv", "notes.txt"], [("[FILE]", "directory_tree")]),
]
# fmt: on

PLACES: dict[str, str] = {}
"""The fixture paths of the running measurement, for the one predicate that reads a host file."""


def _capture_places() -> None:
    """measure() makes the fixtures in a temp dir of its own; learn its root from the first
    `substitute` call so a predicate can look at a file a case wrote."""
    original = E.substitute

    def spy(text: str, places: dict[str, str]) -> str:
        PLACES.update(places)
        return original(text, places)

    E.substitute = spy


_capture_places()
