"""The config file: which downstream servers to connect, and codemode's own settings.

Accepted shapes (the ones users already have), read from the client's own file as it is:
- Claude Desktop, Cursor, Claude Code: {"mcpServers": {"name": {"command", "args", "env",
  "cwd"}}} for stdio, {"url", "headers"} (and "type": "http" | "sse") for remote servers.
- VS Code: {"servers": {"name": {"type": "stdio" | "http" | "sse", ...}}} (also inside a
  settings.json's "mcp" key), with comments and trailing commas as VS Code allows them.
The client's other top-level keys (Claude Desktop's "preferences", ~/.claude.json's
"projects", ...) are ignored (listed in the log at debug); a top-level key that looks like
a misspelt "mcpServers" or "codemode" is still an error. Inside server entries and the
"codemode" section, unknown keys are errors that name the key path.

Strings in the servers and "codemode" sections expand variables: ${VAR}, ${env:VAR} (VS
Code's spelling), ${VAR:-default} (when VAR is unset or empty), ${VAR-default} (when unset),
${userHome}, ${workspaceFolder} (the folder a .vscode/ config belongs to, else the
config's folder) and ${pathSeparator}. A server's "envFile" (dotenv format, relative to
the workspace folder) is loaded into its environment, under its "env".
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from ._paths import config_dir
from .errors import ConfigError
from .settings import (  # noqa: F401 - the config's models, re-exported
    Approve,
    CodeModeSection,
    HttpAuthConfig,
    HttpConfig,
    IdentityPolicy,
    LimitsConfig,
    OAuthOptions,
    ServerOptions,
    SessionsConfig,
    Strict,
)

log = logging.getLogger("codemode.config")

_VAR = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SERVERS_KEYS = ("mcpServers", "servers")
IGNORED_IN_SERVER = ("dev", "autoApprove", "alwaysAllow", "description")
"""Keys other clients put in a server entry that mean nothing to codemode (VS Code's
debug settings, Cline's auto-approve lists, notes): accepted and ignored."""


_Strict = Strict


class ServerConfig(_Strict):
    """One downstream MCP server: a command to spawn (stdio) or a URL (streamable HTTP)."""

    type: Literal["stdio", "http", "streamable-http", "streamableHttp", "sse"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False
    """Skip this server (Cursor's and Cline's way to turn one off)."""
    envFile: str | None = None
    """A dotenv file whose variables join `env` (which wins); loaded when the config is."""
    # Accepted from other clients' configs and ignored (see IGNORED_IN_SERVER).
    dev: Any = None
    autoApprove: Any = None
    alwaysAllow: Any = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if self.command and self.url:
            raise ValueError("give either `command` (stdio) or `url` (http), not both")
        if not self.command and not self.url:
            raise ValueError("needs `command` (a stdio server) or `url` (a streamable HTTP server)")
        if self.type == "stdio" and not self.command:
            raise ValueError('type "stdio" needs `command`')
        if self.type not in (None, "stdio") and not self.url:
            raise ValueError(f'type "{self.type}" needs `url`')
        return self

    @property
    def transport(self) -> Literal["stdio", "http", "sse"]:
        if self.command:
            return "stdio"
        return "sse" if self.type == "sse" else "http"


class Config(_Strict):
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    codemode: CodeModeSection = Field(default_factory=CodeModeSection)
    source: str = "<memory>"

    def options(self, server: str) -> ServerOptions:
        return self.codemode.servers.get(server) or ServerOptions()

    @property
    def enabled_servers(self) -> dict[str, ServerConfig]:
        return {name: s for name, s in self.servers.items() if not s.disabled}


class _Variables:
    """Expands ${...} in one config file's strings (see the module docstring)."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.workspace = _workspace_folder(base_dir)

    def value(self, inner: str, path: str) -> str:
        where = f"{self.source}: {path}"
        if inner.startswith("env:"):
            inner = inner[4:]
        if inner == "userHome":
            return str(Path.home())
        if inner == "workspaceFolder":
            return str(self.workspace)
        if inner in ("pathSeparator", "/"):
            return os.sep
        if inner.startswith("input:"):
            raise ConfigError(
                f"{where} uses ${{{inner}}}, a value VS Code asks the user for; codemode "
                "cannot ask. Write the value in the file, or use ${env:NAME} and set NAME."
            )
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?", inner, re.S)
        if match is None:
            raise ConfigError(
                f"{where} uses ${{{inner}}}, which is not a variable codemode knows. Use "
                "${NAME}, ${env:NAME}, ${NAME:-default}, ${userHome} or ${workspaceFolder}."
            )
        name, op, default = match.groups()
        current = os.environ.get(name)
        if op == ":-" and not current:
            return default
        if op == "-" and current is None:
            return default
        if current is None:
            raise ConfigError(
                f"{where} uses ${{{name}}}, but the environment variable {name} is not set. "
                f"Set it, write the value in the file, or give a default: ${{{name}:-value}}."
            )
        return current

    def expand(self, value: Any, path: str = "") -> Any:
        if isinstance(value, str):
            return _VAR.sub(lambda m: self.value(m.group(1), path), value)
        if isinstance(value, dict):
            return {k: self.expand(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


def _workspace_folder(base_dir: Path | None) -> Path:
    if base_dir is None:
        return Path.cwd()
    return base_dir.parent if base_dir.name == ".vscode" else base_dir


def _error_path(loc: tuple[Any, ...], servers_key: str) -> str:
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i == 0 and part == "servers":
            part = servers_key
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _servers_section(data: dict[str, Any], source: str) -> tuple[str, Any, list[str]]:
    """(key, servers, ignored top-level keys) of a config, whichever client wrote it."""
    present = [k for k in SERVERS_KEYS if k in data]
    if len(present) > 1:
        raise ConfigError(f'{source}: give servers under "mcpServers" or "servers", not both.')
    nested = data.get("mcp") if not present else None
    if isinstance(nested, dict) and "servers" in nested:  # a VS Code settings.json
        key, servers = "mcp.servers", nested.get("servers")
        others = [k for k in data if k not in ("mcp", "codemode")]
    else:
        key = present[0] if present else "mcpServers"
        servers = data.get(key) or {}
        others = [k for k in data if k not in (key, "codemode")]
    suspicious = []
    for other in others:
        close = difflib.get_close_matches(other, [*SERVERS_KEYS, "codemode"], n=1, cutoff=0.75)
        if close:
            suspicious.append((other, close))
    if suspicious:
        listed = ", ".join(
            f"{k!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for k, c in suspicious
        )
        raise ConfigError(
            f'{source}: unknown top-level key(s) {listed}; expected "mcpServers" (Claude '
            'Desktop, Cursor, Claude Code) or "servers" (VS Code), and "codemode".'
        )
    return key, servers, others


def parse_config(data: Any, source: str = "<memory>", base_dir: Path | None = None) -> Config:
    """Validate an already-loaded JSON value; errors name `source`, the key path and a fix.
    `base_dir`: the config file's folder (for ${workspaceFolder} and relative envFiles)."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a JSON object like "
            '{"mcpServers": {"name": {"command": "..."}}}, not a ' + type(data).__name__
        )
    servers_key, servers, ignored = _servers_section(data, source)
    if not any(k in data for k in SERVERS_KEYS) and servers_key != "mcp.servers" and ignored:
        log.warning('%s: no servers found (no "mcpServers" or "servers" key)', source)
    if ignored:
        log.debug("%s: ignoring top-level keys of another client: %s", source, ", ".join(ignored))
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: {servers_key} must be an object of name -> server.")
    variables = _Variables(source, base_dir)
    servers = variables.expand(servers, servers_key)
    codemode = variables.expand(data.get("codemode") or {}, "codemode")
    try:
        config = Config(servers=servers, codemode=codemode, source=source)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = _error_path(tuple(err["loc"]), servers_key)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key; remove it or check its spelling (README: config reference)"
            lines.append(f"  {where}: {message}")
        raise ConfigError(f"{source}: invalid config:\n" + "\n".join(lines)) from None
    missing = sorted(set(config.codemode.servers) - set(config.servers))
    if missing:
        raise ConfigError(
            f"{source}: codemode.servers has options for {', '.join(map(repr, missing))}, "
            f"which {'is' if len(missing) == 1 else 'are'} not in {servers_key}."
        )
    with_env_files = {
        name: _load_env_file(name, server, variables.workspace, source, servers_key)
        for name, server in config.servers.items()
        if server.envFile
    }
    if with_env_files:
        config = config.model_copy(update={"servers": {**config.servers, **with_env_files}})
    return config


def _load_env_file(
    name: str, server: ServerConfig, workspace: Path, source: str, servers_key: str
) -> ServerConfig:
    from dotenv import dotenv_values

    path = Path(server.envFile or "").expanduser()
    path = path if path.is_absolute() else workspace / path
    if not path.is_file():
        raise ConfigError(
            f"{source}: {servers_key}.{name}.envFile names {path}, which does not exist. "
            "Create it, fix the path (relative paths start at the workspace folder), or "
            "remove the key."
        )
    loaded = {k: v for k, v in dotenv_values(path).items() if v is not None}
    log.debug("%s: loaded %d variable(s) for %r from %s", source, len(loaded), name, path)
    return server.model_copy(update={"env": {**loaded, **server.env}})


def parse_json_text(text: str, source: str) -> Any:
    """Strict JSON, else JSON with comments and trailing commas (as VS Code writes its
    files); a file that is neither is reported at the strict parser's line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as strict:
        import json5

        try:
            return json5.loads(text)
        except ValueError:
            raise ConfigError(
                f"{source}: not valid JSON at line {strict.lineno}, column {strict.colno}: "
                f"{strict.msg}"
            ) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file. Create it or pass --config.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror}") from None
    return parse_config(parse_json_text(text, str(file)), str(file), file.resolve().parent)


_PLACEHOLDER = re.compile(r"\s*(\$\{[^}]*\})?\s*")


def _unset(value: str | None) -> bool:
    """Blank, or a placeholder nobody expanded (an MCP Bundle setting left empty reaches
    codemode as the literal `${user_config.config_file}`)."""
    return value is None or bool(_PLACEHOLDER.fullmatch(value))


def resolve_config_path(arg: str | None) -> Path | None:
    """The config file to read: --config, else $CODEMODE_CONFIG, else the default file if
    it exists (None when there is none). A blank or unexpanded value of either counts as
    not given; a $CODEMODE_CONFIG that names a missing file is an error."""
    if not _unset(arg):
        return Path(str(arg)).expanduser()
    if arg is not None:
        log.info("--config %r is empty or an unexpanded placeholder: using the default", arg)
    named = os.environ.get("CODEMODE_CONFIG")
    default = config_dir() / "config.json"
    if not _unset(named):
        path = Path(str(named)).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"CODEMODE_CONFIG names {path}, which does not exist. Create it, point the "
                f"variable at your config file, or unset it to use {default}."
            )
        return path
    return default if default.is_file() else None


def default_config_path() -> Path:
    """Where `codemode serve` looks without --config: $CODEMODE_CONFIG, else the user config
    dir (e.g. ~/.config/codemode/config.json on Linux)."""
    override = os.environ.get("CODEMODE_CONFIG")
    if override:
        return Path(override).expanduser()
    return config_dir() / "config.json"
