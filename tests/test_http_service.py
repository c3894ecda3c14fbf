"""codemode as an HTTP service for a team, over real HTTP on 127.0.0.1: bearer tokens
(401 with `WWW-Authenticate: Bearer`, hashed entries, reload, no early exit in the
comparison), JWT access tokens checked against a JWKS the test serves (expired, wrong
audience, wrong issuer, bad signature, good) and the protected resource metadata,
refusal of unauthenticated binds off loopback, the Host check, per-identity policy,
health and readiness, and a drain on SIGTERM with an execution in flight."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import mcp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.client.streamable_http import streamable_http_client
from serve_client import demo, faulty, free_port, no_user_config, wait_for_port

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextlib.contextmanager
def serving(
    tmp: Path, *flags: str, codemode: dict[str, Any] | None = None, wait: bool = True
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`codemode serve --transport http` with the team and faulty servers: (base URL, proc)."""
    config = tmp / "config.json"
    config.write_text(json.dumps({
        "mcpServers": {"team": demo("team"), "f": faulty()},
        "codemode": codemode or {},
    }))  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codemode", "serve", "--transport", "http", "--port", str(port),
         "--config", str(config), *flags],
        env={**no_user_config(tmp), "CODEMODE_SHAPES_FILE": str(tmp / "shapes.json")},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if wait:
            wait_for_port(port)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as page:
            return page.status, dict(page.headers), page.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def post_mcp(base: str, token: str | None, host: str | None = None) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if host:
        headers["Host"] = host
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    response = httpx2.post(f"{base}/mcp", json=body, headers=headers, timeout=30)
    return response.status_code, dict(response.headers)


async def run(base: str, token: str, code: str, mode: str = "legacy", **args: Any) -> dict:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        mcp.Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as c,
    ):
        await c.list_tools()
        result = await c.call_tool("execute_code", {"code": code, **args})
    assert result.structured_content is not None
    return result.structured_content


async def description(base: str, token: str) -> str:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        mcp.Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c,
    ):
        (tool,) = (await c.list_tools()).tools
    return tool.description or ""


def tokens_file(tmp: Path, text: str) -> Path:
    path = tmp / "tokens.txt"
    path.write_text(text)
    path.chmod(0o600)
    return path


# -- bearer tokens ---------------------------------------------------------------------


async def test_bearer_tokens_plain_and_hashed(tmp_path):
    path = tokens_file(tmp_path, f"# the team\n{ALICE}\nbob:{sha(BOB)}  # hashed\n")
    with serving(tmp_path, "--auth-tokens", str(path)) as (base, _):
        for token in (None, "not-a-token-of-ours-at-all"):
            status, headers = post_mcp(base, token)
            assert status == 401 and headers["www-authenticate"].startswith("Bearer ")
        out = await run(base, ALICE, "len(await team.get_team_members())")
        assert out["error"] is None and out["result"] > 0
        out = await run(base, BOB, "1 + 1")
        assert out["result"] == 2
        # the token's name is the identity: sessions are the identity's, not the client's
        await run(base, ALICE, "mine = 'alice'", session="s")
        await run(base, BOB, "mine = 'bob'", session="s")
        assert (await run(base, ALICE, "mine", session="s", mode="2026-07-28"))["result"] == "alice"
        assert (await run(base, BOB, "mine", session="s"))["result"] == "bob"


async def test_the_tokens_file_is_reread_when_it_changes(tmp_path):
    path = tokens_file(tmp_path, f"{ALICE}\n")
    with serving(tmp_path, "--auth-tokens", str(path)) as (base, _):
        assert post_mcp(base, BOB)[0] == 401
        path.write_text(f"bob:{sha(BOB)}\n")  # alice revoked, bob added
        time.sleep(1.2)
        assert post_mcp(base, BOB)[0] == 200
        assert post_mcp(base, ALICE)[0] == 401


