"""The config file: which downstream servers to connect, and codemode's own settings.

Accepted shapes (the ones users already have):
- Claude Desktop: {"mcpServers": {"name": {"command", "args", "env", "cwd"}}} for stdio,
  {"url", "headers"} for streamable HTTP.
- VS Code: {"servers": {"name": {"type": "stdio" | "http", ...}}}.
A "codemode" section holds limits and per-server options. "${VAR}" in any string expands
from the environment. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._paths import config_dir
from .errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    """One downstream MCP server: a command to spawn (stdio) or a URL (streamable HTTP)."""

    type: Literal["stdio", "http", "streamable-http"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Accepted from other clients' configs and ignored by codemode, which would otherwise
    # reject configs users already have.
    disabled: bool = False
    envFile: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if self.command and self.url:
            raise ValueError("give either `command` (stdio) or `url` (http), not both")
        if not self.command and not self.url:
            raise ValueError("needs `command` (a stdio server) or `url` (a streamable HTTP server)")
        if self.type == "stdio" and not self.command:
            raise ValueError('type "stdio" needs `command`')
        if self.type in ("http", "streamable-http") and not self.url:
            raise ValueError(f'type "{self.type}" needs `url`')
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"


class ServerOptions(_Strict):
    """codemode's options for one server, under "codemode" -> "servers" -> name."""

    namespace: str | None = None
    """The name the code uses for this server's namespace (default: the config key)."""
    call_timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    allow: list[str] | None = None
    """Only these tools are exposed (fnmatch patterns of the tools' MCP names)."""
    deny: list[str] = Field(default_factory=list)
    """These tools are never exposed (fnmatch patterns)."""
    read_only: bool | None = None
    """Expose only tools the server marks `readOnlyHint` (default: codemode.read_only)."""
    max_calls_per_minute: int | None = Field(default=None, gt=0)
    """Calls to this server allowed in any 60 s, across executions."""


class LimitsConfig(_Strict):
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    max_tool_calls: int | None = Field(default=None, gt=0)
    max_concurrent_calls: int | None = Field(default=None, gt=0)
    max_stdout_bytes: int | None = Field(default=None, gt=0)
    max_result_bytes: int | None = Field(default=None, gt=0)
    max_code_bytes: int | None = Field(default=None, gt=0)

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CodeModeSection(_Strict):
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    servers: dict[str, ServerOptions] = Field(default_factory=dict)
    workers: int | None = Field(default=None, gt=0, le=64)
    description_budget_bytes: int = Field(default=8192, gt=0)
    read_only: bool = False
    """Expose only tools marked `readOnlyHint`, on every server without its own setting."""
    max_tool_calls_per_minute: int | None = Field(default=None, gt=0)
    """Tool calls allowed in any 60 s, across executions and servers."""
    learn_shapes: bool = True
    """Record the shape of results of tools without an outputSchema (tool_adapters/_shapes)."""


class Config(_Strict):
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    codemode: CodeModeSection = Field(default_factory=CodeModeSection)
    source: str = "<memory>"

    def options(self, server: str) -> ServerOptions:
        return self.codemode.servers.get(server) or ServerOptions()

    @property
    def enabled_servers(self) -> dict[str, ServerConfig]:
        return {name: s for name, s in self.servers.items() if not s.disabled}


def _expand(value: Any, path: str, source: str) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"{source}: {path} uses ${{{name}}}, but the environment variable {name} "
                    "is not set. Set it, or write the value in the file."
                )
            return os.environ[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else k, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    return value


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


def parse_config(data: Any, source: str = "<memory>") -> Config:
    """Validate an already-loaded JSON value; errors name `source`, the key path and a fix."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a JSON object like "
            '{"mcpServers": {"name": {"command": "..."}}}, not a ' + type(data).__name__
        )
    data = _expand(data, "", source)
    keys = {"mcpServers", "servers", "codemode"}
    unknown = sorted(set(data) - keys - {"$schema", "inputs"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; expected "
            '"mcpServers" (Claude Desktop style) or "servers" (VS Code style), and "codemode".'
        )
    if "mcpServers" in data and "servers" in data:
        raise ConfigError(f'{source}: give servers under "mcpServers" or "servers", not both.')
    servers_key = "servers" if "servers" in data else "mcpServers"
    servers = data.get(servers_key) or {}
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: {servers_key} must be an object of name -> server.")
    try:
        config = Config(servers=servers, codemode=data.get("codemode") or {}, source=source)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = _error_path(tuple(err["loc"]), servers_key)
            message = err["msg"]
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
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file. Create it or pass --config.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_config(data, str(file))


def default_config_path() -> Path:
    """Where `codemode serve` looks without --config: $CODEMODE_CONFIG, else the user config
    dir (e.g. ~/.config/codemode/config.json on Linux)."""
    override = os.environ.get("CODEMODE_CONFIG")
    if override:
        return Path(override).expanduser()
    return config_dir() / "config.json"
