"""First use after install: `codemode serve` on an empty cache, to its first answer.

    python benchmarks/first_use.py [--skip-wheel | --wheel-only] [--repeat N] [--tzdata V]

Builds a wheel of this checkout (`pip wheel`: its build hook puts the sandbox's
component in the package, and its code compiled for this architecture, see setup.py),
installs it into a folder of its own, and starts `codemode serve` from it with an empty
cache dir; an MCP client (the official SDK, over stdio) calls `execute_code` as soon as
the server has initialized, and the time from starting the process to that call's answer
is the figure. The same is measured from the source tree (an editable install has
neither inside: the first start makes both), and each both with no downstream servers
and with the demo servers. The server's progress lines say which code answered (the
wheel's; or a baseline compile, then the optimized one). `--repeat N` runs each row N
times, interleaved; the last line, one JSON object, has each row's median and the share
of its runs within the target. `--tzdata V` installs tzdata V beside the wheel (pip keeps
any tzdata that satisfies the requirement, so a user's is often not the wheel build's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from codemode.demo.workflows import demo_servers  # noqa: E402

TARGET_S = 5.0
PROGRAM = "sum(range(10))"


def log(message: str) -> None:
    print(f"[first_use] {message}", file=sys.stderr, flush=True)


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "-q"], check=True, stdout=subprocess.DEVNULL
    )


def build_wheel(tmp: Path, tzdata: str | None) -> tuple[Path, float]:
    """A wheel of this checkout installed into tmp/site (with tzdata `tzdata` beside it,
    if given); (site folder, build seconds)."""
    started = time.monotonic()
    pip("wheel", "--no-deps", "-w", str(tmp / "wheel"), str(ROOT))
    built = time.monotonic() - started
    wheel = next((tmp / "wheel").glob("codemode-*.whl"))
    pip("install", "--no-deps", "--target", str(tmp / "site"), str(wheel))
    if tzdata:  # first on the server's path, so it is the tzdata the server finds
        pip("install", "--no-deps", "--target", str(tmp / "site"), f"tzdata=={tzdata}")
    return tmp / "site", built


async def first_answer(
    site: Path | None, cache: Path, config: Path, errlog: Path
) -> dict[str, Any]:
    """Start `codemode serve` (from `site`, else this checkout) and time its first answer."""
    path = str(site or ROOT)
    launcher = (
        f"import sys; sys.path.insert(0, {path!r}); from codemode.cli import main; sys.exit(main())"
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", launcher, "serve", "--config", str(config)],
        env={**os.environ, "CODEMODE_CACHE_DIR": str(cache)},
        cwd=str(cache.parent),  # not this checkout: nothing may be imported from it by chance
    )
    started = time.monotonic()
    with errlog.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                initialized = time.monotonic() - started
                result = await session.call_tool("execute_code", {"code": PROGRAM})
                answered = time.monotonic() - started
                text = "\n".join(getattr(c, "text", "") for c in result.content)
                if result.is_error or "45" not in text:
                    raise RuntimeError(f"the first program failed: {text[:500]}")
                optimized = None
                if "shipped with the package; no compile" in errlog.read_text():
                    optimized = answered  # the wheel's compiled code is the optimized code
                for _ in range(0 if optimized else 600):  # compiled in the background
                    if "now runs optimized code" in errlog.read_text():
                        optimized = time.monotonic() - started
                        break
                    await asyncio.sleep(0.1)
    lines = errlog.read_text().splitlines()
    return {
        "initialized_s": round(initialized, 2),
        "first_answer_s": round(answered, 2),
        "optimized_ready_s": round(optimized, 2) if optimized else None,
        "steps": [line.split("codemode: ", 1)[-1] for line in lines if "codemode: " in line][:8],
    }


def write_config(path: Path, with_servers: bool) -> Path:
    servers = demo_servers(sys.executable, 0, 20) if with_servers else {}
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


async def main(
    skip_wheel: bool, wheel_only: bool, repeat: int, tzdata: str | None = None
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="codemode-first-use-"))
    rows: dict[str, Any] = {}
    site = None
    if not skip_wheel:
        log("building a wheel of this checkout (its build hook makes and compiles the sandbox)")
        site, built_s = build_wheel(tmp, tzdata)
        rows["wheel_build_s"] = round(built_s, 1)
    sources = (["wheel"] if site else []) + ([] if wheel_only and site else ["source tree"])
    runs = 0
    for _ in range(repeat):  # rows interleaved, so that a slow minute is shared by all
        for source in sources:
            for servers in (False, True):
                label = f"{source}, {'demo servers' if servers else 'no servers'}"
                runs += 1
                cache = tmp / f"cache-{runs}"
                config = write_config(tmp / f"config-{runs}.json", servers)
                log(f"{label}: serve on an empty cache")
                row = await first_answer(
                    site if source == "wheel" else None, cache, config, tmp / f"err-{runs}.log"
                )
                log(f"{label}: {row}")
                rows.setdefault(label, []).append(row)
    return rows


def shown(values: list[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v} s" for v in values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-wheel", action="store_true", help="the source tree only")
    parser.add_argument("--wheel-only", action="store_true", help="the wheel only")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row (default 1)")
    parser.add_argument("--tzdata", metavar="V", help="install tzdata V beside the wheel")
    args = parser.parse_args()
    rows = asyncio.run(main(args.skip_wheel, args.wheel_only, max(1, args.repeat), args.tzdata))
    print("| install | servers | initialized | first answer | optimized code from |")
    print("|---|---|---|---|---|")
    figures: dict[str, Any] = {}
    for label, runs in rows.items():
        if isinstance(runs, list):
            source, servers = label.split(", ")
            answers = [r["first_answer_s"] for r in runs]
            print(
                f"| {source} | {servers} | {shown([r['initialized_s'] for r in runs])} "
                f"| **{shown(answers)}** | {shown([r['optimized_ready_s'] for r in runs])} |"
            )
            key = label.replace(", ", "_").replace(" ", "_")
            figures[key] = round(statistics.median(answers), 2)  # the median of the runs
            figures[f"{key}_within_target"] = sum(a <= TARGET_S for a in answers) / len(answers)
    figures["target_s"] = TARGET_S
    figures["runs"] = max(1, args.repeat)
    figures["wheel_build_s"] = rows.get("wheel_build_s")
    figures["tzdata_beside_the_wheel"] = args.tzdata
    print(json.dumps(figures))
