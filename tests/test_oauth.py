"""OAuth for remote servers: `codemode login NAME` signs in (the browser step done by a
"browser" that follows the redirects), tokens are kept owner-only and refresh on their
own, a refresh that fails marks the server "needs login" while the others keep working,
`codemode logout` forgets. Against a real local authorization server and an
OAuth-protected MCP server on 127.0.0.1 (tests/servers/oauth_pair.py, the SDK's
server-side auth), beside a server that needs no login."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from serve_client import Serve, demo, free_port, no_user_config, text_of, wait_for_port

SERVERS = Path(__file__).parent / "servers"
BROWSER = f"{sys.executable} {SERVERS / 'browser.py'} %s"


class Pair:
    """oauth_pair.py running: the authorization server and the protected MCP server."""

    def __init__(self, ttl: int, *extra: str) -> None:
        self.as_port, self.rs_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVERS / "oauth_pair.py"), str(self.as_port),
             str(self.rs_port), "--ttl", str(ttl), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.as_port)
        wait_for_port(self.rs_port)
        self.url = f"http://127.0.0.1:{self.rs_port}/mcp"
        self.issuer = f"http://127.0.0.1:{self.as_port}"

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.issuer}/counts", timeout=10) as page:
            return json.loads(page.read())

    def revoke(self, token: str, client: dict[str, Any]) -> None:
        form = {
            "token": token,
            "token_type_hint": "refresh_token",
            "client_id": client["client_id"],
        }
        if client.get("client_secret"):
            form["client_secret"] = client["client_secret"]
        data = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(f"{self.issuer}/revoke", data, timeout=10) as page:
            assert page.status == 200

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Home:
    """A user's machine: a config with the protected server `prot` and a stdio `team`,
    the data dir the tokens go to, and the environment codemode runs in."""

    def __init__(self, tmp: Path, pair: Pair, oauth: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        config = {
            "mcpServers": {"prot": {"type": "http", "url": pair.url}, "team": demo("team")},
            "codemode": {"servers": {"prot": {"oauth": oauth or {}}}},
        }
        self.config = tmp / "config.json"
        self.config.write_text(json.dumps(config))
        self.env = {**no_user_config(tmp), "CODEMODE_DATA_DIR": str(self.data), "BROWSER": BROWSER}

    def codemode(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codemode", *args, "--config", str(self.config)],
            env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def run(self, code: str, *flags: str) -> dict[str, Any]:
        out = self.codemode("run", "--json", *flags, "-c", code)
        assert out.stdout, out.stderr
        return json.loads(out.stdout)

    def token_file(self) -> Path:
        (path,) = (self.data / "oauth").glob("prot-*.json")
        return path

    def stored(self) -> dict[str, Any]:
        return json.loads(self.token_file().read_text())


@pytest.fixture
def pair():
    p = Pair(ttl=2)
    yield p
    p.stop()


def test_first_login_then_calls_work_in_a_running_server(tmp_path, pair):
    home = Home(tmp_path, pair)

    async def scenario() -> None:
        async with Serve(None, tmp_path / "serve", "--config", str(home.config), env=home.env) as s:
            (tool,) = (await s.session.list_tools()).tools
            assert "prot [needs login: the user runs `codemode login prot`]" in (
                tool.description or ""
            )
            before = (await s.run("await prot.whoami()")).structured_content
            assert before["error"]["kind"] == "ServerUnavailable"
            assert "needs login" in before["error"]["message"]
            assert "run `codemode login prot`" in before["error"]["message"]
            others = (await s.run("len(await team.get_team_members())")).structured_content
            assert others["error"] is None  # the other servers keep working

            login = home.codemode("login", "prot")
            assert login.returncode == 0, login.stderr
            assert "signed in to 'prot' (2 tools)" in login.stdout
            assert "Sign in at: " in login.stderr and "code_challenge_method=S256" in login.stderr

            # the running server picks the new tokens up on the next call
            after = await s.run("await prot.whoami()")
            out = after.structured_content
            assert out["error"] is None, text_of(after)
            assert out["result"]["scopes"] == ["mcp"]
            # and the description follows: prot's tools listed, no longer "needs login"
            for _ in range(50):
                (tool,) = (await s.session.list_tools()).tools
                if "prot.whoami" in (tool.description or ""):
                    break
                await asyncio.sleep(0.1)
            assert "prot.whoami" in (tool.description or "")
            assert "needs login" not in (tool.description or "")

    asyncio.run(scenario())
    mode = stat.S_IMODE(home.token_file().stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE(home.token_file().parent.stat().st_mode) == 0o700
    assert pair.counts()["authorizations"] == 1 and pair.counts()["registrations"] == 1


def test_tokens_refresh_on_their_own(tmp_path, pair):
    home = Home(tmp_path, pair)
    assert home.codemode("login", "prot").returncode == 0
    first = home.stored()["tokens"]["access_token"]
    time.sleep(2.5)  # the access token (2 s) has expired
    out = home.run("await prot.add(a=2, b=3)")
    assert out["error"] is None and out["result"] == 5, out
    counts = pair.counts()
    assert counts["refreshes"] >= 1 and counts["authorizations"] == 1  # refreshed, no sign-in
    assert home.stored()["tokens"]["access_token"] != first
    # and within one process, across several expiries
    code = "import time\nseen = []\nfor _ in range(3):\n    seen.append(await prot.add(a=1, b=1))\n    time.sleep(1.5)\nseen"
    out = home.run(code)
    assert out["error"] is None and out["result"] == [2, 2, 2], out


def test_a_revoked_refresh_token_means_needs_login(tmp_path, pair):
    home = Home(tmp_path, pair)
    assert home.codemode("login", "prot").returncode == 0
    stored = home.stored()
    pair.revoke(stored["tokens"]["refresh_token"], stored["client"])
    time.sleep(2.5)
    code = (
        "try:\n    await prot.whoami()\nexcept ToolError as e:\n    why = [e.kind, str(e)]\n"
        "[why, len(await team.get_team_members())]"
    )
    out = home.run(code)
    assert out["error"] is None, out
    (kind, message), members = out["result"]
    assert kind == "ServerUnavailable" and "run `codemode login prot`" in message
    assert "expired or was revoked" in message and members > 0
    doctor = home.codemode("doctor")
    assert "FAIL  server prot" in doctor.stdout and "codemode login prot" in doctor.stdout
    # signing in again mends it
    assert home.codemode("login", "prot").returncode == 0
    assert home.run("await prot.add(a=1, b=2)")["result"] == 3


def test_a_server_that_needs_no_login_and_logout(tmp_path, pair):
    port = free_port()
    plain = subprocess.Popen(
        [sys.executable, str(SERVERS / "faulty.py"), "--http-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        home = Home(tmp_path, pair)
        config = json.loads(home.config.read_text())
        config["mcpServers"]["plain"] = {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}
        home.config.write_text(json.dumps(config))
        out = home.codemode("login", "plain")
        assert out.returncode == 0 and "needs no login" in out.stdout, out.stderr
        out = home.codemode("login", "team")
        assert out.returncode == 2 and "local (stdio) server: it needs no login" in out.stderr
        out = home.codemode("login", "nope")
        assert out.returncode == 2 and "no server named 'nope'" in out.stderr
        # the plain server and the protected one side by side, before and after a login
        assert home.codemode("login", "prot").returncode == 0
        out = home.run("[await plain.echo(value='x'), await prot.add(a=1, b=1)]")
        assert out["result"] == ["x", 2], out
        out = home.codemode("logout", "prot")
        assert out.returncode == 0 and "forgot the tokens of 'prot'" in out.stdout
        assert not list((home.data / "oauth").glob("prot-*.json"))
        assert "no tokens were kept" in home.codemode("logout", "prot").stdout
        out = home.run("await prot.whoami()")
        assert out["error"]["kind"] == "ServerUnavailable"
    finally:
        plain.kill()
        plain.wait()


def test_a_configured_client_id_needs_no_registration(tmp_path):
    redirect_port = free_port()
    redirect = f"http://127.0.0.1:{redirect_port}/callback"
    pair = Pair(3600, "--client", f"known-client:s3cret:{redirect}")
    try:
        oauth = {
            "client_id": "known-client",
            "client_secret": "s3cret",
            "redirect_port": redirect_port,
        }
        home = Home(tmp_path, pair, oauth)
        out = home.codemode("login", "prot")
        assert out.returncode == 0, out.stderr
        assert home.run("await prot.whoami()")["result"]["client_id"] == "known-client"
        assert pair.counts().get("registrations", 0) == 0
    finally:
        pair.stop()


def test_run_sign_in_signs_in_where_asked(tmp_path, pair):
    home = Home(tmp_path, pair)
    out = home.run("await prot.add(a=20, b=22)", "--sign-in")
    assert out["error"] is None and out["result"] == 42, out
    assert pair.counts()["authorizations"] == 1
    assert home.stored()["tokens"]["refresh_token"]
