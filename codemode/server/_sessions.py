"""Sessions: calls of `execute_code` with the same `session` share module globals.

Each session is a kept sandbox instance of its own (`wasm_runtime.KeptInstance`: its own
worker process, so nothing of another session or of a fresh run is ever in it), with the
memory cap of one execution and its own timeout per call. A session belongs to the client
that made it: its key is the client's scope (its identity, or its connection) and the name;
where the transport gives no scope (stateless HTTP), the first call gets an unguessable
handle (`name.<token>`) that the result names, and only that handle finds it again.

Bounds (`codemode.sessions`): at most `max` live sessions (past it, the least recently
used is closed), and each closes after `idle_expiry_s` without a call. The next call to a
session that is gone starts fresh and says why in a note, so a NameError that follows is
explained.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .._aio import Background
from ..config import SessionsConfig
from ..errors import ErrorKind
from ..wasm_runtime import ExecutionError, ExecutionResult, KeptInstance, SandboxPool
from . import _replica as replica

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A session name: what the model chooses (a handle adds `.` and a token)."""
HANDLE = re.compile(rf"({NAME.pattern})\.([A-Za-z0-9_-]{{16,}})")
GONE_REMEMBERED = 256
"""Sessions whose end is remembered, to explain the next call to them."""


@dataclass
class SessionInfo:
    """What the result says about the session it ran in."""

    name: str
    calls: int
    expires_in_s: float
    handle: str | None = None
    """The value to pass as `session` next time, when the transport gives no scope."""
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "calls": self.calls,
            "expires_in_s": round(self.expires_in_s),
        }
        if self.handle:
            out["handle"] = self.handle
        return out


