"""OAuth sign-in for remote (streamable HTTP) servers, on the SDK's OAuth client.

A server that answers 401 with the MCP authorization flow (protected resource metadata,
authorization server metadata, dynamic client registration or a configured client,
authorization code with PKCE) is signed in by `codemode login NAME` (`login.py`): the
browser opens on the authorization page (or the address is printed), the redirect comes
back to a listener on 127.0.0.1, and the tokens are kept in the user data dir, owner-only
(`TokenFile`). The SDK's `OAuthClientProvider` runs every step; what is ours is where the
tokens live, the browser and the listener, and two things the SDK's provider does not
keep across processes: when the access token expires, and the authorization server's
metadata. Without them a new process would send an expired token and go straight to a
new sign-in instead of refreshing; `_Provider` restores both, and refreshes a little
before expiry so a token is never refused for being seconds old.

Everywhere but `login`, a sign-in is never started: a server that wants one (no tokens
yet, or a refresh that failed) raises `NeedsLogin`, and its connection reports "needs
login: run `codemode login NAME`" until new tokens appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import sys
import time
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, OAuthFlowError
from mcp.shared.auth import (
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
)

from .._paths import data_dir, private_dir
from ..config import OAuthOptions, ServerConfig

log = logging.getLogger("codemode.oauth")

CALLBACK_PATH = "/callback"
LOGIN_TIMEOUT_S = 300.0
"""How long `codemode login` waits for the browser to come back."""


class NeedsLogin(Exception):
    """The server wants a sign-in that only `codemode login NAME` may start."""


def login_hint(name: str) -> str:
    return f"run `codemode login {name}`"


# -- where the tokens live -------------------------------------------------------------


def oauth_dir() -> Path:
    return data_dir() / "oauth"


class TokenFile:
    """One server's tokens, client registration and authorization server metadata, in a
    JSON file only its owner can read (the SDK's `TokenStorage`)."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        self.path = oauth_dir() / f"{safe}-{digest}.json"

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == self.url else {}

    def write(self, data: dict[str, Any]) -> None:
        private_dir(self.path.parent)
        data = {**data, "server": self.name, "url": self.url}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)

    def update(self, **fields: Any) -> None:
        data = self.read()
        for key, value in fields.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.write(data)

    def stamp(self) -> float | None:
        """When the file last changed (a new sign-in by another process shows here)."""
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    @property
    def signed_in(self) -> bool:
        return bool(self.read().get("tokens"))

    def forget(self) -> bool:
        """Drop the tokens (and the file); True if there were any."""
        had = self.signed_in
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return had

    def drop_tokens(self) -> None:
        if self.read():
            self.update(tokens=None, expires_at=None)

    # TokenStorage

    async def get_tokens(self) -> OAuthToken | None:
        tokens = self.read().get("tokens")
        return OAuthToken.model_validate(tokens) if tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        expires = time.time() + tokens.expires_in if tokens.expires_in else None
        self.update(tokens=tokens.model_dump(mode="json", exclude_none=True), expires_at=expires)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        info = self.read().get("client")
        return OAuthClientInformationFull.model_validate(info) if info else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.update(client=client_info.model_dump(mode="json", exclude_none=True))


def token_file(name: str, config: ServerConfig) -> TokenFile:
    return TokenFile(name, config.url or "")


# -- the SDK's provider, kept across processes -------------------------------------------


def _early_s(expires_in: float) -> float:
    """How long before expiry a token is refreshed: a tenth of its life, 1 s to 60 s."""
    return min(60.0, max(1.0, expires_in / 10))


class _Provider(OAuthClientProvider):
    def __init__(self, *args: Any, store: TokenFile, **kwargs: Any) -> None:
        super().__init__(*args, storage=store, **kwargs)
        self.store = store
        update = self.context.update_token_expiry

        def update_early(token: OAuthToken) -> None:
            update(token)
            if self.context.token_expiry_time is not None and token.expires_in:
                self.context.token_expiry_time -= _early_s(token.expires_in)
            if self.context.oauth_metadata is not None:  # learned by this sign-in: kept
                metadata = self.context.oauth_metadata.model_dump(mode="json", exclude_none=True)
                self.store.update(metadata=metadata, auth_server=self.context.auth_server_url)

        self.context.update_token_expiry = update_early  # type: ignore[method-assign]

    async def _initialize(self) -> None:
        await super()._initialize()
        data = self.store.read()
        expires_at, tokens = data.get("expires_at"), data.get("tokens") or {}
        if expires_at is not None:
            self.context.token_expiry_time = expires_at - _early_s(tokens.get("expires_in") or 0)
        metadata = data.get("metadata")
        if metadata and self.context.oauth_metadata is None:
            with contextlib.suppress(ValueError):
                self.context.oauth_metadata = OAuthMetadata.model_validate(metadata)
                self.context.auth_server_url = data.get("auth_server")


def _client_metadata(options: OAuthOptions, redirect_uri: str) -> OAuthClientMetadata:
    method = options.token_endpoint_auth_method
    if method is None and options.client_id is not None:  # registering: the AS chooses
        method = "client_secret_basic" if options.client_secret else "none"
    return OAuthClientMetadata(
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        client_name="codemode",
        scope=options.scope,
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method=method,
    )


async def _seed_client(store: TokenFile, options: OAuthOptions, redirect_uri: str) -> None:
    """A configured client_id is the registration: no dynamic one is made."""
    if options.client_id is None:
        return
    info = await store.get_client_info()
    if info is not None and info.client_id == options.client_id:
        return
    metadata = _client_metadata(options, redirect_uri).model_dump(mode="json", exclude_none=True)
    await store.set_client_info(
        OAuthClientInformationFull.model_validate(
            {**metadata, "client_id": options.client_id, "client_secret": options.client_secret}
        )
    )


