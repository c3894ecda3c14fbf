"""Who may call codemode over HTTP: bearer tokens from a file, or access tokens of the
team's OAuth authorization server (JWTs checked against its JWKS, or introspection).

Each is an SDK `TokenVerifier`; the SDK's bearer middleware asks it about every request
to /mcp and answers 401 with `WWW-Authenticate: Bearer` (and the protected resource
metadata's address, when an issuer is configured) when it says no. What it returns is an
`AccessToken` whose `client_id` is the caller's identity: a token's name, or the JWT's
subject (`identity_claim`). Secrets never leave here: tokens are compared by their
SHA-256, in constant time, and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.auth.provider import AccessToken

from ..errors import ConfigError
from ..settings import HttpAuthConfig

log = logging.getLogger("codemode.auth")

_HASHED = re.compile(r"([A-Za-z0-9_.@+-]{1,64}):([0-9a-fA-F]{64})")
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
RELOAD_CHECK_S = 1.0
"""The tokens file is checked for changes at most this often."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class _Entry:
    name: str
    digest: bytes


def parse_tokens(text: str, source: str) -> list[_Entry]:
    """A tokens file: one token per line, or `name:<sha256 hex>`; `#` starts a comment."""
    entries: list[_Entry] = []
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        hashed = _HASHED.fullmatch(line)
        if hashed is not None:
            name, entry = hashed.group(1), _Entry(hashed.group(1), bytes.fromhex(hashed.group(2)))
        elif len(line) < 16 or any(c.isspace() for c in line):
            raise ConfigError(
                f"{source}:{number}: not a token: a token is at least 16 characters with no "
                "spaces, or `name:<sha256 hex of the token>` (sha256sum of it, 64 hex digits)"
            )
        else:
            entry = _Entry(f"token-{digest(line).hex()[:8]}", digest(line))
            name = entry.name
        if name in names:
            raise ConfigError(f"{source}:{number}: the name {name!r} is given twice")
        names.add(name)
        entries.append(entry)
    return entries


class TokenFileVerifier:
    """Bearer tokens from a file that is re-read when it changes (a removed line revokes
    its token at the next request). A file that cannot be read or parsed keeps the last
    good tokens and says why in the log."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self.entries = self._read()  # at start, a bad file is an error (ConfigError)

    def _read(self) -> list[_Entry]:
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"--auth-tokens {self.path}: cannot read it: {exc.strerror}"
            ) from None
        entries = parse_tokens(text, str(self.path))
        if not entries:
            raise ConfigError(f"--auth-tokens {self.path}: the file has no tokens")
        if stat.st_mode & 0o077:
            log.warning("%s can be read by other users; chmod 600 it", self.path)
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        return entries

    def _reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            log.warning("tokens file %s: %s; keeping the tokens read before", self.path, exc)
            return
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return
        try:
            self.entries = self._read()
            log.info("tokens file %s re-read: %d tokens", self.path, len(self.entries))
        except ConfigError as exc:
            log.warning("%s; keeping the tokens read before", exc)

    def find(self, token: str) -> str | None:
        """The name of the token, comparing its digest with every entry's (no early exit:
        the time taken does not say which, or whether one, matched)."""
        self._reload()
        wanted = digest(token)
        found = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, wanted):
                found = entry.name
        return found

    async def verify_token(self, token: str) -> AccessToken | None:
        name = self.find(token)
        if name is None:
            return None
        return AccessToken(token="", client_id=name, scopes=[], expires_at=None)


class JwtVerifier:
    """Access tokens of an OAuth authorization server, as JWTs: signature against the
    issuer's JWKS (PyJWT; keys cached, re-fetched for an unknown key id), expiry, issuer,
    audience and the required scopes."""

    def __init__(self, settings: HttpAuthConfig, jwks_url: str) -> None:
        import jwt

        self.settings = settings
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)

    async def verify_token(self, token: str) -> AccessToken | None:
        import jwt

        s = self.settings
        try:
            key = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token, key.key, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384",
                                            "PS256", "EdDSA"],
                audience=s.audience, issuer=s.issuer,
                options={"require": ["exp", "iss", *(["aud"] if s.audience else [])]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            log.info("an access token was refused: %s", exc)
            return None
        return _access(claims, s)


class IntrospectionVerifier:
    """Opaque access tokens, checked by RFC 7662 introspection at the issuer."""

    def __init__(self, settings: HttpAuthConfig) -> None:
        self.settings = settings

    async def verify_token(self, token: str) -> AccessToken | None:
        import httpx2

        s = self.settings
        auth = None
        if s.introspection_client_id:
            auth = (s.introspection_client_id, s.introspection_client_secret or "")
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                response = await http.post(
                    s.introspection_url or "", data={"token": token}, auth=auth
                )
            claims = response.json() if response.status_code == 200 else {}
        except Exception as exc:  # noqa: BLE001 - an unreachable issuer refuses, not crashes
            log.warning("token introspection failed: %s", exc)
            return None
        if not isinstance(claims, dict) or claims.get("active") is not True:
            return None
        if s.issuer and claims.get("iss") not in (None, s.issuer):
            return None
        audience = claims.get("aud")
        if s.audience and s.audience not in (
            audience if isinstance(audience, list) else [audience]
        ):
            return None
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp < time.time():
            return None
        return _access(claims, s)


def _access(claims: dict[str, Any], s: HttpAuthConfig) -> AccessToken | None:
    scopes = claims.get("scope", "")
    granted = scopes.split() if isinstance(scopes, str) else list(claims.get("scp") or [])
    if any(scope not in granted for scope in s.required_scopes):
        log.info("an access token lacks a required scope (%s)", " ".join(s.required_scopes))
        return None
    identity = claims.get(s.identity_claim) or claims.get("client_id") or claims.get("sub")
    if not isinstance(identity, str) or not identity:
        return None
    exp = claims.get("exp")
    return AccessToken(
        token="", client_id=identity, scopes=granted,
        expires_at=int(exp) if isinstance(exp, (int, float)) else None,
    )  # fmt: skip


async def jwks_url_of(settings: HttpAuthConfig) -> str:
    """The issuer's JWKS address: configured, else from its metadata (RFC 8414 or OIDC)."""
    if settings.jwks_url:
        return settings.jwks_url
    import httpx2

    issuer = (settings.issuer or "").rstrip("/")
    tried = []
    async with httpx2.AsyncClient(timeout=10) as http:
        for path in (
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            url = issuer + path
            tried.append(url)
            try:
                response = await http.get(url)
                if response.status_code == 200 and response.json().get("jwks_uri"):
                    return str(response.json()["jwks_uri"])
            except Exception:  # noqa: BLE001 - the next address, then a clear error
                continue
    raise ConfigError(
        f"--auth-issuer {settings.issuer}: no jwks_uri found (tried {', '.join(tried)}); "
        "set codemode.http.auth.jwks_url, or introspection_url for opaque tokens"
    )
