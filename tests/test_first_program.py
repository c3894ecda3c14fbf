"""The model's first program: module semantics, errors that name the fix, output shapes and
the pre-check, through `execute_code` on a live `codemode serve` with real downstream
servers (the demo servers, mcp-server-time as `time`, mcp-server-git as `git` and the npm
filesystem server as `fs`)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from serve_client import BIN, NPM_BIN, Serve, demo, text_of

from codemode.demo import data

UNQUALIFIED = [lead for lead in data.leads() if lead["status"] == "unqualified"]
TEAM = data.team(20)


def make_repo(path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"],):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    for i in range(3):
        (path / "notes.md").write_text(f"version {i}\n")
        subprocess.run(["git", "add", "notes.md"], cwd=path, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", f"change {i}"], cwd=path, env=env, check=True)


@pytest.fixture(scope="module")
async def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first")
    root = tmp / "files"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the host\n")
    make_repo(root / "repo")
    config = {
        "mcpServers": {
            "team": demo("team"),
            "leads": demo("leads"),
            "jobs": demo("jobs"),
            "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
            "git": {
                "command": str(BIN / "mcp-server-git"),
                "args": ["--repository", str(root / "repo")],
            },
            "fs": {"command": str(NPM_BIN / "mcp-server-filesystem"), "args": [str(root)]},
        },
        "codemode": {"limits": {"timeout_s": 20}, "workers": 2},
    }
    async with Serve(config, tmp / "serve") as s:
        s.root = root  # type: ignore[attr-defined]
        yield s


async def run(serve: Serve, code: str) -> dict[str, Any]:
    result = await serve.run(code.replace("{ROOT}", str(serve.root)))
    out = result.structured_content
    assert out is not None, text_of(result)
    out["text"] = text_of(result)
    return out


def said(out: dict[str, Any]) -> str:
    """Everything the model reads of a failure: the text, the message, the hint, notes."""
    error = out["error"] or {}
    return "\n".join(
        [out["text"], error.get("message") or "", error.get("hint") or "", *out["notes"]]
    )


def assert_works(out: dict[str, Any], expected: Any) -> None:
    assert out["error"] is None, said(out)
    assert out["result"] == expected


def assert_names(out: dict[str, Any], *tokens: str, kind: str | None = None) -> None:
    text = said(out)
    if kind is not None:
        assert out["error"] is not None and out["error"]["type"] == kind, text
    for token in tokens:
        assert token in text, (token, text)


# -- programs run as modules ---------------------------------------------------------------


async def test_rebinding_a_namespace_name_works_as_in_a_script(serve):
    out = await run(serve, 'leads = await leads.get_leads(query="unqualified")\nlen(leads)')
    assert_works(out, len(UNQUALIFIED))


async def test_global_functions_and_classes_see_module_names(serve):
    code = """\
count = 0
LIMIT = 3
def bump():
    global count
    count += 1
class Box:
    size = LIMIT
    def grow(self):
        return self.size + count
for _ in range(LIMIT):
    bump()
return [count, Box().grow(), [LIMIT * i for i in range(2)]]
"""
    assert_works(await run(serve, code), [3, 6, [0, 3]])


async def test_top_level_return_passes_through_a_bare_except(serve):
    code = """\
members = await team.get_team_members()
try:
    if members:
        return len(members)
except:
    return "caught"
finally:
    print("cleanup ran")
