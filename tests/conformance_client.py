"""codemode as the client under test of the official MCP conformance suite.

    conformance client --command "exec python tests/conformance_client.py" --suite auth

The suite starts a server for each scenario and runs this with the server's URL as the
last argument, the scenario in $MCP_CONFORMANCE_SCENARIO and, for some, more in
$MCP_CONFORMANCE_CONTEXT (JSON: a pre-registered client's id and secret). This points a
codemode config at the URL and, for the auth scenarios, signs in first with `codemode
login` (headless: $BROWSER is a "browser" that follows the authorization server's
redirect back to codemode's listener), then runs a program through `codemode run`
(with --sign-in, so a server that asks for more scopes mid-way gets a new sign-in).
Each run keeps its tokens in a folder of its own: the suite runs scenarios at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
CIMD_URL = "https://conformance-test.local/client-metadata.json"
"""The client ID metadata document the suite's authorization servers accept as a
client_id (used only where one advertises that it supports them)."""

PROGRAMS = {
    "initialize": "len(tools.search(''))",
    "tools_call": "await conf.add_numbers(a=5, b=3)",
    "sse-retry": "await conf.test_reconnection()",
}
AUTH_PROGRAM = "await call_tool('conf', 'test-tool')"


def main() -> int:
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    oauth: dict[str, object] = {"client_metadata_url": CIMD_URL}
    if context.get("client_id"):
        oauth["client_id"] = context["client_id"]
        if context.get("client_secret"):
            oauth["client_secret"] = context["client_secret"]
    with tempfile.TemporaryDirectory(prefix="codemode-conformance-") as tmp:
        home = Path(tmp)
        config = home / "config.json"
        config.write_text(json.dumps({
            "mcpServers": {"conf": {"type": "http", "url": url}},
            "codemode": {"servers": {"conf": {"oauth": oauth}}},
        }))  # fmt: skip
        env = {
            **os.environ,
            "CODEMODE_DATA_DIR": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "BROWSER": f"{sys.executable} {HERE / 'servers' / 'browser.py'} %s",
        }
        base = [sys.executable, "-m", "codemode"]
        if scenario.startswith("auth/"):
            login = subprocess.run(
                [*base, "login", "conf", "--config", str(config)], env=env, stdin=subprocess.DEVNULL
            )
            if login.returncode != 0:
                return login.returncode
        program = PROGRAMS.get(scenario, AUTH_PROGRAM)
        run = subprocess.run(
            [*base, "run", "--sign-in", "--config", str(config), "-c", program],
            env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