def test_tokens_are_compared_in_full_every_time(tmp_path, monkeypatch):
    """The comparison is hmac.compare_digest against every entry, matched or not (no
    early exit that would tell, by its time, which entry matched)."""
    from codemode.server import _auth

    path = tokens_file(tmp_path, f"{ALICE}\nbob:{sha(BOB)}\n{'c' * 20}\n")
    verifier = _auth.TokenFileVerifier(str(path))
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(_auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for token, name in ((ALICE, f"token-{sha(ALICE)[:8]}"), (BOB, "bob"), ("x" * 20, None)):
        calls.clear()
        assert verifier.find(token) == name
        assert len(calls) == 3


def test_a_bad_tokens_file_is_refused_at_start(tmp_path):
    path = tokens_file(tmp_path, "short\n")
    with serving(tmp_path, "--auth-tokens", str(path), wait=False) as (_, proc):
        assert proc.wait(timeout=60) == 2
        assert "not a token" in proc.stderr.read()


# -- binding off loopback, Host headers --------------------------------------------------


def test_an_unauthenticated_bind_off_loopback_is_refused(tmp_path):
    with serving(tmp_path, "--host", "0.0.0.0", wait=False) as (_, proc):
        assert proc.wait(timeout=60) == 2
        err = proc.stderr.read()
    assert "refusing to serve on 0.0.0.0 with no authentication" in err
    assert "--auth-tokens FILE" in err and "--no-auth" in err


def test_host_headers_are_checked_off_loopback(tmp_path):
    path = tokens_file(tmp_path, f"{ALICE}\n")
    flags = ("--host", "0.0.0.0", "--auth-tokens", str(path), "--allowed-host", "127.0.0.1:*")
    with serving(tmp_path, *flags) as (base, _):
        assert post_mcp(base, ALICE)[0] == 200
        assert post_mcp(base, ALICE, host="evil.example:80")[0] in (400, 403, 421)
    with serving(tmp_path, "--host", "0.0.0.0", "--no-auth") as (base, proc):
        assert post_mcp(base, None)[0] == 200
        proc.terminate()
        proc.wait(timeout=60)
        err = proc.stderr.read()
    assert "with --no-auth" in err and "--allowed-host" in err  # said, not silent


# -- per-identity policy -----------------------------------------------------------------


async def test_each_identity_gets_its_servers_rules_and_cap(tmp_path):
    path = tokens_file(tmp_path, f"alice:{sha(ALICE)}\nbob:{sha(BOB)}\n")
    codemode = {
        "identities": {
            "alice": {"servers": ["team"]},
            "*": {"deny": {"f": ["crash", "slow"]}, "max_tool_calls_per_minute": 3},
        }
    }
    probe = (
        "out = []\nfor call in (lambda: team.get_team_members(), lambda: f.echo(value='x'),\n"
        "             lambda: f.slow(ms=1)):\n"
        "    try:\n        await call()\n        out.append('ok')\n"
        "    except ToolError as e:\n        out.append(e.kind + ': ' + str(e))\nout"
    )
    with serving(tmp_path, "--auth-tokens", str(path), codemode=codemode) as (base, _):
        alice = (await run(base, ALICE, probe))["result"]
        bob = (await run(base, BOB, probe))["result"]
        capped = await run(base, BOB, "for _ in range(3):\n    await f.echo(value='y')")
        seen_by = {"alice": await description(base, ALICE), "bob": await description(base, BOB)}
    # each identity's description lists what it may call
    assert "team.get_team_members" in seen_by["alice"] and "f.echo" not in seen_by["alice"]
    assert "f.echo" in seen_by["bob"] and "f.slow" not in seen_by["bob"]
    assert alice[0] == "ok"
    assert alice[1].startswith("PolicyBlocked") and "only the servers team" in alice[1]
    assert "codemode.identities.alice.servers" in alice[1]
    assert bob[:2] == ["ok", "ok"]
    assert bob[2].startswith("PolicyBlocked") and "codemode.identities.*.deny.f" in bob[2]
    # bob's cap (3 a minute) is its own: 2 used above, the loop's second call is refused
    assert capped["error"]["kind"] == "PolicyBlocked"
    assert "codemode.identities.*.max_tool_calls_per_minute" in capped["error"]["message"]


# -- JWT access tokens of the team's authorization server -------------------------------


class Issuer:
    """An authorization server's metadata and JWKS, served on 127.0.0.1, and its key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        docs = {
            "/.well-known/oauth-authorization-server": {
                "issuer": self.url, "jwks_uri": f"{self.url}/jwks.json",
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "response_types_supported": ["code"],
            },
            "/jwks.json": {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]},
        }  # fmt: skip

        active: dict[str, dict[str, Any]] = {}  # opaque token -> its introspection answer
        self.active = active

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                answer = active.get((form.get("token") or [""])[0], {"active": False})
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                doc = docs.get(self.path)
                body = json.dumps(doc).encode() if doc else b"{}"
                self.send_response(200 if doc else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": "codemode", "sub": "carol", "iat": now,
                "exp": now + 300, "scope": "mcp", **claims}  # fmt: skip
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


async def test_jwt_access_tokens_are_checked_against_the_jwks(tmp_path):
    issuer = Issuer()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    flags = ("--auth-issuer", issuer.url, "--auth-audience", "codemode")
    try:
        with serving(tmp_path, *flags) as (base, _):
            bad = {
                "expired": issuer.token(exp=int(time.time()) - 60),
                "wrong audience": issuer.token(aud="someone-else"),
                "wrong issuer": issuer.token(iss="http://127.0.0.1:1"),
                "bad signature": issuer.token(key=other),
                "not a JWT": "plain-opaque-token-value",
            }
            for why, token in bad.items():
                status, headers = post_mcp(base, token)
                assert status == 401, why
                assert "resource_metadata=" in headers["www-authenticate"], why
            good = issuer.token()
            assert post_mcp(base, good)[0] == 200
            out = await run(base, good, "1 + 2", session="s")
            assert out["result"] == 3 and "handle" not in out["session"]  # carol's own scope
            status, _, body = get(f"{base}/.well-known/oauth-protected-resource/mcp")
            assert status == 200
            metadata = json.loads(body)
            assert metadata["resource"] == f"{base}/mcp"
            assert [s.rstrip("/") for s in metadata["authorization_servers"]] == [issuer.url]
    finally:
        issuer.server.shutdown()


async def test_opaque_tokens_are_checked_by_introspection(tmp_path):
    issuer = Issuer()
    now = int(time.time())
    issuer.active["opaque-good-token"] = {
        "active": True, "sub": "dave", "aud": "codemode", "iss": issuer.url,
        "exp": now + 300, "scope": "mcp",
    }  # fmt: skip
    issuer.active["opaque-expired"] = {**issuer.active["opaque-good-token"], "exp": now - 5}
    issuer.active["opaque-other-aud"] = {**issuer.active["opaque-good-token"], "aud": "x"}
    codemode = {"http": {"auth": {"introspection_url": f"{issuer.url}/introspect"}}}
    flags = ("--auth-issuer", issuer.url, "--auth-audience", "codemode")
    try:
        with serving(tmp_path, *flags, codemode=codemode) as (base, _):
            for token in ("opaque-expired", "opaque-other-aud", "never-issued-token"):
                assert post_mcp(base, token)[0] == 401, token
            out = await run(base, "opaque-good-token", "40 + 2")
            assert out["error"] is None and out["result"] == 42
    finally:
        issuer.server.shutdown()


# -- health, readiness, drain ------------------------------------------------------------


def test_health_and_readiness(tmp_path):
    slow = {"command": sys.executable, "args": ["-c", "import time; time.sleep(4)"]}
    codemode = {"servers": {"slow": {"connect_timeout_s": 3}}}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mcpServers": {"team": demo("team"), "slow": slow},
                                  "codemode": codemode}))  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codemode", "serve", "--transport", "http", "--port", str(port),
         "--config", str(config)],
        env=no_user_config(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        assert get(f"{base}/healthz")[0] == 200
        status, _, body = get(f"{base}/readyz")
        assert status == 503 and json.loads(body)["servers"]["slow"] == "connecting"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.2)
            status, _, body = get(f"{base}/readyz")
        state = json.loads(body)
        assert status == 200 and state["ready"] and state["sandbox"] == "built"
        assert state["workers"] >= 1 and state["servers"]["team"] == "ready"
        assert state["servers"]["slow"] != "ready"  # a server down is said, not fatal
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def test_sigterm_drains_an_execution_in_flight(tmp_path):
    path = tokens_file(tmp_path, f"{ALICE}\n")
    with serving(tmp_path, "--auth-tokens", str(path)) as (base, proc):
        assert (await run(base, ALICE, "1"))["result"] == 1  # warm
        call = asyncio.create_task(run(base, ALICE, "await f.slow(ms=3000)\n'finished'"))
        await asyncio.sleep(1.5)
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(httpx2.ConnectError):  # no longer accepting
            httpx2.get(f"{base}/healthz", timeout=2)
        out = await asyncio.wait_for(call, 30)  # finished, though the server is going
        exit_code = await asyncio.to_thread(proc.wait, 30)
    assert out["error"] is None and out["result"] == "finished"
    assert exit_code == 0
