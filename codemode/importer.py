"""`codemode import`: bring the servers of a client's own config into codemode's.

Reads Claude Desktop's, Cursor's, VS Code's or Claude Code's config from its documented
place (or any FILE in one of their shapes), lists the servers found, and plans two
changes: codemode's config with those servers added, and, with --replace, the client's
config with them replaced by one `codemode` entry (so the model sees each tool once,
through codemode). Nothing is written without --write; with it, every file changed is
first copied to `<file>.codemode-backup-<time>`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import parse_json_text
from .errors import ConfigError

CLIENTS = ("claude-desktop", "cursor", "vscode", "claude-code")


@dataclass
class Source:
    """One servers section of one client file."""

    client: str
    path: Path
    pointer: tuple[str, ...]
    """Where the servers object is in the file (("mcpServers",), ("projects", cwd, ...))."""
    servers: dict[str, Any]
    skipped: list[str] = field(default_factory=list)  # entries that run codemode itself


def _app_data(*parts: str) -> Path:
    """The per-user application data folder of a desktop app, by OS."""
    home = Path.home()
    if sys.platform == "darwin":
        return home.joinpath("Library", "Application Support", *parts)
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")).joinpath(*parts)
    return Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")).joinpath(*parts)


def client_files(client: str, cwd: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """Where `client` keeps MCP servers (documented locations), with the key path of the
    servers object in each file."""
    home = Path.home()
    if client == "claude-desktop":
        return [(_app_data("Claude", "claude_desktop_config.json"), ("mcpServers",))]
    if client == "cursor":
        return [
            (home / ".cursor" / "mcp.json", ("mcpServers",)),
            (cwd / ".cursor" / "mcp.json", ("mcpServers",)),
        ]
    if client == "vscode":
        return [
            (_app_data("Code", "User", "mcp.json"), ("servers",)),
            (_app_data("Code", "User", "settings.json"), ("mcp", "servers")),
            (cwd / ".vscode" / "mcp.json", ("servers",)),
        ]
    if client == "claude-code":
        return [
            (home / ".claude.json", ("mcpServers",)),
            (home / ".claude.json", ("projects", str(cwd), "mcpServers")),
            (cwd / ".mcp.json", ("mcpServers",)),
        ]
    raise ConfigError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}, or a FILE")


def _read(path: Path) -> Any:
    try:
        return parse_json_text(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None


def _dig(data: Any, pointer: tuple[str, ...]) -> Any:
    for key in pointer:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def runs_codemode(entry: Any) -> bool:
    """Whether a server entry starts codemode (importing it would make a chain)."""
    if not isinstance(entry, dict):
        return False
    words = [str(entry.get("command", "")), *map(str, entry.get("args") or [])]
    names = [Path(w).name for w in words]
    return "codemode" in names or any(
        a == "-m" and b == "codemode" for a, b in itertools.pairwise(names)
    )


def find_sources(origin: str | None, cwd: Path) -> list[Source]:
    """The servers sections to import: of one client, of a FILE, or of the one client
    whose files exist (an error naming them when several do)."""
    if origin is not None and origin not in CLIENTS:
        path = Path(origin).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such file (--from takes {', '.join(CLIENTS)} or FILE)")
        data = _read(path)
        pointers = [("mcpServers",), ("servers",), ("mcp", "servers")]
        if isinstance(data, dict) and isinstance(data.get("projects"), dict):
            pointers.append(("projects", str(cwd), "mcpServers"))
        found = [_source("file", path, p, data) for p in pointers if _dig(data, p)]
        if not found:
            raise ConfigError(f"{path}: no MCP servers in it (no mcpServers or servers)")
        return found
    clients = [origin] if origin else list(CLIENTS)
    found = []
    for client in clients:
        for path, pointer in client_files(client, cwd):
            if path.is_file():
                servers = _dig(_read(path), pointer)
                if isinstance(servers, dict) and servers:
                    found.append(_source(client, path, pointer, _read(path)))
    if not found:
        places = [str(p) for c in clients for p, _ in client_files(c, cwd)]
        raise ConfigError(
            "found no MCP servers in any client's config; looked in:\n  "
            + "\n  ".join(dict.fromkeys(places))
            + "\nPass --from FILE to import from another file."
        )
    if origin is None and len({s.client for s in found}) > 1:
        listed = "\n  ".join(f"{s.client}: {s.path}" for s in found)
        raise ConfigError(
            f"servers are configured in several clients:\n  {listed}\n"
            f"Pass --from {'|'.join(sorted({s.client for s in found}))} to pick one."
        )
    return found


def _source(client: str, path: Path, pointer: tuple[str, ...], data: Any) -> Source:
    servers = dict(_dig(data, pointer) or {})
    skipped = [name for name, entry in servers.items() if runs_codemode(entry)]
    for name in skipped:
        del servers[name]
    return Source(client, path, pointer, servers, skipped)


def codemode_command() -> list[str]:
    """How a client should start this codemode: an absolute path, since GUI clients
    often do not see the shell's PATH."""
    beside = Path(sys.executable).with_name("codemode")
    found = beside if beside.is_file() else shutil.which("codemode")
    return [str(found)] if found else [sys.executable, "-m", "codemode"]


