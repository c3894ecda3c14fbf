"""Ergonomics: does a model's FIRST program work, and when it fails, does the answer name the fix?

    python benchmarks/ergonomics.py [-k SUBSTRING] [-v]

Each case is a program written the way LLMs really write them against this catalog, mistakes
included (rebinding a namespace name, `json.loads` of a dict, `res["content"][0]["text"]`,
`import requests`, `open()` on a host file, a missing `await`, `asyncio.run` inside a running
loop, a wrong keyword, ...). All run through `execute_code` on a real `codemode serve`
(stdio, the official `mcp` client) with the demo servers team/leads/jobs, mcp-server-time
(`time`), mcp-server-git (`git`, on a 3-commit repo made here) and the npm filesystem server
(`fs`, on a temp dir made here).

Verdicts:
- works: not isError, and the case's predicate holds on structuredContent `result` (on what
  it printed, for the few cases that print their answer); expected values come from
  `codemode.demo.data` and the fixtures made here.
- names_fix: otherwise, if what the model reads (the text content, structuredContent
  error.message, and a `hint` field in error or at the top, if any) mentions every fix
  token of the case (case-insensitive, whole words; a tuple is any one of its alternatives).
  Lines that only echo the submitted code back (traceback source lines and their ^~~
  markers) do not count: a token the model wrote itself names nothing.
- bare: neither.

`-k` runs the cases whose id or family contains SUBSTRING; `-v` prints, for every case that
does not work, everything the model read. Last line: one JSON object with the totals and
the totals per family. Exit code 0 always: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from codemode.demo import data

NPM_BIN = Path(__file__).resolve().parents[1] / "tests" / "npm" / "node_modules" / ".bin"

CASE_TIMEOUT_S = 60.0
"""Per execution, client side; codemode's own limit is 30 s."""

Token = str | tuple[str, ...]
"""A fix token, or alternatives of which one must be mentioned."""


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    code: str
    """The program; {ROOT}, {REPO}, {M1} are replaced by the fs root, the git repo and the
    first team member's id."""
    works: Callable[[Any], bool]
    fix: Sequence[Token]
    printed: bool = False
    """Judge what the program printed (parsed as JSON if it is) instead of its result."""


# -- expected values, from the demo data and the fixtures ----------------------------------

TEAM = data.team()
M1 = TEAM[0]["id"]
Q3 = {m["id"]: sum(e["amount"] for e in data.expenses(m["id"], "Q3")) for m in TEAM}
OVER = [m["name"] for m in TEAM if Q3[m["id"]] > data.BUDGET]
COMPANIES = data.companies()
C003 = COMPANIES["c003"]
UNQUALIFIED = [lead for lead in data.leads() if lead["status"] == "unqualified"]
QUALIFIED = [lead for lead in data.leads() if lead["status"] == "qualified"]
OFFERS = data.job_offers()
BEST = max(OFFERS, key=lambda o: o["salary"])

NOTES = "standup at 10:00\nreview Q3 expenses\nship the report\nclose the quarter\n"
BUDGET_CSV = "department,budget\nplatform,90000\ngrowth,60000\ndata,30000\nfield,20000\n"
ROOT_ENTRIES = ["budget.csv", "notes.txt", "out", "repo"]
README_1 = "# ledger\n\nExpense tooling for the team.\n"
README_3 = README_1 + "\nRun `python src/report.py Q3` for a quarter's totals.\n"
REPORT_PY = "def total(rows):\n    return sum(r['amount'] for r in rows)\n"
COMMITS = [
    ("Initial commit", {"README.md": README_1}),
    ("Add the expense report script", {"src/report.py": REPORT_PY}),
    ("Document the report script", {"README.md": README_3}),
]


def close(a: Any, b: float) -> bool:
    return isinstance(a, int | float) and abs(a - b) < 0.01


def recent(stamp: Any) -> bool:
    """An ISO datetime within 10 minutes of now."""
    moment = datetime.fromisoformat(stamp)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return abs((moment - datetime.now(timezone.utc)).total_seconds()) < 600


# -- the cases -----------------------------------------------------------------------------

MODULE, DECODE, RAW, IMPORTS, IMPORT_NS = "module", "decode", "raw_shape", "imports", "import_ns"
NAMES, AWAIT, LOOP, HOST, POSITIONAL = "names", "await", "event_loop", "host_files", "positional"
TOOL_ERROR, NO_RESULT, STDLIB_NAME = "tool_error", "no_result", "stdlib_name"
PRECHECK, TEXT, OTHER = "precheck", "git_fs_text", "other"

