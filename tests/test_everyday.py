"""Everyday use, as a new user meets it: client configs as they are, `codemode import`,
no accidents (chains of codemode, a taken port, blank bundle settings, a missing
CODEMODE_CONFIG), and a first run told as it happens. Real files in each client's own
format and documented place (in a temporary HOME), real processes, real ports."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_client import FAULTY, Serve, faulty, free_port, no_user_config, text_of, wait_for_port

CODEMODE = [sys.executable, "-m", "codemode"]


def home_env(home: Path) -> dict[str, str]:
    """A user whose HOME (and XDG config dir) is `home`, with no codemode config yet."""
    env = no_user_config(home)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return env


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120):
    return subprocess.run(
        [*CODEMODE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


# -- configs people already have -------------------------------------------------------


def test_a_claude_desktop_file_is_read_as_it_is(tmp_path):
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(
        json.dumps(
            {
                "globalShortcut": "Ctrl+Space",
                "preferences": {"menuBarEnabled": False, "quickEntryShortcut": "off"},
                "mcpServers": {"f": faulty()},
            }
        )
    )
    out = cli("tools", "--config", str(path), env=home_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "await f.echo(" in out.stdout
    # ...while keys inside a server entry, and misspelt top-level keys, are still refused
    path.write_text(json.dumps({"mcpServers": {"f": {**faulty(), "argz": []}}}))
    out = cli("tools", "--config", str(path), env=home_env(tmp_path))
    assert out.returncode == 2 and "mcpServers.f.argz" in out.stderr
    path.write_text(json.dumps({"mcpServer": {"f": faulty()}}))
    out = cli("tools", "--config", str(path), env=home_env(tmp_path))
    assert out.returncode == 2 and "did you mean 'mcpServers'" in out.stderr


def test_a_claude_code_user_file_is_read_as_it_is(tmp_path):
    path = tmp_path / ".claude.json"
    path.write_text(
        json.dumps(
            {
                "numStartups": 41,
                "tipsHistory": {"x": 1},
                "projects": {"/p": {"mcpServers": {}}},
                "mcpServers": {"f": {"type": "stdio", **faulty()}},
            }
        )
    )
    out = cli("tools", "--config", str(path), env=home_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "await f.echo(" in out.stdout


async def test_vs_code_jsonc_variables_and_env_file_reach_the_server(tmp_path, monkeypatch):
    workspace = tmp_path / "project"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / "secrets.env").write_text("FROM_FILE=from the env file\nBOTH=file\n")
    monkeypatch.setenv("CODEMODE_TEST_SET", "set in the environment")
    monkeypatch.delenv("CODEMODE_TEST_UNSET", raising=False)
    (workspace / ".vscode" / "mcp.json").write_text(f"""\