"""
    out = await run(serve, code)
    assert_works(out, len(TEAM))
    assert out["stdout"] == "cleanup ran\n"


async def test_tracebacks_keep_the_users_line_numbers_at_module_level(serve):
    out = await run(serve, "x = 1\n\ny = {}['missing']\n")
    assert out["error"]["line"] == 3 and "line 3, in <module>" in out["error"]["traceback"]


# -- a server and a stdlib module of the same name -----------------------------------------


@pytest.mark.parametrize(
    "prelude", ["", "import time\n", "import time as t\ntime = t\n", "from time import monotonic\n"]
)
async def test_time_is_both_the_stdlib_module_and_the_server(serve, prelude):
    code = prelude + (
        'now = await time.get_current_time(timezone="Europe/Paris")\n'
        "[time.monotonic() > 0, isinstance(time.time(), float), now['timezone']]"
    )
    assert_works(await run(serve, code), [True, True, "Europe/Paris"])


async def test_tools_search_lists_each_tool_once(serve):
    out = await run(serve, 'tools.search("time")')
    found = out["result"]
    assert found and len(found) == len(set(found))
    assert sum("get_current_time(" in line for line in found) == 1
    assert all(line.split("(")[0].count(".") == 1 for line in found), found


async def test_the_catalog_names_the_shared_namespace(serve):
    listed = await serve.session.list_tools()
    description = listed.tools[0].description or ""
    assert "`time` is both a stdlib module and a server's namespace" in description
    assert "Tool results arrive already parsed" in description


# -- errors that teach, or programs that simply work ---------------------------------------


async def test_json_loads_of_a_parsed_result_gives_it_back(serve):
    out = await run(serve, 'json.loads(await jobs.get_company_details(company_id="c003"))["name"]')
    assert_works(out, data.companies()["c003"]["name"])


@pytest.mark.parametrize(
    "code",
    [
        'r = await jobs.get_company_details(company_id="c003")\nr["content"][0]["text"]',
        'r = await jobs.get_company_details(company_id="c003")\nr.content',
        'r = await jobs.get_company_details(company_id="c003")\nr.structured_content',
    ],
)
async def test_raw_mcp_shapes_are_explained_with_the_real_fields(serve, code):
    assert_names(await run(serve, code), "already unwrapped", "industry")


async def test_dot_text_on_a_text_result_says_it_is_a_str(serve):
    out = await run(serve, 'log = await git.git_log(repo_path="{ROOT}/repo")\nlog.text')
    assert_names(out, "str", "git.git_log")


async def test_is_error_checks_are_told_that_failures_raise(serve):
    out = await run(serve, 'r = await jobs.get_company_details(company_id="c003")\nr.isError')
    assert_names(out, "ToolError")


@pytest.mark.parametrize(
    "code,tokens",
    [
        ("import requests\nrequests.get('https://worldtimeapi.org/api/timezone/UTC').json()",
         ["no network", "time.get_current_time"]),
        ("import pandas as pd", ["standard library only", "csv"]),
        ("import sqlite3", ["no host file system"]),
        ("import subprocess\nsubprocess.run(['git', 'log'], capture_output=True)",
         ["cannot start processes", "git.git_log"]),
        ("import dateutil.parser", ["datetime", "zoneinfo"]),
        ("import jsn", ["Did you mean json"]),
    ],
)  # fmt: skip
async def test_missing_modules_say_why_and_what_to_use(serve, code, tokens):
    assert_names(await run(serve, code), *tokens)


async def test_zoneinfo_has_real_zone_data(serve):
    code = """\
from zoneinfo import ZoneInfo, available_timezones
import datetime
summer = datetime.datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("UTC"))
winter = datetime.datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("UTC"))
ny = ZoneInfo("America/New_York")
[summer.astimezone(ny).utcoffset().total_seconds() / 3600,
 winter.astimezone(ny).utcoffset().total_seconds() / 3600,
 "Asia/Kolkata" in available_timezones()]