# fmt: off
CASES: list[Case] = [
    # -- module semantics
    Case("rebind_leads", MODULE, """\
leads = await leads.get_leads(query="unqualified")
hot = [lead for lead in leads if lead["visits"] > 30]
return {"unqualified": len(leads), "hot": len(hot)}
""", lambda r: r == {"unqualified": len(UNQUALIFIED),
                     "hot": sum(lead["visits"] > 30 for lead in UNQUALIFIED)},
         ["leads", ("namespace", "rename", "shadow")]),
    Case("rebind_team", MODULE, """\
team = await team.get_team_members()
names = sorted(member["name"] for member in team)
return {"size": len(team), "first": names[0]}
""", lambda r: r == {"size": len(TEAM), "first": min(m["name"] for m in TEAM)},
         ["team", ("namespace", "rename", "shadow")]),
    Case("global_counter", MODULE, """\
calls_made = 0

async def company(cid):
    global calls_made
    calls_made += 1
    return await jobs.get_company_details(company_id=cid)

offers = await jobs.get_job_offers()
companies = await asyncio.gather(*[company(o["company_id"]) for o in offers])
return {"calls": calls_made, "industries": sorted({c["industry"] for c in companies})}
""", lambda r: r == {"calls": len(OFFERS), "industries": sorted(
        {COMPANIES[o["company_id"]]["industry"] for o in OFFERS})},
         ["global"]),
    Case("toplevel_constants", MODULE, """\
def over_budget(records):
    return sum(r["amount"] for r in records) > BUDGET

BUDGET = 10_000
QUARTER = "Q3"

members = await team.get_team_members()
spend = await asyncio.gather(*[
    team.get_expenses(member_id=m["id"], quarter=QUARTER) for m in members
])
return [m["name"] for m, records in zip(members, spend) if over_budget(records)]
""", lambda r: r == OVER, ["BUDGET"]),
    Case("classes", MODULE, """\
from dataclasses import dataclass

LIMIT = 10_000

@dataclass
class Spend:
    name: str
    total: float

    @property
    def over(self) -> bool:
        return self.total > LIMIT

class Report:
    limit = LIMIT

    def __init__(self, rows: list[Spend]):
        self.rows = rows

    def summary(self) -> dict:
        over = [r for r in self.rows if r.over]
        worst = max(over, key=lambda r: r.total)
        return {"limit": self.limit, "over": len(over), "worst": worst.name}

members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
rows = [Spend(m["name"], sum(e["amount"] for e in recs)) for m, recs in zip(members, spend)]
return Report(rows).summary()
""", lambda r: r == {"limit": 10_000, "over": len(OVER),
                     "worst": max(TEAM, key=lambda m: Q3[m["id"]])["name"]},
         ["LIMIT"]),
    Case("return_in_if", MODULE, """\
members = await team.get_team_members()
if not members:
    return {"error": "the team is empty"}
engineers = [m for m in members if m["role"] == "engineer"]
return {"members": len(members), "engineers": len(engineers)}
""", lambda r: r == {"members": len(TEAM),
                     "engineers": sum(m["role"] == "engineer" for m in TEAM)},
         ["return"]),
    Case("return_in_for", MODULE, """\
members = await team.get_team_members()
for m in members:
    records = await team.get_expenses(member_id=m["id"], quarter="Q3")
    total = sum(r["amount"] for r in records)
    if total > 10000:
        return {"first_over_budget": m["name"], "total": round(total, 2)}
return {"first_over_budget": None}
""", lambda r: r["first_over_budget"] == OVER[0], ["return"]),
    Case("return_in_try", MODULE, """\
try:
    company = await jobs.get_company_details(company_id="c003")
    return {"name": company["name"], "industry": company["industry"]}
except ToolError as e:
    return {"error": e.message}
finally:
    print("lookup done")
""", lambda r: r == {"name": C003["name"], "industry": C003["industry"]}, ["return"]),
    # -- decoding values that are already decoded
    Case("loads_dict", DECODE, """\
import json

company = json.loads(await jobs.get_company_details(company_id="c003"))
return f"{company['name']} ({company['industry']}, {company['employees']} employees)"
""", lambda r: r == f"{C003['name']} ({C003['industry']}, {C003['employees']} employees)",
         ["json.loads"]),
    Case("loads_list", DECODE, """\
import json

offers = json.loads(await jobs.get_job_offers())
remote = [o for o in offers if o["remote"]]
return {"offers": len(offers), "remote": len(remote), "top_salary": max(o["salary"] for o in offers)}
""", lambda r: r == {"offers": len(OFFERS), "remote": sum(o["remote"] for o in OFFERS),
                     "top_salary": BEST["salary"]},
         ["json.loads"]),
    Case("loads_float", DECODE, """\
import json

pending = await leads.get_leads(query="unqualified")
lead = pending[0]
score = float(json.loads(await leads.score_lead(lead=lead)))
return {"lead": lead["id"], "score": score}
""", lambda r: r == {"lead": UNQUALIFIED[0]["id"], "score": data.score(UNQUALIFIED[0])},
         ["json.loads"]),
    # -- raw MCP result shapes
    Case("content_0_text", RAW, """\
import json

res = await jobs.get_company_details(company_id="c003")
company = json.loads(res["content"][0]["text"])
return company["name"]
""", lambda r: r == C003["name"], ["industry"]),
    Case("content_attr", RAW, """\
res = await jobs.get_company_details(company_id="c003")
text = res.content[0].text
company = json.loads(text)
return {"name": company["name"], "founded": company["founded"]}
""", lambda r: r == {"name": C003["name"], "founded": C003["founded"]}, ["industry"]),
    Case("structured_content", RAW, """\
res = await jobs.get_company_details(company_id="c003")
company = res.structured_content if res.structured_content else json.loads(res.content[0].text)
return {"name": company["name"], "country": company["country"]}
""", lambda r: r == {"name": C003["name"], "country": C003["country"]}, ["industry"]),
    Case("text_on_dict", RAW, """\
company = await leads.get_company(company_id="c010")
info = json.loads(company.text)
return info["industry"]
""", lambda r: r == COMPANIES["c010"]["industry"], ["employees"]),
    Case("json_method", RAW, """\
resp = await jobs.get_job_offers()
offers = resp.json()
best = max(offers, key=lambda o: o["salary"])
return {"title": best["title"], "salary": best["salary"]}
""", lambda r: r == {"title": BEST["title"], "salary": BEST["salary"]}, ["list"]),
    Case("fs_text_attr", RAW, """\
res = await fs.read_text_file(path="{ROOT}/notes.txt")
lines = res.text.splitlines()
return {"lines": len(lines), "first": lines[0]}
""", lambda r: r == {"lines": 4, "first": NOTES.splitlines()[0]}, ["content"]),
    Case("is_error_check", RAW, """\
res = await jobs.get_company_details(company_id="c003")
if res.isError:
    return {"error": res.content[0].text}
return {"name": res["name"]}
""", lambda r: r == {"name": C003["name"]}, ["ToolError"]),
    # -- imports that are not in the sandbox (zoneinfo should work)
    Case("requests", IMPORTS, """\
import requests

resp = requests.get("https://worldtimeapi.org/api/timezone/Etc/UTC", timeout=10)
resp.raise_for_status()
return {"utc_now": resp.json()["datetime"]}
""", lambda r: recent(r["utc_now"]), ["get_current_time"]),
    Case("httpx_habit", IMPORTS, """\
import asyncio
import httpx

offers = await jobs.get_job_offers()
remote = [o for o in offers if o["remote"]]
return {"remote_offers": len(remote)}
""", lambda r: r == {"remote_offers": sum(o["remote"] for o in OFFERS)}, ["httpx"]),
    Case("pandas", IMPORTS, """\
import pandas as pd

members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
rows = [{"department": m["department"], "amount": e["amount"]}
        for m, recs in zip(members, spend) for e in recs]
df = pd.DataFrame(rows)
return df.groupby("department")["amount"].sum().round(2).to_dict()
""", lambda r: r.keys() == {m["department"] for m in TEAM} and all(
        close(v, sum(Q3[m["id"]] for m in TEAM if m["department"] == k)) for k, v in r.items()),
         ["pandas"]),
    Case("numpy", IMPORTS, """\
import numpy as np

offers = await jobs.get_job_offers()
salaries = np.array([o["salary"] for o in offers])
return {"mean": float(salaries.mean()), "p90": float(np.percentile(salaries, 90))}
""", lambda r: close(r["mean"], statistics.mean(o["salary"] for o in OFFERS)) and close(
        r["p90"], statistics.quantiles([o["salary"] for o in OFFERS], n=10,
                                       method="inclusive")[8]),
         ["numpy"]),
    Case("zoneinfo", IMPORTS, """\
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

ny = ZoneInfo("America/New_York")
winter = datetime(2026, 1, 15, 17, 30, tzinfo=timezone.utc).astimezone(ny)
summer = datetime(2026, 7, 15, 17, 30, tzinfo=timezone.utc).astimezone(ny)
return {
    "winter": winter.isoformat(),
    "summer": summer.isoformat(),
    "winter_offset_h": winter.utcoffset().total_seconds() / 3600,
}
""", lambda r: r == {"winter": "2026-01-15T12:30:00-05:00", "summer": "2026-07-15T13:30:00-04:00",
                     "winter_offset_h": -5.0},
         ["convert_time"]),
    Case("sqlite3", IMPORTS, """\
import sqlite3

members = await team.get_team_members()
db = sqlite3.connect(":memory:")
db.execute("create table m (id text, name text, department text, location text)")
db.executemany("insert into m values (?, ?, ?, ?)",
               [(m["id"], m["name"], m["department"], m["location"]) for m in members])
rows = db.execute("select location, count(*) from m group by location order by 2 desc").fetchall()
return dict(rows)
""", lambda r: r == dict(Counter(m["location"] for m in TEAM)), ["sqlite3"]),
    Case("subprocess_git", IMPORTS, """\
import subprocess

out = subprocess.run(["git", "log", "--oneline", "-n", "5"], cwd="{REPO}",
                     capture_output=True, text=True, check=True).stdout
lines = out.splitlines()
return {"commits": len(lines), "latest": lines[0].split(" ", 1)[1]}
""", lambda r: r == {"commits": 3, "latest": COMMITS[-1][0]}, ["git_log"]),
    # -- importing a namespace, or the product, as a module
    Case("from_tools", IMPORT_NS, """\
from tools import get_leads, score_lead

pending = await get_leads(query="unqualified")
scores = await asyncio.gather(*[score_lead(lead=lead) for lead in pending[:20]])
return {"scored": len(scores), "best": max(scores)}
""", lambda r: r == {"scored": 20, "best": max(data.score(x) for x in UNQUALIFIED[:20])},
         ["get_leads"]),
    Case("import_fs", IMPORT_NS, """\
import fs

text = (await fs.read_text_file(path="{ROOT}/notes.txt"))["content"]
return {"lines": len(text.splitlines())}
""", lambda r: r == {"lines": 4}, ["namespace"]),
    Case("from_team", IMPORT_NS, """\
from team import get_team_members, get_expenses

members = await get_team_members()
q3 = await asyncio.gather(*[get_expenses(member_id=m["id"], quarter="Q3") for m in members])
return {"records": sum(len(r) for r in q3)}
""", lambda r: r == {"records": 5 * len(TEAM)}, ["namespace"]),
    Case("codemode_toolerror", IMPORT_NS, """\
from codemode import ToolError

try:
    company = await jobs.get_company_details(company_id="c999")
except ToolError as e:
    company = None
return {"found": company is not None}
""", lambda r: r == {"found": False}, ["ToolError"]),
    Case("default_api", IMPORT_NS, """\
from default_api import get_team_members

members = await get_team_members()
return {"team_size": len(members)}
""", lambda r: r == {"team_size": len(TEAM)}, ["get_team_members"]),
    # -- wrong namespace or function names
    Case("filesystem_ns", NAMES, """\
notes = await filesystem.read_text_file(path="{ROOT}/notes.txt")
return notes["content"].splitlines()
""", lambda r: r == NOTES.splitlines(), ["fs"]),
    Case("get_members", NAMES, """\
members = await team.get_members()
return [m["name"] for m in members]
""", lambda r: r == [m["name"] for m in TEAM], ["get_team_members"]),
    Case("git_log_short", NAMES, """\
log = await git.log(repo_path="{REPO}", max_count=5)
return log
""", lambda r: isinstance(r, str) and r.count(COMMITS[0][0]) == 1, ["git_log"]),
    Case("wrong_server", NAMES, """\
company = await team.get_company(company_id="c003")
return company["name"]
""", lambda r: r == C003["name"], [("leads", "get_company_details")]),
    Case("functions_ns", NAMES, """\
members = await functions.get_team_members()
return {"count": len(members)}
""", lambda r: r == {"count": len(TEAM)}, ["team"]),
    Case("camel_case", NAMES, """\
members = await team.getTeamMembers()
return sorted({m["location"] for m in members})
""", lambda r: r == sorted({m["location"] for m in TEAM}), ["get_team_members"]),
    # -- await mistakes
    Case("len_not_awaited", AWAIT, """\
members = team.get_team_members()
return {"team_size": len(members)}
""", lambda r: r == {"team_size": len(TEAM)}, ["await"]),
    Case("for_not_awaited", AWAIT, """\
by_role = {}
for m in team.get_team_members():
    by_role[m["role"]] = by_role.get(m["role"], 0) + 1
return by_role
""", lambda r: r == dict(Counter(m["role"] for m in TEAM)), ["await"]),
    Case("await_tools_search", AWAIT, """\
matches = await tools.search("time")
return matches
""", lambda r: "get_current_time" in json.dumps(r), ["await"]),
    Case("await_no_parens", AWAIT, """\
members = await team.get_team_members
return len(members)
""", lambda r: r == len(TEAM), ["get_team_members()"]),
    Case("await_in_def", AWAIT, """\
def total_for(member_id):
    records = await team.get_expenses(member_id=member_id, quarter="Q3")
    return sum(r["amount"] for r in records)

members = await team.get_team_members()
totals = {m["name"]: total_for(m["id"]) for m in members}
return max(totals, key=totals.get)
""", lambda r: r == max(TEAM, key=lambda m: Q3[m["id"]])["name"], ["async def"]),
    Case("gather_not_awaited", AWAIT, """\
members = await team.get_team_members()
expenses = asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
return sum(len(e) for e in expenses)
""", lambda r: r == 5 * len(TEAM), ["await"]),
    # -- event-loop APIs
    Case("run_until_complete", LOOP, """\
import asyncio

async def main():
    members = await team.get_team_members()
    return {"team_size": len(members)}

loop = asyncio.get_event_loop()
result = loop.run_until_complete(main())
result
""", lambda r: r == {"team_size": len(TEAM)}, ["await main()"]),
    Case("asyncio_run_mixed", LOOP, """\
import asyncio

members = await team.get_team_members()

async def main():
    records = await asyncio.gather(*[
        team.get_expenses(member_id=m["id"], quarter="Q3") for m in members
    ])
    return sum(len(r) for r in records)

return asyncio.run(main())
""", lambda r: r == 5 * len(TEAM), ["await main()"]),
    Case("run_forever", LOOP, """\
import asyncio

names = {}

async def fetch(cid):
    names[cid] = (await jobs.get_company_details(company_id=cid))["name"]

async def main():
    await asyncio.gather(*[fetch(c) for c in ["c001", "c002", "c003"]])
    loop.stop()

loop = asyncio.get_event_loop()
loop.create_task(main())
loop.run_forever()
return names
""", lambda r: r == {c: COMPANIES[c]["name"] for c in ["c001", "c002", "c003"]},
         ["await main()"]),
    Case("main_guard_print", LOOP, """\
import asyncio
import json

async def main():
    offers = await jobs.get_job_offers()
    best = max(offers, key=lambda o: o["salary"])
    print(json.dumps({"best": best["id"], "salary": best["salary"]}))

if __name__ == "__main__":
    asyncio.run(main())
""", lambda r: r == {"best": BEST["id"], "salary": BEST["salary"]}, ["await main()"],
         printed=True),
    Case("asyncio_run_plain", LOOP, """\
import asyncio

async def main():
    members = await team.get_team_members()
    return sorted({m["department"] for m in members})

asyncio.run(main())
""", lambda r: r == sorted({m["department"] for m in TEAM}), ["await main()"]),
    # -- host files
    Case("open_file", HOST, """\
with open("{REPO}/README.md") as f:
    readme = f.read()
return {"lines": len(readme.splitlines()), "title": readme.splitlines()[0]}
""", lambda r: r == {"lines": len(README_3.splitlines()), "title": "# ledger"},
         ["read_text_file"]),
    Case("os_listdir", HOST, """\
import os

entries = sorted(os.listdir("{ROOT}"))
return {"entries": entries}
""", lambda r: r == {"entries": ROOT_ENTRIES}, ["list_directory"]),
    Case("pathlib_read", HOST, """\
from pathlib import Path

notes = Path("{ROOT}/notes.txt").read_text()
return [line for line in notes.splitlines() if line.strip()]
""", lambda r: r == NOTES.splitlines(), ["read_text_file"]),
    Case("open_write", HOST, """\
members = await team.get_team_members()
with open("{ROOT}/out/team.csv", "w") as f:
    f.write("id,name\\n")
    for m in members:
        f.write(f"{m['id']},{m['name']}\\n")
return {"written": len(members)}
""", lambda r: r == {"written": len(TEAM)}, ["write_file"]),
    Case("glob_files", HOST, """\
import glob

files = glob.glob("{REPO}/**/*.py", recursive=True)
return [f.rsplit("/", 1)[-1] for f in files]
""", lambda r: r == ["report.py"], [("search_files", "directory_tree", "list_directory")]),
    # -- one dict passed positionally
    Case("dict_expenses", POSITIONAL, """\
records = await team.get_expenses({"member_id": "{M1}", "quarter": "Q3"})
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), [("member_id=", "**")]),
    Case("dict_leads", POSITIONAL, """\
qualified = await leads.get_leads({"query": "qualified"})
return len(qualified)
""", lambda r: r == len(QUALIFIED), [("query=", "**")]),
    Case("dict_fs", POSITIONAL, """\
res = await fs.read_text_file({"path": "{ROOT}/notes.txt"})
return res["content"].count("\\n")
""", lambda r: r == 4, [("path=", "**")]),
    Case("dict_param_ok", POSITIONAL, """\
pending = await leads.get_leads(query="unqualified")
lead = pending[0]
score = await leads.score_lead(lead)
return {"lead": lead["id"], "score": score}
""", lambda r: r == {"lead": UNQUALIFIED[0]["id"], "score": data.score(UNQUALIFIED[0])},
         ["score_lead"]),
    # -- an uncaught tool error: never "works"; the answer must name namespace.tool (qualified,
    # since "team" or "git" alone also occur in the servers' own messages)
    Case("company_nope", TOOL_ERROR, """\
company = await jobs.get_company_details(company_id="nope")
return company["name"]
""", lambda r: False, ["jobs.get_company_details"]),
    Case("guessed_member_id", TOOL_ERROR, """\
records = await team.get_expenses(member_id="m001", quarter="Q3")
return sum(r["amount"] for r in records)
""", lambda r: False, ["team.get_expenses"]),
    Case("error_in_gather", TOOL_ERROR, """\
ids = ["c001", "c002", "c999", "c004"]
companies = await asyncio.gather(*[jobs.get_company_details(company_id=c) for c in ids])
return [c["name"] for c in companies]
""", lambda r: False, ["jobs.get_company_details", "c999"]),
    Case("fs_outside_root", TOOL_ERROR, """\
hosts = await fs.read_text_file(path="/etc/hosts")
return hosts["content"].splitlines()[:3]
""", lambda r: False, ["fs.read_text_file", "{ROOT}"]),
    Case("git_bad_revision", TOOL_ERROR, """\
show = await git.git_show(repo_path="{REPO}", revision="release-1.0")
return show
""", lambda r: False, ["git.git_show"]),
    # -- no result
    Case("ends_with_assignment", NO_RESULT, """\
import collections

members = await team.get_team_members()
by_department = collections.Counter(m["department"] for m in members)
summary = {"team_size": len(members), "by_department": dict(by_department)}
""", lambda r: r == {"team_size": len(TEAM),
                     "by_department": dict(Counter(m["department"] for m in TEAM))},
         ["return"]),
    Case("ends_with_loop", NO_RESULT, """\
members = await team.get_team_members()
spend = await asyncio.gather(*[team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
over_budget = []
for m, records in zip(members, spend):
    total = sum(r["amount"] for r in records)
    if total > 10000:
        over_budget.append({"name": m["name"], "total": round(total, 2)})
""", lambda r: [o["name"] for o in r] == OVER, ["return"]),
    Case("ends_with_sort", NO_RESULT, """\
offers = await jobs.get_job_offers()
top = [{"id": o["id"], "salary": o["salary"]} for o in offers if o["remote"]]
top.sort(key=lambda o: o["salary"], reverse=True)
""", lambda r: r[0]["salary"] == max(o["salary"] for o in OFFERS if o["remote"]), ["return"]),
    Case("await_main_last", NO_RESULT, """\
async def main():
    members = await team.get_team_members()
    return len(members)

await main()
""", lambda r: r == len(TEAM), ["return"]),
    Case("print_only", NO_RESULT, """\
members = await team.get_team_members()
print(f"{len(members)} members")
""", lambda r: r == f"{len(TEAM)} members", ["return"], printed=True),
    # -- a server named like a stdlib module (`time`)
    Case("monotonic_no_import", STDLIB_NAME, """\
start = time.monotonic()
members = await team.get_team_members()
elapsed_ms = (time.monotonic() - start) * 1000
return {"members": len(members), "elapsed_ms": round(elapsed_ms, 1)}
""", lambda r: r["members"] == len(TEAM) and r["elapsed_ms"] >= 0, ["import time"]),
    Case("strftime_and_tool", STDLIB_NAME, """\
stamp = time.strftime("%Y-%m-%d %H:%M")
now = await time.get_current_time(timezone="Europe/Berlin")
return {"sandbox": stamp, "berlin": now["datetime"], "tz": now["timezone"]}
""", lambda r: bool(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r["sandbox"]))
        and recent(r["berlin"]) and r["tz"] == "Europe/Berlin", ["import time"]),
    Case("tool_after_import", STDLIB_NAME, """\
import time

now = await time.get_current_time(timezone="UTC")
return {"utc": now["datetime"], "dst": now["is_dst"]}
""", lambda r: recent(r["utc"]) and r["dst"] is False, [("import time", "call_tool")]),
    Case("both_after_import", STDLIB_NAME, """\
import time

t0 = time.perf_counter()
tokyo = await time.convert_time(source_timezone="UTC", time="12:00", target_timezone="Asia/Tokyo")
time.sleep(0.01)
return {"tokyo": tokyo["target"]["datetime"], "took_s": round(time.perf_counter() - t0, 3)}
""", lambda r: "T21:00:00+09:00" in r["tokyo"] and r["took_s"] >= 0.01,
         [("import time", "call_tool")]),
    # -- what a pre-check could refuse before any call
    Case("wrong_keyword", PRECHECK, """\
records = await team.get_expenses(id="{M1}", quarter="Q3")
return round(sum(r["amount"] for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["member_id"]),
    Case("missing_argument", PRECHECK, """\
records = await team.get_expenses(member_id="{M1}")
return len(records)
""", lambda r: r == 5, ["quarter"]),
    Case("too_many_positional", PRECHECK, """\
records = await team.get_expenses("{M1}", "Q3", "USD")
return len(records)
""", lambda r: r == 5, ["member_id", "quarter"]),
    Case("undefined_name", PRECHECK, """\
members = await team.get_team_members()
engineers = [m for m in members if m["role"] == "engineer"]
return {"engineers": len(engineer)}
""", lambda r: r == {"engineers": sum(m["role"] == "engineer" for m in TEAM)}, ["engineers"]),
    Case("call_then_bad_keyword", PRECHECK, """\
members = await team.get_team_members()
q3 = await asyncio.gather(*[team.get_expenses(member=m["id"], quarter="Q3") for m in members])
return {m["name"]: round(sum(r["amount"] for r in recs), 2) for m, recs in zip(members, q3)}
""", lambda r: all(close(r[m["name"]], Q3[m["id"]]) for m in TEAM), ["member_id"]),
    Case("write_then_undefined", PRECHECK, """\
members = await team.get_team_members()
lines = [f"{m['name']} <{m['email']}>" for m in members]
await fs.write_file(path="{ROOT}/out/team.txt", content="\\n".join(lines))
return {"written": len(lines), "first": member[0]["name"]}
""", lambda r: r == {"written": len(TEAM), "first": TEAM[0]["name"]}, ["members"]),
    Case("call_then_extra_positional", PRECHECK, """\
offers = await jobs.get_job_offers()
best = max(offers, key=lambda o: o["salary"])
company = await jobs.get_company_details(best["company_id"], "full")
return {"title": best["title"], "company": company["name"]}
""", lambda r: r == {"title": BEST["title"], "company": COMPANIES[BEST["company_id"]]["name"]},
         ["company_id"]),
    Case("string_for_int", PRECHECK, """\
log = await git.git_log(repo_path="{REPO}", max_count="5")
return log.count("Commit:")
""", lambda r: r == 3, ["max_count", ("int", "integer")]),
    # -- text results of git and fs
    Case("git_count_commits", TEXT, """\
import re

log = await git.git_log(repo_path="{REPO}", max_count=5)
commits = re.findall(r"\\b[0-9a-f]{40}\\b", log)
return {"commits": len(commits)}
""", lambda r: r == {"commits": 3}, ["git_log"]),
    Case("git_log_as_records", TEXT, """\
log = await git.git_log(repo_path="{REPO}", max_count=5)
return [c["message"] for c in log]
""", lambda r: r == [m for m, _ in reversed(COMMITS)], ["git_log", "str"]),
    Case("git_status_text", TEXT, """\
import re

status = await git.git_status(repo_path="{REPO}")
branch = re.search(r"On branch (\\S+)", status).group(1)
return {"clean": "nothing to commit" in status, "branch": branch}
""", lambda r: r == {"clean": True, "branch": "main"}, ["git_status"]),
    Case("git_show_file", TEXT, """\
readme = await git.git_show(repo_path="{REPO}", revision="HEAD~2:README.md")
return readme.splitlines()[-1]
""", lambda r: r == README_1.splitlines()[-1], ["git_show"]),
    Case("fs_list_files", TEXT, """\
listing = await fs.list_directory(path="{ROOT}")
files = [line[len("[FILE] "):] for line in listing["content"].splitlines()
         if line.startswith("[FILE] ")]
return sorted(files)
""", lambda r: r == ["budget.csv", "notes.txt"], ["list_directory"]),
    Case("fs_result_as_str", TEXT, """\
text = await fs.read_text_file(path="{ROOT}/notes.txt")
return {"lines": len(text.splitlines())}
""", lambda r: r == {"lines": 4}, ["content"]),
    Case("fs_tree_json", TEXT, """\
tree = json.loads((await fs.directory_tree(path="{REPO}"))["content"])
return sorted(entry["name"] for entry in tree if entry["name"] != ".git")
""", lambda r: r == ["README.md", "src"], ["directory_tree"]),
    # -- other typical mistakes
    Case("gather_a_list", OTHER, """\
members = await team.get_team_members()
records = await asyncio.gather([team.get_expenses(member_id=m["id"], quarter="Q3") for m in members])
return sum(len(r) for r in records)
""", lambda r: r == 5 * len(TEAM), [("gather(*", "*[")]),
    Case("forgot_import_re", OTHER, """\
log = await git.git_log(repo_path="{REPO}", max_count=10)
hashes = re.findall(r"[0-9a-f]{40}", log)
return len(hashes)
""", lambda r: r == 3, ["import re"]),
    Case("guessed_field", OTHER, """\
members = await team.get_team_members()
return sorted(m["full_name"] for m in members)
""", lambda r: r == sorted(m["name"] for m in TEAM), ["name", "email"]),
    Case("nested_company", OTHER, """\
qualified = await leads.get_leads(query="qualified")
return [{"lead": lead.name, "company": lead.company.name} for lead in qualified[:5]]
""", lambda r: r == [{"lead": x["name"], "company": COMPANIES[x["company_id"]]["name"]}
                     for x in QUALIFIED[:5]],
         ["company_id"]),
    Case("int_for_string", OTHER, """\
company = await jobs.get_company_details(company_id=3)
return company["name"]
""", lambda r: r == C003["name"], [("str", "string")]),
    Case("attribute_access", OTHER, """\
records = await team.get_expenses(member_id="{M1}", quarter="Q3")
return round(sum(r.amount for r in records), 2)
""", lambda r: close(r, Q3[M1]), ["amount"]),
    Case("returns_datetime", OTHER, """\
from datetime import datetime, timezone

offers = await jobs.get_job_offers()
return {"checked_at": datetime.now(timezone.utc), "offers": len(offers)}
""", lambda r: recent(r["checked_at"]) and r["offers"] == len(OFFERS), ["isoformat"]),
]
# fmt: on


# -- fixtures and the server ---------------------------------------------------------------


def make_fixtures(tmp: Path) -> tuple[Path, Path]:
    """The fs server's root (notes.txt, budget.csv, out/, repo/) and a git repo of 3 commits."""
    root = (tmp / "files").resolve()
    repo = root / "repo"
    (root / "out").mkdir(parents=True)
    (root / "notes.txt").write_text(NOTES)
    (root / "budget.csv").write_text(BUDGET_CSV)
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ergo",
        "GIT_AUTHOR_EMAIL": "ergo@example.com",
        "GIT_COMMITTER_NAME": "Ergo",
        "GIT_COMMITTER_EMAIL": "ergo@example.com",
    }

    def git(*args: str, date: str = "") -> None:
        extra = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {}
        subprocess.run(
            ["git", *args], cwd=repo, env={**env, **extra}, check=True, capture_output=True
        )

    git("init", "-q", "-b", "main")
    for day, (message, files) in enumerate(COMMITS, 1):
        for name, text in files.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        git("add", "-A")
        git("commit", "-q", "-m", message, date=f"2026-03-0{day}T10:00:00+00:00")
    return root, repo


def write_config(path: Path, root: Path, repo: Path) -> Path:
    bin_dir = Path(sys.executable).parent

    def demo(which: str) -> dict[str, Any]:
        return {"command": sys.executable, "args": ["-m", "codemode.demo.servers", which]}

    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "team": demo("team"),
                    "leads": demo("leads"),
                    "jobs": demo("jobs"),
                    "time": {
                        "command": str(bin_dir / "mcp-server-time"),
                        "args": ["--local-timezone", "UTC"],
                    },
                    "git": {
                        "command": str(bin_dir / "mcp-server-git"),
                        "args": ["--repository", str(repo)],
                    },
                    "fs": {"command": str(NPM_BIN / "mcp-server-filesystem"), "args": [str(root)]},
                }
            },
            indent=2,
        )
    )
    return path


