"""The `codemode` command line.

A command's own output goes to stdout; logs and progress go to stderr. `serve` on stdio
writes nothing but MCP messages to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._chain import chain_refusal
from .config import Config, default_config_path, load_config, resolve_config_path
from .errors import CodeModeError, ConfigError

STARTS_SERVERS = frozenset({"serve", "run", "tools", "doctor", "demo"})
"""Commands that start downstream servers: they refuse to run under codemode itself."""


def _load(args: argparse.Namespace) -> tuple[Config, str | None]:
    """The config named by --config, else $CODEMODE_CONFIG, else the default file, else an
    empty config plus a hint (for the tool description) saying where to put one."""
    path = resolve_config_path(args.config)
    if path is not None:
        return load_config(path), None
    hint = (
        f"No config file was found at {default_config_path()}; create it (README: "
        "configuration) or start codemode with --config FILE."
    )
    return Config(source="<none>"), hint


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- serve -----------------------------------------------------------------------------


def _build_ahead() -> None:
    """On an empty cache, start the sandbox's first compile before the server's imports
    (~1 s: the MCP SDK), which it need not wait for (`_build.build_ahead`)."""
    from .wasm_runtime import build_ahead

    build_ahead()


def _cmd_serve(args: argparse.Namespace) -> int:
    http_only = [
        flag for flag, value in (
            ("--auth-tokens", args.auth_tokens), ("--auth-issuer", args.auth_issuer),
            ("--no-auth", args.no_auth), ("--allowed-host", args.allowed_host),
            ("--stateless", args.stateless),
        ) if value
    ]  # fmt: skip
    if args.transport == "stdio" and http_only:
        raise ConfigError(f"{', '.join(http_only)} only mean something with --transport http")
    config, hint = _load(args)
    _build_ahead()
    from .server import Engine, serve

    logging.getLogger("codemode").info(
        "config: %s (%d servers)", config.source, len(config.enabled_servers)
    )
    if args.transport == "stdio" and sys.stdin.isatty():
        print(
            "codemode serve: waiting for an MCP client on stdin (this is a stdio MCP server: "
            "add `codemode serve` to your client's config, README: install). To try it by "
            "hand: `codemode tools` shows what the model sees, `codemode run -c 'CODE'` runs "
            "a program. Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )

    from .server import HttpOptions

    http = HttpOptions(
        config=config.codemode.http,
        tokens_file=args.auth_tokens,
        issuer=args.auth_issuer,
        audience=args.auth_audience,
        no_auth=args.no_auth,
        allowed_hosts=list(args.allowed_host or []),
        resource_url=args.public_url,
        stateless=args.stateless,
    )

    async def main() -> None:
        await serve(Engine(config, hint), args.transport, args.host, args.port, http)

    asyncio.run(main())
    return 0


# -- run -------------------------------------------------------------------------------


def _read_code(args: argparse.Namespace) -> str:
    if args.code is not None:
        if args.file not in (None, "-"):
            raise ConfigError("give the program as a FILE or with -c CODE, not both")
        return args.code
    if args.file in (None, "-"):
        if sys.stdin.isatty():
            raise ConfigError("no program given: pass a FILE, -c CODE, or pipe it on stdin")
        return sys.stdin.read()
    try:
        return Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read the program: {exc.strerror}") from None


def _cmd_run(args: argparse.Namespace) -> int:
    code = _read_code(args)
    config, _ = _load(args)
    _build_ahead()
    from .server import Engine, error_text, notes, structured
    from .wasm_runtime import Limits

    limits = Limits().replace(**config.codemode.limits.overrides())
    if args.timeout is not None:
        limits = limits.replace(timeout_s=args.timeout)

    async def main() -> int:
        async with Engine(config, limits=limits, workers=1, sign_in=args.sign_in) as engine:
            for name, error in (await engine.servers_ready()).items():
                if error is not None:
                    print(f"codemode: server {name!r} is not available: {error}", file=sys.stderr)
            result = await engine.execute(code)
        if args.json:
            print(json.dumps(structured(result), indent=2, ensure_ascii=False))
            return 0 if result.ok else 1
        if result.stdout:
            sys.stdout.write(
                result.stdout if result.stdout.endswith("\n") else result.stdout + "\n"
            )
        if result.error is not None:
            print(error_text(result.error), file=sys.stderr)
        elif result.result is not None or not result.stdout:
            print(json.dumps(result.result, indent=2, ensure_ascii=False))
        for note in notes(result):
            print(f"note: {note}", file=sys.stderr)
        s = result.stats
        print(
            f"[{s.duration_ms:.1f} ms, {s.tool_calls} tool calls, {s.crossings} crossings, "
            f"{s.bytes_from_tools:,} bytes from tools, {s.bytes_returned:,} bytes returned]",
            file=sys.stderr,
        )
        return 0 if result.ok else 1

    return asyncio.run(main())


# -- tools -----------------------------------------------------------------------------


def _cmd_tools(args: argparse.Namespace) -> int:
    from .server import Engine

    config, hint = _load(args)

    async def main() -> int:
        async with Engine(config, hint, sandbox=False) as engine:
            status = await engine.servers_ready()
            failed = {name: error for name, error in status.items() if error is not None}
            for name, error in failed.items():
                print(f"codemode: server {name!r} is not available: {error}", file=sys.stderr)
            text = engine.stubs() if args.stubs else engine.description()
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            return 1 if failed else 0

    return asyncio.run(main())


# -- build -----------------------------------------------------------------------------


def _cmd_build(args: argparse.Namespace) -> int:
    from .wasm_runtime import ensure_built

    artifact = ensure_built(force=args.force)
    state = f"built in {artifact.build_s:.1f} s" if artifact.built_now else "already built"
    if artifact.shipped:
        state = "copied from the package, which ships it compiled"
    if artifact.in_place:
        state = "run from the package where it is (the cache cannot be written)"
    print(f"sandbox {state}: {artifact.compiled}", file=sys.stderr)
    from .wasm_runtime._native import build_now

    print(build_now(), file=sys.stderr)
    return 0


# -- import ------------------------------------------------------------------------------


def _cmd_import(args: argparse.Namespace) -> int:
    from .importer import run_import

    target = Path(args.config).expanduser() if args.config else default_config_path()
    if args.replace and not args.write:
        print("codemode: --replace shows its plan; add --write to do it", file=sys.stderr)
    return run_import(args.origin, target, args.write, args.replace)


# -- login / logout ----------------------------------------------------------------------


def _cmd_login(args: argparse.Namespace) -> int:
    from .login import login

    config, _ = _load(args)
    message = asyncio.run(login(config, args.name, not args.no_browser, args.timeout))
    print(message)
    return 0


def _cmd_logout(args: argparse.Namespace) -> int:
    from .login import logout

    config, _ = _load(args)
    print(logout(config, args.name))
    return 0


# -- doctor / demo -----------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

    return asyncio.run(doctor(args.config))


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import demo

    return asyncio.run(demo(args.latency_ms, args.team_size, args.summary))


# -- the parser ------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codemode",
        description="An MCP server whose one tool runs Python programs that call all your "
        "other MCP servers' tools, in a WebAssembly sandbox.",
    )
    parser.add_argument("--version", action="version", version=f"codemode {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = f"the config file (default: $CODEMODE_CONFIG, else {default_config_path()})"

    serve = commands.add_parser("serve", help="run the MCP server (stdio unless --transport http)")
    serve.add_argument("--config", metavar="FILE", help=config_help)
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address for --transport http (default 127.0.0.1: this machine only)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port for --transport http")
    serve.add_argument(
        "--auth-tokens",
        metavar="FILE",
        help="accept these bearer tokens (one per line, or name:<sha256 hex>; re-read when "
        "it changes); needed to serve off loopback",
    )
    serve.add_argument(
        "--auth-issuer",
        metavar="URL",
        help="accept access tokens (JWTs) of this OAuth authorization server",
    )
    serve.add_argument("--auth-audience", metavar="AUD", help="the audience those tokens carry")
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the /mcp address clients use (for the protected resource metadata; "
        "default http://HOST:PORT/mcp)",
    )
    serve.add_argument(
        "--stateless",
        action="store_true",
        help="serve every client statelessly, so any replica answers any request "
        "(sessions then travel by handle)",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="serve off loopback with no auth (a proxy in front authenticates)",
    )
    serve.add_argument(
        "--allowed-host", action="append", metavar="HOST",
        help="a Host header to accept (repeat; host, host:port, host:*), against DNS rebinding",
    )  # fmt: skip
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level",
    )
    serve.set_defaults(handler=_cmd_serve)

    run = commands.add_parser("run", help="run a program against the configured servers")
    run.add_argument("file", nargs="?", help="a .py file, or - for stdin")
    run.add_argument("-c", "--code", help="the program as a string")
    run.add_argument("--config", metavar="FILE", help=config_help)
    run.add_argument("--timeout", type=_positive, help="timeout in seconds (default: the config's)")
    run.add_argument(
        "--json", action="store_true", help="print the structured result execute_code would return"
    )
    run.add_argument(
        "--sign-in",
        action="store_true",
        help="sign in (in the browser) to a remote server that asks for it, as `codemode "
        "login` does, instead of failing its calls",
    )
    run.set_defaults(handler=_cmd_run)

    tools = commands.add_parser("tools", help="print the tool description the model sees")
    tools.add_argument("--config", metavar="FILE", help=config_help)
    tools.add_argument("--stubs", action="store_true", help="print full .pyi-style stubs instead")
    tools.set_defaults(handler=_cmd_tools)

    build = commands.add_parser("build", help="build and compile the sandbox now")
    build.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    build.set_defaults(handler=_cmd_build)

    importing = commands.add_parser(
        "import",
        help="bring the servers of a client's config into codemode's (a dry run unless --write)",
    )
    importing.add_argument(
        "--from",
        dest="origin",
        metavar="CLIENT|FILE",
        help="claude-desktop, cursor, vscode, claude-code, or a config FILE (default: the "
        "one client whose config has servers)",
    )
    importing.add_argument(
        "--config",
        metavar="FILE",
        help=f"codemode's config to write (default: {default_config_path()})",
    )
    importing.add_argument("--write", action="store_true", help="write the files (backups first)")
    importing.add_argument(
        "--replace",
        action="store_true",
        help="also rewrite the client's config to run codemode in place of those servers",
    )
    importing.set_defaults(handler=_cmd_import)

    login = commands.add_parser("login", help="sign in to a remote server (OAuth, in the browser)")
    login.add_argument("name", help="the server's name in the config")
    login.add_argument("--config", metavar="FILE", help=config_help)
    login.add_argument(
        "--no-browser", action="store_true", help="print the sign-in address; do not open it"
    )
    login.add_argument(
        "--timeout", type=_positive, default=300.0,
        help="how long to wait for the browser to come back (default 300 s)",
    )  # fmt: skip
    login.set_defaults(handler=_cmd_login)

    logout = commands.add_parser("logout", help="forget a remote server's sign-in tokens")
    logout.add_argument("name", help="the server's name in the config")
    logout.add_argument("--config", metavar="FILE", help=config_help)
    logout.set_defaults(handler=_cmd_logout)

    doctor = commands.add_parser("doctor", help="check the config, each server and the sandbox")
    doctor.add_argument("--config", metavar="FILE", help=config_help)
    doctor.set_defaults(handler=_cmd_doctor)

    demo = commands.add_parser("demo", help="run the product brief's workflows, with figures")
    demo.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="delay the demo servers add to every tool call (default 20)",
    )
    demo.add_argument("--team-size", type=int, default=20, help="team members (default 20)")
    demo.add_argument("--summary", metavar="FILE", help="also write the figures as JSON here")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "log_level", "warning"))
    if args.command in ("serve", "run"):
        from . import telemetry

        telemetry.setup()
    refusal = chain_refusal() if args.command in STARTS_SERVERS else None
    if refusal is not None:
        print(f"codemode: {refusal}", file=sys.stderr, flush=True)
        return 2
    try:
        return int(args.handler(args))
    except CodeModeError as exc:
        print(f"codemode: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