@dataclass
class _Live:
    key: tuple[str, str]
    name: str
    handle: str | None
    instance: KeptInstance
    calls: int = 0
    last_used: float = field(default_factory=time.monotonic)
    running: int = 0  # calls under way: a busy session neither expires nor is evicted


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class Sessions:
    def __init__(self, pool: SandboxPool, config: SessionsConfig) -> None:
        self.pool = pool
        self.config = config
        self._live: dict[tuple[str, str], _Live] = {}
        self._gone: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._background = Background("codemode:sessions")

    async def open(self) -> None:
        await self._background.open()
        self._background.start_soon(self._expire_forever, name="expire idle sessions")

    async def close(self) -> None:
        await self._background.close()
        live, self._live = list(self._live.values()), {}
        await asyncio.gather(*(s.instance.close() for s in live), return_exceptions=True)

    @property
    def live(self) -> int:
        return len(self._live)

    # -- lookup --------------------------------------------------------------------------

    def _forget(self, key: tuple[str, str], why: str) -> None:
        self._gone[key] = why
        while len(self._gone) > GONE_REMEMBERED:
            self._gone.pop(next(iter(self._gone)))

    async def _expire(self) -> None:
        now = time.monotonic()
        idle = self.config.idle_expiry_s
        for key, live in list(self._live.items()):
            if not live.running and now - live.last_used >= idle:
                del self._live[key]
                self._forget(key, f"expired after {_minutes(idle)} idle")
                await live.instance.close()

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, min(30.0, self.config.idle_expiry_s / 4)))
            async with self._lock:
                await self._expire()

    async def _get(self, scope: str | None, name: str, reset: bool) -> tuple[_Live, str | None]:
        """The live session for this call (made when needed), and a note for the result."""
        async with self._lock:
            await self._expire()
            handle = None
            match = HANDLE.fullmatch(name) if scope is None else None
            if match is not None:  # no scope from the transport: the handle is the key
                handle, name = name, match.group(1)
            key = ("handle", handle or "") if scope is None else (scope, name)
            note = None
            live = self._live.get(key) if key[1] else None
            if live is not None and not live.instance.alive:  # its worker died while idle
                self._lose(live, "lost its state (its sandbox process stopped)")
                live = None
            if live is not None and reset:
                del self._live[key]
                await live.instance.close()
                live, note = None, f"session {name!r} was reset: it starts fresh"
            if live is None:
                why = self._gone.get(key) if key[1] else None
                if why is None and handle is not None and not reset:
                    why = _unknown_handle(handle, name)
                if why is not None and not reset:
                    note = f"session {name!r} {why}; earlier names are gone, it starts fresh"
                if scope is None:  # a new session gets a new handle, never one a client chose
                    handle = f"{name}.{replica.TAG}{secrets.token_urlsafe(16)}"
                    key = ("handle", handle)
                if len(self._live) >= self.config.max:
                    await self._evict()
                instance = await self.pool.keep_instance()
                self._gone.pop(key, None)  # told now (not before: a cancel may come first)
                live = self._live[key] = _Live(key, name, handle, instance)
            return live, note

    def _lose(self, live: _Live, why: str) -> None:
        """A session whose instance is gone: forgotten, and the next call says why."""
        if self._live.get(live.key) is live:
            del self._live[live.key]
            self._forget(live.key, why)

    async def _evict(self) -> None:
        idle = [s for s in self._live.values() if not s.running]
        if not idle:
            return  # every session is running a call: one more, for now, rather than none
        oldest = min(idle, key=lambda s: s.last_used)
        del self._live[oldest.key]
        self._forget(
            oldest.key,
            f"was closed for another (it was the least recently used of {self.config.max} "
            "live sessions; codemode.sessions.max)",
        )
        await oldest.instance.close()

    # -- runs ----------------------------------------------------------------------------

    async def run(
        self,
        name: str,
        reset: bool,
        scope: str | None,
        code: str,
        **run: Any,
    ) -> tuple[ExecutionResult, SessionInfo]:
        """Run `code` in the session `name` of `scope` (see the module docstring); keyword
        arguments go to `KeptInstance.run` (tool host, limits, context, progress)."""
        if not (NAME.fullmatch(name) or HANDLE.fullmatch(name)):
            return _bad_name(name), SessionInfo(name, 0, 0)
        try:
            live, note = await self._get(scope, name, reset)
        except Elsewhere as exc:
            error = ExecutionError(
                type="WrongReplica", message=str(exc), kind=ErrorKind.SERVER_UNAVAILABLE
            )
            return ExecutionResult(ok=False, error=error), SessionInfo(name, 0, 0)
        live.running += 1
        try:
            result = await live.instance.run(code, **run)
        finally:
            live.running -= 1
            live.last_used = time.monotonic()
            live.calls += 1
            if not live.instance.alive:  # also when the call was cancelled: no await here
                self._lose(live, "lost its state when a call did not end cleanly")
        if not live.instance.alive:
            result.notes.append(
                f"session {live.name!r} lost its state (the call did not end cleanly: "
                f"{result.error.type if result.error else 'the sandbox stopped'}); the next "
                "call starts fresh"
            )
        if note:
            result.notes.insert(0, note)
        info = SessionInfo(live.name, live.calls, self.config.idle_expiry_s, live.handle, note)
        if live.handle and live.calls == 1:
            result.notes.append(
                f"this session's handle is {live.handle!r}: pass it as `session` to continue it"
            )
        return result, info


class Elsewhere(Exception):
    """The session lives on another replica: the call is refused, not run fresh."""


def _unknown_handle(handle: str, name: str) -> str:
    token = handle.split(".", 1)[1]
    place = replica.where(token)
    if place == "elsewhere":
        raise Elsewhere(
            f"session {name!r} lives on another codemode replica (this is {replica.NAME!r}), "
            f"so this call was not run: {replica.ROUTING}"
        )
    if place == "restarted":
        return "is gone: this codemode server restarted since"
    return "is not known here (a handle lives as long as its session)"


def _bad_name(name: str) -> ExecutionResult:
    return ExecutionResult(
        ok=False,
        error=ExecutionError(
            type="InvalidArguments",
            message=f"session {name!r} is not a session name: use 1-64 letters, digits, "
            "'_' or '-' (for example \"analysis\")",
            kind=ErrorKind.INVALID_ARGUMENTS,
        ),
    )