@asynccontextmanager
async def serve(config: Path, errlog: TextIO) -> AsyncIterator[ClientSession]:
    """`codemode serve --config config` as a child process over stdio, with a client session.
    Learned shapes start empty and go to a file of this run, so runs are alike."""
    argv = ["-m", "codemode", "serve", "--config", str(config), "--log-level", "warning"]
    env = {**os.environ, "CODEMODE_SHAPES_FILE": str(config.with_name("shapes.json"))}
    params = StdioServerParameters(command=sys.executable, args=argv, env=env)
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


# -- judging -------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    verdict: str
    tool_calls: int | None
    note: str
    read: str


def failed_call(exc: Exception) -> types.CallToolResult:
    """What a client shows when execute_code itself fails (timeout, server gone)."""
    text = f"execute_code failed: {type(exc).__name__}: {exc}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def what_the_model_reads(result: types.CallToolResult) -> str:
    structured = result.structured_content or {}
    error = structured.get("error") or {}
    parts = [getattr(c, "text", "") for c in result.content]
    parts += [error.get("message"), error.get("hint"), structured.get("hint")]
    return "\n".join(p if isinstance(p, str) else json.dumps(p) for p in parts if p)


def without_echo(text: str, code: str) -> str:
    """The lines of `text` that are not the submitted code quoted back (nor ^~~ markers)."""
    own = {line.strip() for line in code.splitlines() if line.strip()}
    return "\n".join(
        line
        for line in text.splitlines()
        if line.strip() not in own and set(line.strip()) - set("^~ ")
    )