"""
    assert_works(await run(serve, code), [-4.0, -5.0, True])


async def test_an_unknown_zone_names_the_key_format(serve):
    out = await run(serve, 'import zoneinfo\nzoneinfo.ZoneInfo("Paris")')
    assert_names(out, "Europe/Paris", kind="ZoneInfoNotFoundError")


@pytest.mark.parametrize(
    "code,expected",
    [
        ("import fs\n(await fs.list_allowed_directories())['content'].startswith('Allowed')",
         True),
        ("from team import get_team_members\nlen(await get_team_members())", len(TEAM)),
        ("from tools import get_leads\nlen(await get_leads())", len(UNQUALIFIED)),
        ("from codemode import ToolError\ntry:\n    await jobs.get_company_details("
         "company_id='x')\nexcept ToolError as e:\n    kind = e.kind\nkind", "ToolError"),
        ("from default_api import get_team_members\nlen(await get_team_members())", len(TEAM)),
    ],
)  # fmt: skip
async def test_namespaces_and_the_tool_api_import_as_modules(serve, code, expected):
    assert_works(await run(serve, code), expected)


@pytest.mark.parametrize(
    "code,tokens",
    [
        ("await filesystem.read_text_file(path='{ROOT}/hello.txt')", ["fs"]),
        ("await team.get_members()", ["get_team_members"]),
        ("await git.git_current_time()", ["get_current_time"]),
        ("await time.git_log(repo_path='x')", ["git.git_log"]),
    ],
)
async def test_names_that_do_not_exist_get_did_you_mean(serve, code, tokens):
    assert_names(await run(serve, code), *tokens, kind="CheckError")


async def test_a_call_never_awaited_is_named(serve):
    out = await run(serve, "members = team.get_team_members()\nlen(members)")
    assert_names(out, "team.get_team_members()", "await", kind="TypeError")
    out = await run(serve, "team.get_team_members()\nreturn 1")
    assert out["result"] == 1
    assert any("team.get_team_members() was called without `await`" in n for n in out["notes"])


async def test_await_mistakes_that_can_only_mean_one_thing_work(serve):
    out = await run(serve, 'hits = await tools.search("expenses")\nlen(hits) > 0')
    assert_works(out, True)
    out = await run(serve, "len(await team.get_team_members)")
    assert_works(out, len(TEAM))
    out = await run(serve, "await jobs.get_company_details")
    assert_names(out, "jobs.get_company_details(company_id")


async def test_await_inside_a_plain_def_says_async_def(serve):
    out = await run(serve, "def load():\n    return await team.get_team_members()\nload()")
    assert_names(out, "async def", kind="SyntaxError")


@pytest.mark.parametrize(
    "code",
    [
        "async def main():\n    return len(await team.get_team_members())\n"
        "asyncio.get_event_loop().run_until_complete(main())",
        "async def main():\n    return len(await team.get_team_members())\n"
        "loop = asyncio.new_event_loop()\nasyncio.set_event_loop(loop)\n"
        "loop.run_until_complete(main())",
        "first = await team.get_team_members()\nasync def main():\n    return len(first)\n"
        "asyncio.run(main())",
    ],
)
async def test_event_loop_apis_run_the_program(serve, code):
    assert_works(await run(serve, code), len(TEAM))


async def test_run_forever_and_a_nested_asyncio_run_name_the_fix(serve):
    out = await run(serve, "loop = asyncio.get_event_loop()\nloop.run_forever()")
    assert_names(out, "await main()")
    code = "x = await team.get_team_members()\ndef helper():\n    return asyncio.run(asyncio.sleep(0))\nhelper()"
    assert_names(await run(serve, code), "await main()")


@pytest.mark.parametrize(
    "code,tokens",
    [
        ("open('{ROOT}/hello.txt').read()", ["fs.read_text_file"]),
        ("import os\nos.listdir('{ROOT}')", ["fs.list_directory"]),
        ("import pathlib\npathlib.Path('{ROOT}/hello.txt').read_text()", ["fs.read_text_file"]),
        ("open('{ROOT}/out.txt', 'w').write('x')", ["fs.write_file"]),
    ],
)
async def test_host_files_point_at_the_filesystem_tools(serve, code, tokens):
    assert_names(await run(serve, code), "no host file system", *tokens)


async def test_a_lookup_that_finds_nothing_leaves_a_note(serve):
    out = await run(serve, "import glob\nlen(glob.glob('{ROOT}/*.txt'))")
    assert out["result"] == 0
    assert any("glob.glob() found nothing" in n and "fs.search_files" in n for n in out["notes"])


async def test_one_dict_passed_positionally_is_read_as_keywords(serve):
    member = TEAM[0]["id"]
    out = await run(
        serve, f'len(await team.get_expenses({{"member_id": "{member}", "quarter": "Q3"}}))'
    )
    assert_works(out, len(data.expenses(member, "Q3")))
    # ...but not where the first parameter takes a dict
    out = await run(serve, "lead = (await leads.get_leads())[0]\nawait leads.score_lead(lead)")
    assert_works(out, data.score(UNQUALIFIED[0]))


async def test_an_uncaught_tool_error_names_the_server_and_the_tool(serve):
    out = await run(serve, 'await jobs.get_company_details(company_id="nope")')
    assert_names(out, "jobs.get_company_details failed", "nope", kind="ToolError")


async def test_no_result_says_how_to_return_one(serve):
    out = await run(
        serve, "members = await team.get_team_members()\nnames = [m.name for m in members]"
    )
    assert out["error"] is None and out["result"] is None
    assert any("return" in n for n in out["notes"]) and "return value" in out["text"]


# -- output shapes ---------------------------------------------------------------------------


async def test_refs_are_written_out_and_optional_parameters_admit_none(serve):
    description = (await serve.session.list_tools()).tools[0].description or ""
    assert (
        "time.convert_time(source_timezone: str, time: str, target_timezone: str) -> "
        "{source: {timezone: str, datetime: str" in description
    )
    assert "tail: float | None = None" in description
    assert "TimeResult" not in description


async def test_a_text_tool_gets_a_learned_shape_once(serve):
    before = (await serve.session.list_tools()).tools[0].description or ""
    line = next(x for x in before.splitlines() if "git.git_status(" in x)
    assert "-> Any" in line and "observed" not in line
    serve.notifications.clear()
    out = await run(serve, 'await git.git_status(repo_path="{ROOT}/repo")')
    assert out["error"] is None and "On branch main" in out["result"]
    for _ in range(50):  # the notification is sent after the call returns
        if any(isinstance(n, types.ToolListChangedNotification) for n in serve.notifications):
            break
        await asyncio.sleep(0.1)
    assert any(isinstance(n, types.ToolListChangedNotification) for n in serve.notifications)
    after = (await serve.session.list_tools()).tools[0].description or ""
    line = next(x for x in after.splitlines() if "git.git_status(" in x)
    assert '-> str  # observed: "Repository status:' in line
    # the same shape again changes nothing: the description stays byte for byte
    await run(serve, 'await git.git_status(repo_path="{ROOT}/repo")')
    assert (await serve.session.list_tools()).tools[0].description == after
    shapes = serve.workdir / "shapes.json"
    assert stat.S_IMODE(shapes.stat().st_mode) == 0o600
    assert "git_status" in shapes.read_text()
    # tools.describe() shows it too
    out = await run(serve, 'tools.describe("git.git_status")')
    assert "observed in real calls" in out["result"]


# -- the pre-check -----------------------------------------------------------------------


async def test_pre_check_reports_every_problem_and_runs_nothing(serve):
    target = serve.root / "written.txt"
    code = f"""\
