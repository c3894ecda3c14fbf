"""`codemode login NAME` and `codemode logout NAME`: OAuth sign-in to a remote server.

The flow itself is the SDK's (`tool_adapters._oauth`); here is the command: which server,
what to say when it needs no login, and the failures in words.
"""

from __future__ import annotations

from .config import Config, ServerConfig
from .errors import ConfigError, ServerStartError


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
    """Sign in to `name` by connecting to it through a Connection that may start a sign-in
    in the browser (the SDK's provider runs the flow on the server's 401); returns what
    happened, raises ConfigError with the reason."""
    from .tool_adapters import Connection
    from .tool_adapters import _oauth as oauth

    server = _server(config, name)
    options = config.options(name)
    if oauth.own_authorization(server):
        raise ConfigError(
            f"server {name!r} has an Authorization header in the config: it signs in with "
            "that, not OAuth (remove the header to sign in with `codemode login`)"
        )
    browser = oauth.Browser(options.oauth.redirect_port, open_browser, timeout_s)
    store = await oauth.prepare_login(name, server, options.oauth, browser)
    connection = Connection(name, server, options, browser=browser)
    try:
        await connection.start()
        tools = len(connection.tools)
    except ServerStartError:
        raise ConfigError(f"could not sign in to {name!r}: {connection.error}") from None
    finally:
        await connection.close()
    return oauth.login_result(name, store, browser, tools)


def logout(config: Config, name: str) -> str:
    from .tool_adapters import _oauth as oauth

    server = _server(config, name)
    store = oauth.token_file(name, server)
    if store.forget():
        return f"forgot the tokens of {name!r}; `codemode login {name}` signs in again"
    return f"no tokens were kept for {name!r}"