def _describe(entry: Any) -> str:
    if not isinstance(entry, dict):
        return repr(entry)
    if entry.get("url"):
        return f"{entry.get('type') or 'http'}: {entry['url']}"
    return " ".join([str(entry.get("command", "")), *map(str, entry.get("args") or [])])


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.codemode-backup-{stamp}")
    shutil.copy2(path, backup)
    return backup


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.codemode-tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if path.exists():
        shutil.copymode(path, tmp)
    else:
        os.chmod(tmp, 0o600)  # a new config may hold tokens: owner-only
    os.replace(tmp, path)


def run_import(
    origin: str | None, target: Path, write: bool, replace: bool, cwd: Path | None = None
) -> int:
    """The `codemode import` command; prints the plan (and what was done) on stdout."""
    cwd = cwd or Path.cwd()
    sources = find_sources(origin, cwd)
    say = print
    existing = _read(target) if target.is_file() else {}
    if not isinstance(existing, dict):
        raise ConfigError(f"{target}: the top level is not a JSON object; fix it first")
    key = "servers" if "servers" in existing and "mcpServers" not in existing else "mcpServers"
    ours = dict(existing.get(key) or {})
    added, kept = [], []
    for source in sources:
        say(f"{source.client}: {source.path} ({'.'.join(source.pointer)})")
        for name, entry in source.servers.items():
            say(f"  {name}: {_describe(entry)}")
            if name in ours:
                kept.append(name)
            else:
                ours[name] = entry
                added.append(name)
        for name in source.skipped:
            say(f"  {name}: skipped (it runs codemode itself)")
    merged = {**existing, key: ours}
    say("")
    say(
        f"codemode's config {target}: add {', '.join(added) or 'nothing'}"
        + (f"; keep its own {', '.join(kept)}" if kept else "")
    )
    if replace:
        command = codemode_command()
        entry = {"command": command[0], "args": [*command[1:], "serve", "--config", str(target)]}
        for source in sources:
            say(
                f"{source.path}: replace {', '.join(source.servers) or 'nothing'} with one "
                f"`codemode` entry: {' '.join([entry['command'], *entry['args']])}"
            )
    if not write:
        also = "" if replace else " (and --replace to point the client at codemode)"
        say(f"\nDry run: nothing was written. Run again with --write to do it{also}.")
        return 0
    if target.exists():
        say(f"backed up {target} to {_backup(target)}")
    _write_json(target, merged)
    say(f"wrote {target}")
    if replace:
        for path in dict.fromkeys(s.path for s in sources):
            data = _read(path)
            for source in (s for s in sources if s.path == path):
                section = _dig(data, source.pointer)
                for name in source.servers:
                    section.pop(name, None)
                vscode = source.pointer[-1] == "servers"
                section["codemode"] = {**({"type": "stdio"} if vscode else {}), **entry}
            say(f"backed up {path} to {_backup(path)}")
            _write_json(path, data)
            say(f"wrote {path} (comments in it, if any, are only in the backup)")
        say("Restart the client to use codemode in place of those servers.")
    return 0
