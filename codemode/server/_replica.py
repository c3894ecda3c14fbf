"""Which codemode process this is, among replicas behind a load balancer.

Sessions and paused approvals live in the process that made them. Their handles and
tokens carry this process's tag: the replica's name (`$CODEMODE_REPLICA`, else the host
name: a pod's name) and a nonce of this start. So a call that reaches another replica,
or the same replica after a restart, can say which it is instead of silently starting
fresh.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket

NAME = os.environ.get("CODEMODE_REPLICA") or socket.gethostname()
_BOOT = secrets.token_hex(8)
TAG_LEN = 10


def _short(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


TAG = _short(NAME, 6) + _short(_BOOT, 4)
"""This process, in 10 hex characters: 6 of the replica's name, 4 of this start."""


def where(token: str) -> str:
    """Where a handle's or token's maker is: "here" (this process), "restarted" (this
    replica, an earlier start) or "elsewhere" (another replica), by its first TAG_LEN
    characters; "unknown" for a token without a tag."""
    tag = token[:TAG_LEN]
    if len(tag) < TAG_LEN or any(c not in "0123456789abcdef" for c in tag):
        return "unknown"
    if tag == TAG:
        return "here"
    return "restarted" if tag[:6] == TAG[:6] else "elsewhere"


ROUTING = (
    "every call of a session, and the retry of a paused program, must reach the replica "
    "that made it: route by the caller (the load balancer hashing the Authorization "
    "header), or serve sessions from one replica (README: Run it for a team)"
)
