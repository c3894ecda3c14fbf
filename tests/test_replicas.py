"""Two codemode replicas behind a real load balancer (haproxy, from the Debian packages;
.ci/run installs it) on loopback: stateless HTTP, so alternating requests from clients of
both protocol eras all succeed; and state that lives in one replica (a session) says so
when a call reaches the other, instead of silently starting fresh."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import mcp
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client
from serve_client import demo, faulty, free_port, no_user_config, wait_for_port

TOKEN = "team-token-0123456789abcdef"
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
)

pytestmark = pytest.mark.skipif(
    HAPROXY is None,
    reason="haproxy is not installed (Debian: apt-get install haproxy; .ci/run installs it)",
)


@contextlib.contextmanager
def replicas(tmp: Path) -> Iterator[tuple[str, list[str]]]:
    """Two replicas and haproxy in front: (the balancer's URL, each replica's URL)."""
    tokens = tmp / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    config = tmp / "config.json"
    config.write_text(json.dumps({
        "mcpServers": {"team": demo("team"), "f": faulty()},
        "codemode": {
            "http": {"stateless": True, "state_key": "a-secret-every-replica-shares-0123456789"},
            "servers": {"f": {"approve": ["echo"]}},
        },
    }))  # fmt: skip
    procs, urls = [], []
    try:
        for name in ("replica-a", "replica-b"):
            port = free_port()
            env = {**no_user_config(tmp), "CODEMODE_REPLICA": name,
                   "CODEMODE_SHAPES_FILE": str(tmp / f"{name}.json")}  # fmt: skip
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "codemode", "serve", "--transport", "http", "--port",
                 str(port), "--config", str(config), "--auth-tokens", str(tokens)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        balancer = free_port()
        backends = "\n".join(
            f"    server r{i} {url.removeprefix('http://')} check inter 500ms"
            for i, url in enumerate(urls)
        )
        (tmp / "haproxy.cfg").write_text(f"""\
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend mcp
    bind 127.0.0.1:{balancer}
    default_backend codemode
backend codemode
    balance roundrobin
    option httpchk GET /readyz
{backends}
""")
        for url in urls:
            wait_for_port(int(url.rsplit(":", 1)[1]))
            deadline = time.monotonic() + 60
            while httpx2.get(f"{url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, f"{url} never became ready"
                time.sleep(0.2)
        procs.append(subprocess.Popen(
            [HAPROXY, "-f", str(tmp / "haproxy.cfg"), "-db"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        wait_for_port(balancer)
        time.sleep(1.5)  # both backends pass a health check
        yield f"http://127.0.0.1:{balancer}", urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


async def call(url: str, code: str, mode: str, **args: object) -> dict:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http,
        mcp.Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as c,
    ):
        result = await c.call_tool("execute_code", {"code": code, **args})
    assert result.structured_content is not None
    return result.structured_content


async def test_alternating_requests_from_both_eras_all_succeed(tmp_path):
    with replicas(tmp_path) as (balancer, urls):
        served = {httpx2.get(f"{balancer}/readyz").json()["replica"] for _ in range(4)}
        assert served == {"replica-a", "replica-b"}  # the balancer alternates
        errors = []
        for i in range(12):
            mode = ("legacy", "2026-07-28")[i % 2]
            out = await call(balancer, f"len(await team.get_team_members()) + {i}", mode)
            if out["error"] is not None or out["result"] != 20 + i:
                errors.append((mode, out["error"]))
        assert errors == []
        # a session lives in the replica that made it: the other one says so
        first = await call(urls[0], "kept = 41", "legacy", session="work")
        handle = first["session"]["handle"]
        again = await call(urls[0], "kept + 1", "legacy", session=handle)
        assert again["result"] == 42
        other = await call(urls[1], "kept + 1", "2026-07-28", session=handle)
        assert other["error"]["type"] == "WrongReplica"
        assert "lives on another codemode replica" in other["error"]["message"]
        assert "route by the caller" in other["error"]["message"]

        # a program paused for an approval lives there too: a retry at the other replica
        # (which can read the sealed request state: the replicas share the key) says so
        async with httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as http, mcp.Client(
            streamable_http_client(f"{urls[0]}/mcp", http_client=http), mode="2026-07-28",
            elicitation_callback=accept,
        ) as c:  # fmt: skip
            arguments = {"code": "await f.echo(value='x')"}
            paused = await c.session.call_tool("execute_code", arguments, allow_input_required=True)
        assert isinstance(paused, types.InputRequiredResult), paused
        answers = {k: types.ElicitResult(action="accept") for k in paused.input_requests or {}}
        async with httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as http, mcp.Client(
            streamable_http_client(f"{urls[1]}/mcp", http_client=http), mode="2026-07-28"
        ) as c:  # fmt: skip
            elsewhere = await c.session.call_tool(
                "execute_code", arguments, input_responses=answers,
                request_state=paused.request_state, allow_input_required=True,
            )  # fmt: skip
        out = elsewhere.structured_content
        assert out["error"]["type"] == "WrongReplica", out
        assert "paused on another codemode replica" in out["error"]["message"]


async def accept(context: object, params: object) -> types.ElicitResult:
    return types.ElicitResult(action="accept")
