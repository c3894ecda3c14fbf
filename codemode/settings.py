"""The models of the config's "codemode" section: limits, per-server options, sessions,
approvals, and the HTTP service's settings (auth, hosts, drain, per-identity policy).
`config.py` reads the file and re-exports these."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _approve_value(value: Any) -> str | tuple[str, ...] | None:
    if value is None or value in ("writes", "all"):
        return value
    if isinstance(value, list) and all(isinstance(p, str) and p for p in value):
        return tuple(value)
    raise ValueError(
        'must be "writes" (tools not marked readOnlyHint), "all", or a list of tool-name '
        f'patterns such as ["delete_*", "send_email"]; got {json.dumps(value)[:80]}'
    )


Approve = Annotated[
    Literal["writes", "all"] | tuple[str, ...] | None, PlainValidator(_approve_value)
]
"""Which calls a person approves before they are sent: fnmatch patterns of MCP tool
names, "writes" (every tool the server does not mark `readOnlyHint`), or "all"."""


class OAuthOptions(Strict):
    """How codemode signs in to a remote server that asks for OAuth (`codemode login`).
    With none of these set, the client registers itself (dynamic client registration)."""

    client_id: str | None = None
    """A client registered with the authorization server beforehand."""
    client_secret: str | None = None
    """Its secret, for a confidential client (use ${VAR} to keep it out of the file)."""
    scope: str | None = None
    """Scopes to ask for (space-separated); default: what the server says it needs."""
    redirect_port: int | None = Field(default=None, gt=0, lt=65536)
    """The 127.0.0.1 port of the sign-in redirect (a pre-registered client needs the one
    it was registered with); default: any free port."""
    client_metadata_url: str | None = None
    """An https URL of a client ID metadata document, used as the client_id where the
    authorization server supports that (instead of registering)."""
    token_endpoint_auth_method: (
        Literal["none", "client_secret_post", "client_secret_basic"] | None
    ) = None
    """How a configured client authenticates at the token endpoint (default: basic with
    a secret, none without)."""


class ServerOptions(Strict):
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
    approve: Approve = None
    """Calls a person approves first (default: codemode.approve); `[]` asks for none."""
    oauth: OAuthOptions = Field(default_factory=OAuthOptions)
    """OAuth sign-in settings of a remote server (`codemode login NAME`)."""
    protocol: Literal["auto", "legacy", "2026-07-28"] = "auto"
    """The MCP era to speak: "auto" tries the handshake (2025-11-25) first and falls back
    to 2026-07-28 for a server that speaks only that."""


class LimitsConfig(Strict):
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    max_tool_calls: int | None = Field(default=None, gt=0)
    max_concurrent_calls: int | None = Field(default=None, gt=0)
    max_stdout_bytes: int | None = Field(default=None, gt=0)
    max_result_bytes: int | None = Field(default=None, gt=0)
    max_code_bytes: int | None = Field(default=None, gt=0)

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SessionsConfig(Strict):
    """Calls of execute_code with a `session` keep their globals (server/_sessions.py)."""

    max: int = Field(default=8, gt=0, le=64)
    """Live sessions at most; past it, the least recently used is closed."""
    idle_expiry_s: float = Field(default=600.0, gt=0)
    """A session with no call for this long is closed."""


class HttpAuthConfig(Strict):
    """Who may call codemode over HTTP (`codemode serve --transport http`)."""

    tokens_file: str | None = None
    """Bearer tokens, one per line (`#` comments), or `name:<sha256 hex of the token>`
    lines so the file holds no secret; re-read when it changes (--auth-tokens)."""
    issuer: str | None = None
    """An OAuth authorization server whose access tokens (JWTs, checked against its JWKS)
    are accepted (--auth-issuer)."""
    audience: str | None = None
    """The audience those tokens must carry (--auth-audience)."""
    jwks_url: str | None = None
    """Where the issuer's keys are (default: from its metadata)."""
    introspection_url: str | None = None
    """Check opaque tokens by RFC 7662 introspection instead of as JWTs."""
    introspection_client_id: str | None = None
    introspection_client_secret: str | None = None
    required_scopes: list[str] = Field(default_factory=list)
    """Scopes every access token must have."""
    identity_claim: str = "sub"
    """The JWT claim (or introspection field) that names the caller."""


class HttpConfig(Strict):
    auth: HttpAuthConfig = Field(default_factory=HttpAuthConfig)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host headers accepted off loopback (`host`, `host:port` or `host:*`) against DNS
    rebinding (--allowed-host); default: the address bound, when it is not a wildcard."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Origin headers accepted (default: http:// and https:// of the allowed hosts)."""
    stateless: bool = False
    """Serve handshake-era clients statelessly too (the SDK's stateless mode), so any
    replica can answer any request; sessions are then found by their handles (--stateless)."""
    state_key: str | None = Field(default=None, min_length=32)
    """A secret every replica shares (use ${VAR}): the seal of paused approvals' request
    state, so the replica a retry reaches can read it (and say where the program is)."""
    drain_s: float = Field(default=30.0, ge=0, le=3600)
    """On SIGTERM, how long running executions may go on before they are stopped."""


class IdentityPolicy(Strict):
    """What one caller (a token's name, a JWT's subject) may do."""

    servers: list[str] | None = None
    """The servers it may use (fnmatch patterns of config names); default: all."""
    allow: dict[str, list[str]] = Field(default_factory=dict)
    """Per server: only these tools (fnmatch patterns of MCP names)."""
    deny: dict[str, list[str]] = Field(default_factory=dict)
    """Per server: never these tools."""
    max_tool_calls_per_minute: int | None = Field(default=None, gt=0)
    """Its tool calls in any 60 s, across its executions."""


class TelemetryConfig(Strict):
    """OpenTelemetry (exported when the standard OTEL_* variables say where)."""

    record_content: bool = False
    """Debug only: spans also hold the code, tool arguments and results (cut at 4 KB)."""


class CodeModeSection(Strict):
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    servers: dict[str, ServerOptions] = Field(default_factory=dict)
    workers: int | None = Field(default=None, gt=0, le=64)
    resident_mb: int | None = Field(default=None, ge=0, le=4096)
    """Sandbox memory each worker keeps resident between runs (default 0: none; 32 covers
    the heap image and spares each run its page faults, for that much RSS per worker)."""
    description_budget_bytes: int = Field(default=8192, gt=0)
    read_only: bool = False
    """Expose only tools marked `readOnlyHint`, on every server without its own setting."""
    max_tool_calls_per_minute: int | None = Field(default=None, gt=0)
    """Tool calls allowed in any 60 s, across executions and servers."""
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    approve: Approve = None
    """Calls a person approves first, on every server without its own `approve`."""
    approval_timeout_s: float = Field(default=300.0, gt=0, le=86400)
    """How long one approval waits for its answer (not charged to the program's time)."""
    learn_shapes: bool = True
    """Record the shape of results of tools without an outputSchema (tool_adapters/_shapes)."""
    http: HttpConfig = Field(default_factory=HttpConfig)
    """The HTTP service: who may call it, which hosts, how it drains."""
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    identities: dict[str, IdentityPolicy] = Field(default_factory=dict)
    """Per caller identity (over HTTP with auth): servers, tool rules and call caps; the
    entry "*" applies to identities not listed."""