def mentions(text: str, token: Token) -> bool:
    for alt in (token,) if isinstance(token, str) else token:
        before = r"(?<!\w)" if re.match(r"\w", alt[0]) else ""
        after = r"(?!\w)" if re.match(r"\w", alt[-1]) else ""
        if re.search(before + re.escape(alt) + after, text, re.IGNORECASE):
            return True
    return False


def substitute(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def judged(case: Case, result: types.CallToolResult, code: str, places: dict[str, str]) -> Outcome:
    structured = result.structured_content or {}
    value: Any = structured.get("result")
    if case.printed:
        value = (structured.get("stdout") or "").strip()
        try:
            value = json.loads(value)
        except ValueError:
            pass
    try:
        ok = not result.is_error and bool(case.works(value))
    except Exception:  # noqa: BLE001 - a predicate that cannot read the value: not the value
        ok = False
    read = what_the_model_reads(result)
    fresh = without_echo(read, code)
    fix = [
        substitute(t, places) if isinstance(t, str) else tuple(substitute(a, places) for a in t)
        for t in case.fix
    ]
    verdict = "works" if ok else "names_fix" if all(mentions(fresh, t) for t in fix) else "bare"
    error = structured.get("error") or {}
    hint = error.get("hint") or structured.get("hint")
    head = f"{error.get('type')}: {error.get('message')}" if error else f"result: {value!r}"
    note = (f"{head}; hint: {hint}" if hint else head) if structured else read
    calls = (structured.get("stats") or {}).get("tool_calls")
    return Outcome(case, verdict, calls, " ".join(str(note).split())[:100], read)


async def measure(cases: list[Case], verbose: bool) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="codemode-ergonomics-") as tmp:
        root, repo = make_fixtures(Path(tmp))
        config = write_config(Path(tmp) / "config.json", root, repo)
        places = {"ROOT": str(root), "REPO": str(repo), "M1": M1}
        with open(Path(tmp) / "serve-stderr.txt", "w+") as errlog:
            try:
                async with serve(config, errlog) as session:
                    warm = await session.call_tool("execute_code", {"code": "return 1"})
                    if warm.is_error:
                        raise RuntimeError(what_the_model_reads(warm))
                    outcomes = []
                    for case in cases:  # one at a time: some cases write files others list
                        code = substitute(case.code, places)
                        try:
                            result = await session.call_tool(
                                "execute_code", {"code": code}, read_timeout_seconds=CASE_TIMEOUT_S
                            )
                        except Exception as exc:  # noqa: BLE001 - recorded as the model's view
                            result = failed_call(exc)
                        outcomes.append(judged(case, result, code, places))
                        if verbose and outcomes[-1].verdict != "works":
                            print(f"--- {case.id}\n{outcomes[-1].read}\n", file=sys.stderr)
                    return outcomes
            except BaseException:
                errlog.seek(0)
                print(errlog.read()[-4000:], file=sys.stderr)
                raise


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    print("| case | family | verdict | calls | what the model reads (start) |")
    print("|---|---|---|---|---|")
    for o in outcomes:
        note = "" if o.verdict == "works" else o.note.replace("|", "\\|")
        print(f"| {o.case.id} | {o.case.family} | {o.verdict} | {o.tool_calls} | {note} |")
    verdicts = ("works", "names_fix", "bare")
    by_family: dict[str, dict[str, int]] = {}
    for o in outcomes:
        counts = by_family.setdefault(o.case.family, {"cases": 0, **dict.fromkeys(verdicts, 0)})
        counts["cases"] += 1
        counts[o.verdict] += 1
    print("\n| family | cases | works | names_fix | bare |\n|---|---|---|---|---|")
    for family, c in by_family.items():
        print(f"| {family} | {c['cases']} | {c['works']} | {c['names_fix']} | {c['bare']} |")
    total = Counter(o.verdict for o in outcomes)
    return {"cases": len(outcomes), **{v: total[v] for v in verdicts}, "by_family": by_family}


def all_cases(which: str) -> list[Case]:
    """The first list (above), the second (ergonomics_more.py) or the third
    (ergonomics_third.py), each written separately as a held-out check of the ones before;
    or all three."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ergonomics_more
    import ergonomics_third

    lists = {"first": CASES, "second": ergonomics_more.CASES, "third": ergonomics_third.CASES}
    every = [c for cases in lists.values() for c in cases]
    ids = [c.id for c in every]
    assert len(set(ids)) == len(ids), "case ids must be unique across the lists"
    return every if which == "all" else list(lists[which])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose id or family contains this")
    parser.add_argument("-v", action="store_true", help="print what the model read, on stderr")
    parser.add_argument(
        "--set",
        choices=["first", "second", "third", "all"],
        default="all",
        help="which list of cases (default: all three)",
    )
    args = parser.parse_args()
    # The lists import this file as `ergonomics`: run that module's copy, which their
    # fixtures hook into, rather than this __main__ one.
    import ergonomics

    cases = ergonomics.all_cases(args.set)
    chosen = [c for c in cases if args.k in c.id or args.k in c.family]
    summary = ergonomics.report(asyncio.run(ergonomics.measure(chosen, args.v)))
    print(json.dumps(summary))
