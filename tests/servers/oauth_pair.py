"""An OAuth authorization server and an OAuth-protected MCP server, on 127.0.0.1, built
with the SDK's server-side auth: the authorization server's routes (metadata, dynamic
client registration, authorize, token, revoke) and a resource server that serves its
protected resource metadata and answers 401 with `WWW-Authenticate: Bearer`.

    python oauth_pair.py AS_PORT RS_PORT [--ttl S] [--client ID:SECRET:REDIRECT_URI]

The authorization page approves at once (it redirects straight back with a code), so a
"browser" that follows redirects completes a sign-in. Access tokens live `--ttl` seconds
and come with a refresh token (rotated on use); `/revoke` revokes either.
`GET /counts` on the authorization server says how many registrations, authorizations,
code exchanges and refreshes it served (what a test checks happened).

The resource server's tools: whoami() (the token's client and scopes), add(a, b).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter

import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    OAuthAuthorizationServerProvider,
    ProviderTokenVerifier,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

SCOPE = "mcp"


class Approving(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """Every client is approved at once; tokens are kept in memory."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.counts: Counter[str] = Counter()
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.counts["registrations"] += 1
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client, params: AuthorizationParams) -> str:
        self.counts["authorizations"] += 1
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or [SCOPE], expires_at=time.time() + 300,
            client_id=client.client_id, code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )  # fmt: skip
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, authorization_code: str):
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(self, client, authorization_code) -> OAuthToken:
        self.counts["code_exchanges"] += 1
        del self.codes[authorization_code.code]
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client, refresh_token: str):
        token = self.refresh.get(refresh_token)
        return token if token is not None and token.client_id == client.client_id else None

    async def exchange_refresh_token(self, client, refresh_token, scopes) -> OAuthToken:
        self.counts["refreshes"] += 1
        del self.refresh[refresh_token.token]  # rotated: each refresh token works once
        return self._issue(client.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token) -> None:
        self.counts["revocations"] += 1
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = f"at-{secrets.token_urlsafe(18)}", f"rt-{secrets.token_urlsafe(18)}"
        self.access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes,
            expires_at=int(time.time()) + self.ttl, resource=resource,
        )  # fmt: skip
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        return OAuthToken(
            access_token=access, expires_in=self.ttl, scope=" ".join(scopes), refresh_token=refresh
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("as_port", type=int)
    parser.add_argument("rs_port", type=int)
    parser.add_argument("--ttl", type=int, default=3600, help="access token lifetime (s)")
    parser.add_argument("--client", help="a pre-registered client, ID:SECRET:REDIRECT_URI")
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.as_port}"
    resource = f"http://127.0.0.1:{args.rs_port}/mcp"
    provider = Approving(args.ttl)
    if args.client:
        client_id, secret, redirect = args.client.split(":", 2)
        provider.clients[client_id] = OAuthClientInformationFull(
            client_id=client_id, client_secret=secret, redirect_uris=[redirect],  # type: ignore[list-item]
            token_endpoint_auth_method="client_secret_basic", scope=SCOPE,
        )  # fmt: skip

    async def counts(request) -> JSONResponse:
        return JSONResponse(dict(provider.counts))

    routes = create_auth_routes(
        provider,
        issuer_url=AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=[SCOPE], default_scopes=[SCOPE]
        ),
        revocation_options=RevocationOptions(enabled=True),
    )
    authorization = Starlette(routes=[*routes, Route("/counts", counts)])

    mcp = MCPServer(
        "protected",
        token_verifier=ProviderTokenVerifier(provider),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer), resource_server_url=AnyHttpUrl(resource),
            required_scopes=[SCOPE], validate_token_resource=True,
        ),
    )  # fmt: skip

    @mcp.tool()
    async def whoami() -> dict:
        """The caller as the token says."""
        token = get_access_token()
        return {
            "client_id": token.client_id if token else None,
            "scopes": token.scopes if token else [],
        }

    @mcp.tool()
    async def add(a: int, b: int) -> int:
        """a + b."""
        return a + b

    async def both() -> None:
        await asyncio.gather(
            uvicorn.Server(uvicorn.Config(authorization, "127.0.0.1", args.as_port, log_level="warning")).serve(),
            uvicorn.Server(uvicorn.Config(mcp.streamable_http_app(host="127.0.0.1"), "127.0.0.1", args.rs_port, log_level="warning")).serve(),
        )  # fmt: skip

    asyncio.run(both())


if __name__ == "__main__":
    main()
