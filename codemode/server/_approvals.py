"""Putting a question to the client's user (an approval), in the client's protocol era.

What to ask, and what the answer means, is `tool_adapters._approval`'s; here is only how
the question reaches a person:

- A handshake-era client (2025-11-25 and before) takes server requests: an
  `elicitation/create` request is sent, tied to the `execute_code` call, while the program
  waits (`Elicitor`).
- A 2026-07-28-era client takes no server requests: `execute_code` answers with an
  input-required result carrying the questions, and the program stays paused in its
  instance. The client's retry, with the answers and the request state, resumes it where
  it stopped: it is never run again, so no call made before the question is made twice
  (`PausedRun`). The request state is our run's unguessable token, sealed by the SDK's
  `RequestStateBoundary` (encrypted, bound to this call's arguments, expiring).
- A client that declared no form elicitation cannot be asked: calls that need an approval
  fail closed (`ask` stays None).

A paused run that is not resumed within `codemode.approval_timeout_s` is stopped: its
worker is given back, and a late retry is told so.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..context import Answer, Question
from . import _replica as replica
from ._channel import Channel

log = logging.getLogger("codemode.server")

SETTLE_S = 0.05
"""After the first question of a round, how long more may come before the round is sent
(a program that gathers three deletes asks three questions in one round)."""

REAP_INTERVAL_S = 1.0


def can_elicit(ctx: Any) -> bool:
    """Whether the client declared form elicitation (an empty `elicitation: {}` is form)."""
    caps = getattr(ctx.session, "client_capabilities", None)
    elicitation = getattr(caps, "elicitation", None)
    if elicitation is None:
        return False
    return elicitation.form is not None or elicitation.url is None


def era_of(ctx: Any) -> str:
    """ "modern" (2026-07-28 and later: no server requests) or "legacy"."""
    return "modern" if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else "legacy"


def _request(question: Question) -> types.ElicitRequest:
    wire = {"message": question.message, "requestedSchema": question.schema}
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams.model_validate({**wire, "_meta": question.meta})
    )


def _answer(result: Any) -> Answer:
    """An elicitation's result (a model or its wire form) as an Answer; anything that is
    not one counts as a dismissal."""
    if isinstance(result, dict):
        try:
            result = types.ElicitResult.model_validate(result)
        except ValueError:
            return Answer("cancel")
    action = getattr(result, "action", None)
    if action not in ("accept", "decline", "cancel"):
        return Answer("cancel")
    content = getattr(result, "content", None)
    return Answer(action, dict(content) if isinstance(content, dict) else {})


class Elicitor:
    """A handshake-era client's user, asked by an `elicitation/create` request tied to the
    `execute_code` call, while the program waits."""

    def __init__(self, session: Any, request_id: Any, timeout_s: float) -> None:
        self.session = session
        self.request_id = request_id
        self.timeout_s = timeout_s

    async def __call__(self, question: Question) -> Answer:
        with anyio.fail_after(self.timeout_s):
            result = await self.session.send_request(
                _request(question),
                types.ElicitResult,
                metadata=ServerMessageMetadata(related_request_id=self.request_id),
            )
        return _answer(result)


class PausedRun:
    """One `execute_code` call of a 2026-07-28-era client that may pause for answers: its
    program runs in `task`; questions wait here until a round of them is sent to the
    client and its retry brings the answers."""

    def __init__(self, timeout_s: float, channel: Channel) -> None:
        self.token = replica.TAG + secrets.token_urlsafe(24)
        self.timeout_s = timeout_s
        self.task: asyncio.Task[Any] | None = None
        self.channel = channel
        """The request now attached (each retry of the client is one in turn)."""
        self.detached_at: float | None = None
        """When the last round was sent (None while a request of the client is attached)."""
        self._questions: dict[str, tuple[Question, asyncio.Future[Answer]]] = {}
        self._asked = asyncio.Event()
        self._count = 0

    def on_call_done(self, done: int) -> None:
        self.channel.on_call_done(done)

    async def ask(self, question: Question) -> Answer:
        self._count += 1
        key = f"question-{self._count}"
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._questions[key] = (question, future)
        self._asked.set()
        try:
            return await future
        finally:
            self._questions.pop(key, None)

    def answer(self, responses: dict[str, Any] | None) -> None:
        """Deliver the answers a retry brought; questions it left out are asked again."""
        for key, response in (responses or {}).items():
            entry = self._questions.get(key)
            if entry is not None and not entry[1].done():
                entry[1].set_result(_answer(response))

    def _pending(self) -> dict[str, Question]:
        """The questions still waiting for an answer (an answered one stays listed until
        the program takes its answer)."""
        return {key: q for key, (q, answer) in self._questions.items() if not answer.done()}

    async def next_round(self) -> dict[str, Question] | None:
        """Wait until the program ends (None) or has questions to send (key -> question)."""
        assert self.task is not None
        self.detached_at = None
        while not self.task.done():
            if self._pending():
                await asyncio.wait({self.task}, timeout=SETTLE_S)
                if self.task.done():
                    break
                pending = self._pending()
                if pending:
                    self._asked.clear()
                    self.detached_at = time.monotonic()
                    return pending
                continue  # answered meanwhile: the program goes on
            self._asked.clear()
            asked = asyncio.ensure_future(self._asked.wait())
            try:
                await asyncio.wait({self.task, asked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                asked.cancel()
        return None

    def input_required(self, questions: dict[str, Question]) -> types.InputRequiredResult:
        return types.InputRequiredResult(
            input_requests={key: _request(q) for key, q in questions.items()},
            request_state=self.token,
        )

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class PausedRuns:
    """The server's paused runs, by token; a run detached for longer than its timeout is
    stopped and forgotten (a background reaper)."""

    def __init__(self) -> None:
        self.runs: dict[str, PausedRun] = {}

    def add(self, run: PausedRun) -> None:
        self.runs[run.token] = run

    def get(self, token: str) -> PausedRun | None:
        return self.runs.get(token)

    def drop(self, run: PausedRun) -> None:
        self.runs.pop(run.token, None)

    def reap(self) -> None:
        now = time.monotonic()
        for run in list(self.runs.values()):
            if run.detached_at is not None and now - run.detached_at >= run.timeout_s:
                log.info("stopping a program whose approval went unanswered")
                run.cancel()
                self.drop(run)

    async def reaper(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            self.reap()

    def close(self) -> None:
        for run in list(self.runs.values()):
            run.cancel()
        self.runs.clear()