// VS Code's own format: comments and trailing commas
{{
  "servers": {{
    "f": {{
      "type": "stdio",
      "command": {json.dumps(sys.executable)},
      "args": [{json.dumps(FAULTY)},],  /* a trailing comma */
      "envFile": "${{workspaceFolder}}/secrets.env",
      "env": {{
        "BOTH": "env wins",
        "DEFAULTED": "${{CODEMODE_TEST_UNSET:-the default}}",
        "FROM_ENV": "${{env:CODEMODE_TEST_SET}}",
        "HOME_DIR": "${{userHome}}",
      }},
    }},
  }},
  "inputs": [],
}}
""")
    config = workspace / ".vscode" / "mcp.json"
    async with Serve(None, tmp_path / "serve", "--config", str(config)) as serve:
        code = "[await f.getenv(name=n) for n in ('FROM_FILE', 'BOTH', 'DEFAULTED', 'FROM_ENV', 'HOME_DIR')]"
        out = (await serve.run(code)).structured_content
    assert out["error"] is None, out
    assert out["result"] == [
        "from the env file",
        "env wins",
        "the default",
        "set in the environment",
        str(Path.home()),
    ]


@pytest.mark.parametrize(
    "server,fragment",
    [
        ({"command": "x", "envFile": "missing.env"}, "envFile names"),
        ({"command": "x", "args": ["${input:token}"]}, "VS Code asks the user for"),
        (
            {"command": "x", "args": ["${CODEMODE_TEST_NEVER_SET}"]},
            "${CODEMODE_TEST_NEVER_SET:-value}",
        ),
        ({"command": "x", "args": ["${user_config.x}"]}, "not a variable codemode knows"),
    ],
)
def test_config_mistakes_name_the_fix(tmp_path, server, fragment):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": {"a": server}}))
    out = cli("tools", "--config", str(path), env=home_env(tmp_path))
    assert out.returncode == 2 and fragment in out.stderr, out.stderr


async def test_an_sse_server_connects(tmp_path):
    port = free_port()
    sse = subprocess.Popen(
        [sys.executable, FAULTY, "--sse-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10)
        config = {"mcpServers": {"old": {"type": "sse", "url": f"http://127.0.0.1:{port}/sse"}}}
        async with Serve(config, tmp_path / "serve") as serve:
            out = (await serve.run("await old.echo(value='over sse', times=2)")).structured_content
        assert out["error"] is None and out["result"] == "over sseover sse", out
    finally:
        sse.kill()
        sse.wait()


# -- codemode import -------------------------------------------------------------------


def client_file(home: Path, client: str, cwd: Path) -> tuple[Path, dict]:
    """A client's config in its documented place (Linux), with one server."""
    entry = faulty()
    if client == "claude-desktop":
        return home / ".config" / "Claude" / "claude_desktop_config.json", {
            "globalShortcut": "",
            "mcpServers": {"f": entry},
        }
    if client == "cursor":
        return home / ".cursor" / "mcp.json", {"mcpServers": {"f": entry}}
    if client == "vscode":
        return home / ".config" / "Code" / "User" / "mcp.json", {
            "servers": {"f": {"type": "stdio", **entry}}
        }
    return home / ".claude.json", {
        "numStartups": 3,
        "projects": {str(cwd): {"mcpServers": {"f": entry}}},
    }


