"""No accidental chains: a codemode never runs as a downstream server of codemode.

A config that lists codemode among its own servers (directly, or through a launcher
script) would start codemode, which starts codemode, without end. So every stdio server
codemode starts gets `CHAIN_ENV` in its environment, naming the servers that led there;
a codemode that finds it in its own environment refuses to start, with a message that the
parent shows as that server's start error. The marker travels in the environment, so
renaming the command or wrapping it in a script does not hide it.
"""

from __future__ import annotations

import os

CHAIN_ENV = "CODEMODE_STARTED_BY"


def chain_for(server: str) -> str:
    """The marker for a child started for `server`: the chain so far, then this link."""
    parent = os.environ.get(CHAIN_ENV)
    link = f"server {server!r} of codemode (pid {os.getpid()})"
    return f"{parent} -> {link}" if parent else link


def chain_refusal() -> str | None:
    """Why this codemode must not start (it was started by codemode), or None."""
    chain = os.environ.get(CHAIN_ENV)
    if not chain:
        return None
    return (
        f"refusing to start: this codemode was started as {chain}. A config that lists "
        "codemode as one of its own servers would start codemode after codemode without "
        "end. Remove that server from the config: codemode reaches the other servers itself."
    )