await fs.write_file(path="{target}", content="should never be written")
expenses = await team.get_expenses(id="m00001", quarter="Q3")
await team.get_team_members(1)
summary = summarize(expenses)
"""
    out = await run(serve, code)
    assert out["error"]["type"] == "CheckError", said(out)
    message = out["error"]["message"]
    assert "line 2: team.get_expenses() has no parameter 'id'; did you mean member_id?" in message
    assert "line 3: team.get_team_members() takes 0 positional" in message
    assert "line 4: name 'summarize' is not defined" in message
    assert out["stats"]["tool_calls"] == 0 and not target.exists()


async def test_pre_check_leaves_dynamic_programs_alone(serve):
    code = """\
kwargs = {"member_id": "m00001", "quarter": "Q3"}
fn = getattr(team, "get_expenses")
try:
    undefined_helper()
except NameError:
    pass
if False:
    later = 1
a = await team.get_expenses(**kwargs)
b = await fn(*kwargs.values())
len(a) == len(b)
"""
    assert_works(await run(serve, code), True)


# -- the tool API as models guess it -----------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        'fn = tools["team.get_team_members"]\nlen(await fn())',
        'fn = team["get_team_members"]\nlen(await fn())',
        'len(await tools.call("team.get_team_members", {}))',
        'len(await call_tool("team", "get_team_members"))',
        'len(await call_tool("team.get_team_members", {}))',
        'len(await call_tool("get_team_members"))',
        'request = {"name": "get_team_members", "arguments": {}}\nlen(await team.get_team_members(request))',
    ],
)
async def test_registry_style_lookups_reach_the_tool(serve, code):
    assert_works(await run(serve, code), len(TEAM))


async def test_tool_functions_have_real_signatures_and_help(serve):
    code = "import inspect\nhelp(team.get_expenses)\nstr(inspect.signature(team.get_expenses))"
    out = await run(serve, code)
    assert_works(out, "(member_id, quarter)")
    assert "team.get_expenses(member_id: str, quarter: str)" in out["stdout"]


async def test_undefined_clients_point_at_the_tool_itself(serve):
    out = await run(serve, 'r = await session.call_tool("get_team_members", arguments={})\nr')
    assert_names(out, "team.get_team_members", kind="CheckError")
    out = await run(serve, 'await default_api.team_get_expenses(member_id="m1", quarter="Q3")')
    assert_names(out, "team.get_expenses", kind="CheckError")


@pytest.mark.parametrize(
    "code,expected",
    [
        ("import csv\ntext = (await fs.read_text_file(path='{ROOT}/hello.txt'))['content']\n"
         "[row for row in csv.reader(text)]", [["hello from the host"]]),
        ("members = await team.get_team_members()\n(m['id'] for m in members[:2])",
         [m["id"] for m in TEAM[:2]]),
        ("import datetime\ndatetime.datetime.strptime('2024-07-01', '%Y-%m-%d').year", 2024),
        ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--q', default='Q3')\n"
         "p.parse_args().q", "Q3"),
    ],
)  # fmt: skip
async def test_stdlib_habits_work(serve, code, expected):
    assert_works(await run(serve, code), expected)


async def test_an_error_inside_a_task_group_is_reported_as_itself(serve):
    code = """\
