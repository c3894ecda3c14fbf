"""codemode as an HTTP service: who may call it, which Host headers it answers, its
health endpoints, and how it stops.

- Auth (`_auth`): bearer tokens from a file, or the access tokens of the team's OAuth
  authorization server; the SDK's bearer middleware guards /mcp and answers 401 with
  `WWW-Authenticate: Bearer`. With an issuer, the protected resource metadata document is
  served too. Binding an address other than loopback with no auth is refused at start
  (`--no-auth` for those who put an authenticating proxy in front).
- Host headers are checked against DNS rebinding everywhere: loopback names on loopback;
  `codemode.http.allowed_hosts` (or the address bound) elsewhere. A wildcard bind with no
  allowed hosts says so in the log, and what to set.
- `GET /healthz`: alive (no auth). `GET /readyz`: 200 once ready (the sandbox built, its
  workers up, every server's first connection attempt done), 503 before and while
  draining; both say the state of each downstream server, and never need auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import ServeError
from ..settings import HttpConfig
from . import _auth

log = logging.getLogger("codemode.server")


@dataclass
class HttpOptions:
    """The HTTP service's settings: the config's `codemode.http`, with the command line's
    flags over it."""

    config: HttpConfig = field(default_factory=HttpConfig)
    tokens_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    no_auth: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    resource_url: str | None = None
    stateless: bool = False

    @property
    def auth(self) -> Any:
        return self.config.auth.model_copy(
            update={
                k: v
                for k, v in {
                    "tokens_file": self.tokens_file,
                    "issuer": self.issuer,
                    "audience": self.audience,
                }.items()
                if v is not None
            }
        )


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "[::]", "")


def transport_security(host: str, options: HttpOptions) -> TransportSecuritySettings:
    hosts = list(options.allowed_hosts or options.config.allowed_hosts)
    if is_loopback(host):
        hosts = hosts or ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    elif not hosts and not _wildcard(host):
        hosts = [f"{host}:*", host]
    if not hosts:
        log.warning(
            "serving on %s with no allowed Host headers: every Host is accepted; pass "
            "--allowed-host NAME (the name clients use, e.g. codemode.example.com) to check "
            "it against DNS rebinding",
            host,
        )
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = list(options.config.allowed_origins) or [
        f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")
    ]
    log.info("Host headers accepted: %s", ", ".join(hosts))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


async def auth_of(host: str, port: int, options: HttpOptions) -> tuple[Any, Any]:
    """(AuthSettings, TokenVerifier), or (None, None) with no auth; ServeError for an
    unauthenticated bind off loopback."""
    settings = options.auth
    if settings.tokens_file and settings.issuer:
        raise ServeError("give --auth-tokens or --auth-issuer, not both")
    if not settings.tokens_file and not settings.issuer:
        if not is_loopback(host) and not options.no_auth:
            raise ServeError(
                f"refusing to serve on {host} with no authentication: anyone who can reach "
                "it could run programs with your tools. Pass --auth-tokens FILE (one token "
                "per line; README: Run it for a team), or --auth-issuer URL --auth-audience "
                "AUD, or --no-auth if a proxy in front of it authenticates."
            )
        if options.no_auth and not is_loopback(host):
            log.warning(
                "serving on %s with --no-auth: whatever is in front must authenticate", host
            )
        return None, None
    resource = options.resource_url or f"http://{host}:{port}/mcp"
    if settings.tokens_file:
        verifier: Any = _auth.TokenFileVerifier(settings.tokens_file)
        # the SDK's settings need an issuer; with no resource URL none is ever served
        auth = AuthSettings(issuer_url=AnyHttpUrl(resource), resource_server_url=None)
        return auth, verifier
    if settings.introspection_url:
        verifier = _auth.IntrospectionVerifier(settings)
    else:
        verifier = _auth.JwtVerifier(settings, await _auth.jwks_url_of(settings))
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(settings.issuer or ""),
        resource_server_url=AnyHttpUrl(resource),
        required_scopes=list(settings.required_scopes) or None,
    )
    return auth, verifier


def health_routes(engine: Any) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        state = engine.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


def identity_of(ctx: Any) -> str | None:
    """The caller's identity from the request's access token (a token's name, a JWT's
    subject), or None without auth."""
    request = getattr(ctx, "request", None)
    user = request.scope.get("user") if request is not None else None
    token = getattr(user, "access_token", None)
    return getattr(token, "client_id", None)


def quiet_uvicorn(config: Any) -> Any:
    """uvicorn's server without its own signal handlers: codemode's (a drain) stay."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


async def drain(server: Any, running: Callable[[], int], grace_s: float) -> None:
    """Stop accepting connections, wait up to `grace_s` for the executions under way
    (`running()`) and their responses, then end the HTTP server without waiting for
    streams left open (GET listeners)."""
    log.info("draining: %d execution(s) under way, up to %g s", running(), grace_s)
    for listener in getattr(server, "servers", []):
        listener.close()  # no new connections; those open finish what they are doing
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while running() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if running():
        log.warning("drain: %d execution(s) still running after %g s", running(), grace_s)
    await asyncio.sleep(0.5)  # the last responses on their way out
    server.should_exit = server.force_exit = True
