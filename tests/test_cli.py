"""The `codemode` command line, run as users run it: as a subprocess."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
from serve_client import NPM_BIN, demo, no_user_config

import codemode
from codemode.demo import data
from codemode.wasm_runtime._component import dist_version

ROOT = Path(__file__).parent.parent


def codemode_cli(
    *args: str, config: Path | None = None, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    home = Path(tempfile.mkdtemp(prefix="codemode-cli-"))
    env = no_user_config(home)
    env["CODEMODE_SHAPES_FILE"] = str(home / "shapes.json")  # learns only what it runs
    if config is not None:
        env["CODEMODE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "codemode", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "config.json"
    path.write_text(json.dumps({"mcpServers": {"team": demo("team"), "jobs": demo("jobs")}}))
    return path


def test_run_prints_result_and_stats_against_configured_servers(config_file):
    code = "team = await get_team_members()\nprint(len(team))\nreturn team[0]['id']"
    out = codemode_cli("run", "--config", str(config_file), "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout == '20\n"m00001"\n'
    assert re.search(r"\[[\d.]+ ms, 1 tool calls, \d+ crossings", out.stderr)


def test_run_reads_a_file_and_the_default_config(config_file, tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("offers = await jobs.get_job_offers()\nmax(o.salary for o in offers)")
    out = codemode_cli("run", str(program), config=config_file)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == max(o["salary"] for o in data.job_offers())


def test_run_error_exits_1_with_the_traceback_on_stderr(config_file):
    out = codemode_cli("run", "--config", str(config_file), "-c", "a = 1\nb = a + 'x'")
    assert out.returncode == 1
    assert "line 2" in out.stderr and "TypeError" in out.stderr and out.stdout == ""


def test_run_json_prints_the_structured_result():
    out = codemode_cli("run", "--json", "-c", "print('hi')\nreturn [1, 2]")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["result"] == [1, 2] and result["stdout"] == "hi\n" and result["error"] is None


def test_bad_config_and_missing_program_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"mcpServers": {"x": {"comand": "y"}}}')
    out = codemode_cli("run", "--config", str(bad), "-c", "1")
    assert out.returncode == 2
    assert "mcpServers.x.comand: unknown key" in out.stderr
    out = codemode_cli("run", "-c", "1", "--config", str(tmp_path / "none.json"))
    assert out.returncode == 2 and "no such config file" in out.stderr
    out = codemode_cli("run", str(tmp_path / "missing.py"))
    assert out.returncode == 2 and "missing.py: cannot read the program" in out.stderr


def test_tools_prints_the_description_and_stubs(config_file):
    out = codemode_cli("tools", "--config", str(config_file))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Run a Python program")
    assert "await jobs.get_company_details(company_id: str) -> dict" in out.stdout
    stubs = codemode_cli("tools", "--stubs", "--config", str(config_file))
    assert stubs.returncode == 0, stubs.stderr
    tree = ast.parse(stubs.stdout)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {"team", "jobs"}


def test_tools_with_a_failing_server_exits_1_and_names_it(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"mcpServers": {"gone": {"command": "/no/such/binary"}}}))
    out = codemode_cli("tools", "--config", str(path))
    assert out.returncode == 1
    assert "server 'gone' is not available" in out.stderr
    assert "Not connected: gone" in out.stdout


def test_doctor_gives_a_verdict_per_item(config_file, tmp_path):
    out = codemode_cli("doctor", "--config", str(config_file))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(re.match(r"ok\s+server team\s+2 tool\(s\)", line) for line in lines), out.stdout
    assert any(re.match(r"ok\s+sandbox run\s+self-test passed", line) for line in lines)
    tzdata = dist_version("tzdata")  # a source checkout: the installed tzdata's zones
    assert any(
        re.match(rf"ok\s+sandbox zones\s+tzdata {tzdata}, installed$", line) for line in lines
    )
    if shutil.which("cc"):  # which worker runs, said: here the native one
        assert any(re.match(r"ok\s+sandbox worker\s+native: /", line) for line in lines)
    assert "verdict: all good" in out.stdout
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "team": demo("team"),
                    "bad": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]},
                }
            }
        )
    )
    out = codemode_cli("doctor", "--config", str(broken))
    assert out.returncode == 1
    assert (
        re.search(r"FAIL\s+server bad", out.stdout)
        and "verdict: 1 problem(s): server bad" in out.stdout
    )


def test_demo_runs_the_brief_and_prints_the_comparison(tmp_path):
    summary_path = tmp_path / "summary.json"
    out = codemode_cli("demo", "--summary", str(summary_path), "--latency-ms", "10", timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for heading in (
        "## Team members over their Q3 budget",
        "## Qualify the unqualified leads",
        "## Highest-paying offer from a tech company",
        "## Plain tool calling vs codemode",
    ):
        assert heading in out.stdout
    summary = json.loads(summary_path.read_text())
    names = [
        m["name"]
        for m in data.team(20)
        if sum(e["amount"] for e in data.expenses(m["id"], "Q3")) > data.BUDGET
    ]
    assert summary["expenses"]["result"] == {"exceeded_count": len(names), "list": names}
    hot = [
        lead for lead in data.leads() if lead["status"] == "unqualified" and data.score(lead) > 0.8
    ]
    assert len(summary["leads"]["result"]) == len(hot)
    best = max(
        (
            o
            for o in data.job_offers()
            if "tech" in data.companies()[o["company_id"]]["industry"].lower()
        ),
        key=lambda o: o["salary"],
    )
    assert json.loads(summary["jobs"]["stdout"])["offer"] == best
    for key, row in summary.items():
        assert row["ok"], key
        assert row["model_calls_codemode"] < row["model_calls_plain"]
        assert row["context_bytes_codemode"] < row["context_bytes_plain"] / 10, key
        # the table shows the same measured numbers
        assert (
            f"{row['context_bytes_plain']:,} B → {row['context_bytes_codemode']:,} B" in out.stdout
        )
    assert summary["expenses"]["tool_calls"] == 21
    assert (
        summary["expenses"]["wall_ms_plain_sequential"]
        > summary["expenses"]["wall_ms_plain_parallel"]
    )


# -- packaging -------------------------------------------------------------------------


def test_manifest_is_a_valid_mcp_bundle_for_this_version():
    manifest = json.loads((ROOT / "manifest.json").read_text())
    schemas = NPM_BIN.parent / "@anthropic-ai" / "mcpb" / "schemas"
    version = manifest["manifest_version"]
    schema = json.loads((schemas / f"mcpb-manifest-v{version}.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    assert tuple(map(int, version.split("."))) >= (0, 3)
    assert manifest["version"] == codemode.__version__
    assert [t["name"] for t in manifest["tools"]] == ["execute_code"]
    assert manifest["server"]["mcp_config"]["args"][-4:-1] == ["codemode", "serve", "--config"]
    mcpb = str(NPM_BIN / "mcpb")
    ok = subprocess.run(
        [mcpb, "validate", str(ROOT / "manifest.json")], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_mcpb_validate_rejects_a_broken_manifest(tmp_path):
    manifest = json.loads((ROOT / "manifest.json").read_text())
    del manifest["server"]
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(manifest))
    out = subprocess.run(
        [str(NPM_BIN / "mcpb"), "validate", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "server" in out.stdout + out.stderr