def _redirect_uri(options: OAuthOptions, port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or options.redirect_port or 8976}{CALLBACK_PATH}"


def _provider(
    config: ServerConfig, options: OAuthOptions, store: TokenFile, redirect_uri: str,
    redirect: Callable[[str], Awaitable[None]], callback: Callable[[], Awaitable[Any]],
) -> _Provider:  # fmt: skip
    return _Provider(
        config.url or "",
        _client_metadata(options, redirect_uri),
        redirect_handler=redirect,
        callback_handler=callback,
        client_metadata_url=options.client_metadata_url,
        store=store,
    )


class _NoSignIn(httpx2.Auth):
    """For a server with no tokens yet: a 401 that asks for OAuth is a NeedsLogin."""

    def __init__(self, name: str) -> None:
        self.name = name

    def auth_flow(self, request: httpx2.Request) -> Any:
        response = yield request
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("bearer"):
            raise NeedsLogin("it asks for an OAuth sign-in")


def own_authorization(config: ServerConfig) -> bool:
    """Whether the config gives the server an Authorization header (then no OAuth)."""
    return any(k.lower() == "authorization" for k in config.headers)


async def auth_for(
    name: str, config: ServerConfig, options: OAuthOptions, browser: Browser | None = None
) -> httpx2.Auth | None:
    """The auth of one connection: None for a server with its own Authorization header;
    else the SDK's provider, which sends and refreshes the stored tokens. With a `browser`
    (`codemode run --sign-in`) a server that wants a sign-in (or more scopes) gets one;
    without, a server with no tokens yet gets an auth that turns its OAuth 401 into
    NeedsLogin, and a provider whose tokens cannot be refreshed raises NeedsLogin."""
    if own_authorization(config):
        return None
    store = token_file(name, config)
    if browser is not None:
        redirect_uri = _redirect_uri(options, browser.port)
        await _seed_client(store, options, redirect_uri)
        return _provider(config, options, store, redirect_uri, browser.redirect, browser.callback)
    if not store.signed_in:
        return _NoSignIn(name)

    async def refuse(*args: Any) -> Any:
        store.drop_tokens()
        raise NeedsLogin("its sign-in expired or was revoked (the tokens could not be refreshed)")

    return _provider(config, options, store, _redirect_uri(options), refuse, refuse)


def needs_login(exc: BaseException) -> NeedsLogin | None:
    """The NeedsLogin in `exc` (or an exception group around it), if any."""
    if isinstance(exc, NeedsLogin):
        return exc
    for inner in getattr(exc, "exceptions", None) or ():
        found = needs_login(inner)
        if found is not None:
            return found
    cause = exc.__cause__ or exc.__context__
    return needs_login(cause) if cause is not None and cause is not exc else None


# -- codemode login ----------------------------------------------------------------------


class Browser:
    """The person's side of a sign-in: the authorization page opens in their browser (or
    its address is printed), and the redirect comes back to a listener on 127.0.0.1."""

    def __init__(
        self, port: int | None, open_browser: bool = True, timeout_s: float = LOGIN_TIMEOUT_S
    ) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.open_browser = open_browser
        self.timeout_s = timeout_s
        self.opened = 0
        self._result: asyncio.Future[AuthorizationCodeResult] | None = None

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[Browser]:
        self.sock.setblocking(False)
        server = await asyncio.start_server(self._serve, sock=self.sock)
        try:
            yield self
        finally:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def redirect(self, url: str) -> None:
        self.opened += 1
        self._result = asyncio.get_running_loop().create_future()
        print(f"Sign in at: {url}", file=sys.stderr, flush=True)
        if self.open_browser and await asyncio.to_thread(webbrowser.open, url):
            print("(opened in your browser)", file=sys.stderr, flush=True)
        else:
            print(
                "Open that address in a browser on this machine; codemode waits for it.",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    async def callback(self) -> AuthorizationCodeResult:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), self.timeout_s)
        except asyncio.TimeoutError:
            raise OAuthFlowError(
                f"no sign-in came back within {self.timeout_s:g} s; run the login again"
            ) from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass
            target = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path != CALLBACK_PATH or self._result is None or self._result.done():
                body, status = "Nothing to do here.", "404 Not Found"
            elif "error" in query:
                why = query.get("error_description") or query["error"]
                self._result.set_exception(OAuthFlowError(f"the sign-in was refused: {why}"))
                body, status = f"Sign-in refused: {why}. You can close this tab.", "200 OK"
            elif "code" not in query:
                body, status = "The redirect brought no code.", "400 Bad Request"
            else:
                self._result.set_result(
                    AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                )
                body, status = "Signed in to codemode. You can close this tab.", "200 OK"
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.TimeoutError, OSError, IndexError):
            pass
        finally:
            writer.close()


async def prepare_login(
    name: str, config: ServerConfig, options: OAuthOptions, browser: Browser
) -> TokenFile:
    """Before `codemode login` connects (through a Connection given `browser`): earlier
    tokens are dropped, so it signs in anew; the client registration is kept unless it was
    made for another redirect address."""
    store = token_file(name, config)
    store.drop_tokens()
    info = await store.get_client_info()
    redirect_uri = _redirect_uri(options, browser.port)
    if info is not None and redirect_uri not in [str(u) for u in info.redirect_uris or []]:
        store.update(client=None)
    return store


def login_result(name: str, store: TokenFile, browser: Browser, tools: int) -> str:
    """What `codemode login` did, in a sentence."""
    if browser.opened == 0:
        return f"server {name!r} needs no login: it answered without asking for one ({tools} tools)"
    return f"signed in to {name!r} ({tools} tools); the tokens are kept in {store.path}"
