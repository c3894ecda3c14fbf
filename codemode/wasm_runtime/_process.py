"""One sandbox worker process, as the pool sees it: the process and the parent's end of
its socketpair, framed as `_protocol` says. Stdout is never shared with a worker (on
stdio it is the MCP channel)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from pathlib import Path

from ..errors import WorkerError
from . import _protocol as P

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")

WORKER_START_TIMEOUT_S = 60.0
"""A worker that has not said it is ready by then is killed (a cold page cache and a
loaded machine take seconds; a healthy start takes ~0.3 s)."""


class WorkerProcess:
    """One worker: the process and the parent's end of its socketpair."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.ready_ms = 0.0
        self._header: bytes | None = None

    @classmethod
    async def start(cls, compiled: Path, memory_bytes: int) -> WorkerProcess:
        started = time.monotonic()
        parent_sock, child_sock = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-E",
                "-s",
                str(WORKER_SCRIPT),
                str(child_sock.fileno()),
                str(compiled),
                str(memory_bytes),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,  # stdout may be the MCP channel: never share it
                stderr=None,
                pass_fds=(child_sock.fileno(),),
                # a session of its own: a signal for the server's process group (Ctrl-C in
                # a terminal) is the server's to handle (a drain), not the workers'; a
                # worker still ends when the server does (its socket closes)
                start_new_session=True,
            )
        finally:
            child_sock.close()
        reader, writer = await asyncio.open_connection(sock=parent_sock, limit=1 << 20)
        worker = cls(proc, reader, writer)
        try:
            kind, payload = await asyncio.wait_for(worker.recv(), WORKER_START_TIMEOUT_S)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await worker.kill()
            raise WorkerError(f"a sandbox worker did not start: {exc!r}") from None
        except BaseException:  # cancelled while starting: leave no process behind
            await asyncio.shield(worker.kill())
            raise
        if kind != P.READY:
            await worker.kill()
            raise WorkerError(
                f"a sandbox worker failed to start: {payload.decode(errors='replace')}"
            )
        worker.ready_ms = (time.monotonic() - started) * 1000
        return worker

    async def recv(self) -> tuple[int, bytes]:
        """The next frame. Safe to cancel (a timeout) and call again: a header read before
        the cancel is kept for the next call (readexactly takes nothing until it has all)."""
        if self._header is None:
            self._header = await self.reader.readexactly(P.HEADER.size)
        size, kind = P.HEADER.unpack(self._header)
        payload = await self.reader.readexactly(size)
        self._header = None
        return kind, payload

    def send(self, kind: int, payload: bytes) -> None:
        self.writer.write(P.frame(kind, payload))

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.proc.wait()