@pytest.mark.parametrize("client", ["claude-desktop", "cursor", "vscode", "claude-code"])
def test_import_dry_run_then_write_with_backups(tmp_path, client):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir(parents=True)
    path, content = client_file(home, client, cwd)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    env = home_env(home)
    target = home / ".config" / "codemode" / "config.json"

    dry = cli("import", env=env, cwd=cwd)
    assert dry.returncode == 0, dry.stderr
    assert f"{client}: {path}" in dry.stdout and "f: " in dry.stdout and "Dry run" in dry.stdout
    assert not target.exists() and json.loads(path.read_text()) == content

    done = cli("import", "--from", client, "--write", "--replace", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text())["mcpServers"]["f"]["args"] == faulty()["args"]
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    backups = list(path.parent.glob(path.name + ".codemode-backup-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == content
    rewritten = json.loads(path.read_text())
    section = (
        rewritten["projects"][str(cwd)]["mcpServers"]
        if client == "claude-code"
        else (rewritten["servers"] if client == "vscode" else rewritten["mcpServers"])
    )
    assert "f" not in section and section["codemode"]["args"][-2:] == ["--config", str(target)]
    assert Path(section["codemode"]["command"]).is_absolute()
    if client == "claude-desktop":
        assert rewritten["globalShortcut"] == ""  # the client's other keys stay
    # the written config is codemode's default: it now serves the imported server
    tools = cli("tools", env=env)
    assert tools.returncode == 0 and "await f.echo(" in tools.stdout, tools.stderr
    # and importing again finds only the codemode entry, which it never imports
    again = cli("import", "--from", client, env=env, cwd=cwd)
    assert "codemode: skipped (it runs codemode itself)" in again.stdout + again.stderr or (
        again.returncode == 2 and "no MCP servers" in again.stderr
    )


def test_import_from_several_clients_asks_which(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir(parents=True)
    for client in ("cursor", "vscode"):
        path, content = client_file(home, client, cwd)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    out = cli("import", env=home_env(home), cwd=cwd)
    assert out.returncode == 2 and "--from cursor|vscode" in out.stderr


# -- no accidents ------------------------------------------------------------------------


def codemode_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    return [
        line
        for line in out.splitlines()
        if "-m codemode serve" in line or line.endswith("codemode serve")
    ]


@pytest.mark.parametrize("shape", ["direct", "second level", "launcher script"])
def test_a_config_that_starts_codemode_is_refused_not_chained(tmp_path, shape):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    launcher = tmp_path / "launch.sh"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -m codemode serve --config {one}\n")
    launcher.chmod(0o755)
    me = {"command": sys.executable, "args": ["-m", "codemode", "serve", "--config", str(one)]}
    if shape == "second level":
        me = {**me, "args": ["-m", "codemode", "serve", "--config", str(two)]}
        two.write_text(
            json.dumps(
                {
                    "mcpServers": {
                        "back": {
                            "command": sys.executable,
                            "args": ["-m", "codemode", "serve", "--config", str(one)],
                        }
                    }
                }
            )
        )
    if shape == "launcher script":
        me = {"command": str(launcher)}
    one.write_text(json.dumps({"mcpServers": {"me": me, "f": faulty()}}))
    before = len(codemode_processes())
    started = time.monotonic()
    out = cli("tools", "--config", str(one), env=home_env(tmp_path), timeout=60)
    assert time.monotonic() - started < 30
    assert out.returncode == 1  # one server failed; the others work
    assert "refusing to start: this codemode was started as server 'me'" in out.stderr
    assert "await f.echo(" in out.stdout
    assert len(codemode_processes()) <= before  # nothing left running


def test_a_taken_port_exits_at_once_naming_it(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        started = time.monotonic()
        out = cli(
            "serve", "--transport", "http", "--port", str(port), env=home_env(tmp_path), timeout=30
        )
        assert time.monotonic() - started < 15
        assert out.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
        assert "serving" not in out.stderr
    finally:
        holder.close()
    assert not [p for p in codemode_processes() if f"--port {port}" in p]


@pytest.mark.parametrize("setting", ["", "${user_config.config_file}", "  "])
def test_a_blank_or_unexpanded_bundle_setting_uses_the_default_config(tmp_path, setting):
    env = home_env(tmp_path)
    default = Path(env["XDG_CONFIG_HOME"]) / "codemode" / "config.json"
    default.parent.mkdir(parents=True)
    default.write_text(json.dumps({"mcpServers": {"f": faulty()}}))
    out = cli("tools", "--config", setting, env=env)
    assert out.returncode == 0, out.stderr
    assert "await f.echo(" in out.stdout


@pytest.mark.parametrize("command", [["serve"], ["run", "-c", "1"], ["tools"], ["doctor"]])
def test_a_missing_codemode_config_file_is_an_error_in_every_command(tmp_path, command):
    env = {**home_env(tmp_path), "CODEMODE_CONFIG": str(tmp_path / "nope.json")}
    out = cli(*command, env=env, timeout=60)
    assert out.returncode in (1, 2), out.stderr
    said = out.stdout + out.stderr
    assert f"CODEMODE_CONFIG names {tmp_path / 'nope.json'}, which does not exist" in said


# -- first run, told as it happens --------------------------------------------------------


def test_build_progress_arrives_while_the_build_runs(tmp_path):
    env = {**home_env(tmp_path), "CODEMODE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [*CODEMODE, "build"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    started = time.monotonic()
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.monotonic() - started, line.rstrip()))
    assert proc.wait(timeout=300) == 0
    text = "\n".join(f"{t:5.1f} {line}" for t, line in lines)
    first_step = next(t for t, line in lines if "componentize" in line)
    compile_step = next(t for t, line in lines if "compile:" in line)
    end = lines[-1][0]
    assert first_step < 3 and end - first_step > 5, text  # the first step was told at once
    assert first_step < compile_step < end, text  # and each as it started
    assert any("..." in line and " s" in line for _, line in lines), text  # elapsed ticks


def test_serve_in_a_terminal_says_it_waits_for_a_client(tmp_path):
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*CODEMODE, "serve"],
        stdin=terminal,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=home_env(tmp_path),
    )
    try:
        assert proc.stderr is not None
        said = ""
        deadline = time.monotonic() + 60
        while "waiting for an MCP client on stdin" not in said and time.monotonic() < deadline:
            said += proc.stderr.readline()
        assert "waiting for an MCP client on stdin" in said and "codemode run -c" in said
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.close(controller)
        os.close(terminal)


async def test_serve_over_a_pipe_says_nothing_of_terminals(tmp_path):
    async with Serve({"mcpServers": {"f": faulty()}}, tmp_path / "serve") as serve:
        assert "waiting for an MCP client" not in serve.stderr()
        assert text_of(await serve.run("1")).startswith("1")
