"""`codemode login NAME` and `codemode logout NAME`: OAuth sign-in to a remote server.

The flow itself is the SDK's (`tool_adapters._oauth`); here is the command: which server,
what to say when it needs no login, and the failures in words.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .config import Config, ServerConfig
from .errors import ConfigError


def _server(config: Config, name: str) -> ServerConfig:
    server = config.servers.get(name)
    if server is None:
        known = ", ".join(sorted(config.servers)) or "none"
        raise ConfigError(f"no server named {name!r} in {config.source} (servers: {known})")
    if server.transport == "stdio":
        raise ConfigError(
            f"server {name!r} is a local (stdio) server: it needs no login; sign-in is for "
            "remote servers reached by `url`"
        )
    return server


async def login(config: Config, name: str, open_browser: bool, timeout_s: float) -> str:
    """Sign in to `name`; returns what happened, raises ConfigError with the reason."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    from .tool_adapters import _oauth as oauth
    from .tool_adapters._connection import HTTP_TIMEOUT, list_all_tools
    from .tool_adapters._forward import negotiate

    server = _server(config, name)
    options = config.options(name)
    if any(k.lower() == "authorization" for k in server.headers):
        raise ConfigError(
            f"server {name!r} has an Authorization header in the config: it signs in with "
            "that, not OAuth (remove the header to sign in with `codemode login`)"
        )

    async def connect(auth: Any) -> int:
        async with contextlib.AsyncExitStack() as stack:
            if server.transport == "sse":
                streams = sse_client(server.url or "", headers=dict(server.headers), auth=auth)
            else:
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers=dict(server.headers), timeout=HTTP_TIMEOUT, auth=auth
                    )
                )
                streams = streamable_http_client(server.url or "", http_client=client)
            read, write = await stack.enter_async_context(streams)
            session = await stack.enter_async_context(ClientSession(read, write))
            await negotiate(session, options.protocol)
            return len(await list_all_tools(session))

    browser = oauth.Browser(options.oauth.redirect_port, open_browser, timeout_s)
    try:
        return await oauth.login(name, server, options.oauth, browser, connect)
    except Exception as exc:  # noqa: BLE001 - said in words, with what to try
        raise ConfigError(f"could not sign in to {name!r}: {_reason(exc)}") from None


def logout(config: Config, name: str) -> str:
    from .tool_adapters import _oauth as oauth

    server = _server(config, name)
    store = oauth.token_file(name, server)
    if store.forget():
        return f"forgot the tokens of {name!r}; `codemode login {name}` signs in again"
    return f"no tokens were kept for {name!r}"


def _reason(exc: BaseException) -> str:
    inner = [e for e in getattr(exc, "exceptions", None) or () if e is not None]
    if inner:
        return _reason(inner[0])
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