async def load(i):
    members = await team.get_team_members()
    return members[i]["nope"]
async with asyncio.TaskGroup() as tg:
    tg.create_task(load(0))
"""
    out = await run(serve, code)
    assert out["error"]["type"] == "KeyError" and "TaskGroup" in out["error"]["message"]
    assert "its keys" in out["error"]["hint"] and out["error"]["line"] == 3


async def test_tasks_left_running_and_caught_lookups_leave_notes(serve):
    code = """\
totals = {}
async def fetch(m):
    totals[m["id"]] = len(await team.get_expenses(member_id=m["id"], quarter="Q3"))
    await asyncio.sleep(30)  # still running when the program returns, however fast the calls
for m in await team.get_team_members():
    asyncio.create_task(fetch(m))
try:
    (await jobs.get_company_details(company_id="c003"))["ceo"]
except KeyError:
    pass
return len(totals)
"""
    out = await run(serve, code)
    assert out["error"] is None
    notes = " ".join(out["notes"])
    assert "task(s) were still running" in notes and "asyncio.gather" in notes
    assert "'ceo'" in notes and "industry" in notes
    assert "called without `await`" not in notes  # the tasks' coroutines were not forgotten


@pytest.mark.parametrize(
    "code,tokens",
    [
        ("offers = await jobs.get_job_offers()\nsorted(offers, key=lambda o: "
         "(await jobs.get_company_details(company_id=o.company_id)).employees)",
         ["a lambda cannot await", "asyncio.gather"]),
        ("async def gen():\n    yield 1\nfor x in gen():\n    pass", ["async for"]),
        ("calls = {m['id']: team.get_expenses(member_id=m['id'], quarter='Q3') for m in "
         "await team.get_team_members()}\nawait asyncio.gather(*calls)", ["*d.values()"]),
        ("import functools\n@functools.lru_cache\nasync def c(i):\n    return await "
         "jobs.get_company_details(company_id=i)\nawait c('c003')\nawait c('c003')",
         ["lru_cache", "dict"]),
        ("x = input('quarter? ')", ["input()"]),
        ("import sys\nsys.argv[1]", ["sys.argv"]),
        ("import datetime\ndatetime.datetime.strptime('2024-07-01T12:00:00+00:00', "
         "'%Y-%m-%dT%H:%M:%S')", ["fromisoformat"]),
        ("log = await git.git_log(repo_path='{ROOT}/repo')\nfor line in log.splitlines():\n"
         "    sha, message = line.split(' ', 1)", ["git.git_log", "Commit:"]),
        ("await leads.score_lead(lead='l002')", ["expected a dict"]),
        ("members = await team.get_team_members()\nprint(json.dumps({m.department for m in "
         "members}))", ["sorted(s)"]),
    ],
)  # fmt: skip
async def test_more_mistakes_name_their_fix(serve, code, tokens):
    assert_names(await run(serve, code), *tokens)


@pytest.mark.parametrize(
    "code,expected",
    [
        ("import sys\nprint('done')\nsys.exit(0)", None),
        ("members = await team.get_team_members()\nlen(await [team.get_expenses("
         "member_id=m.id, quarter='Q3') for m in members[:3]])", 3),
        ("r = await asyncio.gather(members=team.get_team_members(), offers=jobs.get_job_offers())"
         "\n[len(r['members']), len(r['offers'])]", [len(TEAM), len(data.job_offers())]),
        ("import dataclasses\nc = await jobs.get_company_details(company_id='c003')\n"
         "dataclasses.asdict(c)['name']", data.companies()["c003"]["name"]),
    ],
)  # fmt: skip
async def test_habits_from_other_pythons_work(serve, code, expected):
    assert_works(await run(serve, code), expected)


@pytest.mark.parametrize(
    "code,tokens",
    [
        ("await time.get_current_time(timezone='PST')", ["America/Los_Angeles"]),
        ("import zoneinfo\nzoneinfo.ZoneInfo('PST')", ["America/Los_Angeles"]),
        ("await time.convert_time('UTC', 'Asia/Tokyo', '09:00')",
         ["positional arguments went to", "target_timezone='09:00'"]),
        ("p = {'member_id': 'm00001', 'quarter': 'Q3'}\nawait team.get_expenses(*p)", ["**p"]),
        ("m = (await team.get_team_members())[0]\nm['start_date'].strftime('%Y')",
         ["fromisoformat"]),
        ("c = await jobs.get_company_details(company_id='c003')\nfor k, v in c:\n    pass",
         ["c.items()"]),
        ("c = await jobs.get_company_details(company_id='c003')\njson.loads(str(c))",
         ["repr"]),
        ("hot = await leads.get_leads(query='visits > 30')\nmax(h['visits'] for h in hot)",
         ["leads.get_leads(query='visits > 30') returned []"]),
        ("await fs.edit_file(path='{ROOT}/hello.txt', edits=[{'old': 'a', 'new': 'b'}])",
         ["oldText", "newText"]),
    ],
)  # fmt: skip
async def test_third_round_mistakes_name_their_fix(serve, code, tokens):
    assert_names(await run(serve, code), *tokens)


@pytest.mark.parametrize(
    "code,kind",
    [
        ("1/0", "ProgramError"),
        ("x = (", "SyntaxError"),
        ("await team.get_members()", "CheckFailed"),
        ("await jobs.get_company_details(company_id='nope')", "ToolError"),
        ("await team.get_expenses(member_id=42, quarter='Q3')", "InvalidArguments"),
        ("await call_tool('nope', 'x')", "UnknownTool"),
        ("import asyncio\nawait asyncio.Future()", "Deadlock"),
        ("import time\ntime.sleep(60)", "Timeout"),
    ],
)
async def test_every_error_has_one_kind_for_the_client(serve, code, kind):
    out = await run(serve, code)
    assert out["error"]["kind"] == kind, out["error"]
