"""The `codemode` command line. Everything but a command's own output goes to stderr."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from . import __version__


def _cmd_build(args: argparse.Namespace) -> int:
    from .wasm_runtime import ensure_built

    artifact = ensure_built(force=args.force)
    state = f"built in {artifact.build_s:.1f} s" if artifact.built_now else "already built"
    print(f"sandbox {state}: {artifact.compiled}", file=sys.stderr)
    return 0


def _read_code(args: argparse.Namespace) -> str:
    if args.code is not None:
        return args.code
    if args.file == "-":
        return sys.stdin.read()
    with open(args.file, encoding="utf-8") as f:
        return f.read()


async def _run(code: str, limits: dict[str, float]) -> int:
    from .wasm_runtime import Limits, SandboxPool

    async with SandboxPool(size=1, limits=Limits().replace(**limits)) as pool:
        result = await pool.execute(code)
    if result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    if result.error is not None:
        sys.stderr.write(result.error.traceback or "")
        print(f"{result.error.type}: {result.error.message}", file=sys.stderr)
    else:
        print(json.dumps(result.result, indent=2, ensure_ascii=False))
    s = result.stats
    print(
        f"[{s.duration_ms:.1f} ms, {s.tool_calls} tool calls, {s.crossings} crossings, "
        f"{s.bytes_returned} bytes returned]",
        file=sys.stderr,
    )
    return 0 if result.ok else 1


def _cmd_run(args: argparse.Namespace) -> int:
    limits = {"timeout_s": args.timeout} if args.timeout else {}
    return asyncio.run(_run(_read_code(args), limits))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codemode", description="Run Python programs that call MCP tools, in a wasm sandbox."
    )
    parser.add_argument("--version", action="version", version=f"codemode {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser(
        "build", help="build and compile the sandbox now (progress on stderr)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    build.set_defaults(handler=_cmd_build)

    run = commands.add_parser("run", help="run a program in the sandbox and print its result")
    run.add_argument("file", nargs="?", default="-", help="a .py file, or - for stdin")
    run.add_argument("-c", "--code", help="the program as a string")
    run.add_argument("--timeout", type=float, help="timeout in seconds (default 30)")
    run.set_defaults(handler=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
