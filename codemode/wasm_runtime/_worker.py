"""A sandbox worker process: holds the compiled component, runs one execution at a time.

Started by the pool as `python -E -S _worker.py FD COMPILED MEMORY_BYTES WASMTIME_DIR STRATEGY`
(by path, with no site and an empty environment, so it imports only the stdlib and its
sibling modules `_protocol`, `_engine` and `_capi`, which loads wasmtime's library from
wasmtime-py's folder in WASMTIME_DIR). FD is its end of a socketpair; stdout is never
used. Each execution gets a fresh Store and instance; the next one is prepared while the
worker is idle, so an execution does not wait for instantiation.

Host functions never raise into wasmtime (an exception crossing it is stored in a global
that is not thread-safe and poisons the instance); every failure is returned as data.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time

import _capi as C
import _protocol as P
from _engine import EPOCH_TICK_S, HOST_INTERFACE, OPTIMIZED


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no worker outlives its server."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Channel:
    """Blocking framed I/O on the worker's end of the socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.chunk = memoryview(bytearray(1 << 20))
        """Reads land here, one buffer for the process's life: `recv(n)` would make a new
        n-byte object for every read, polled or not (an mmap and an munmap at 1 MiB)."""

    def _read(self, flags: int = 0) -> None:
        """Append what the socket holds (waiting for some unless MSG_DONTWAIT says not:
        then BlockingIOError when it holds nothing)."""
        got = self.sock.recv_into(self.chunk, 0, flags)
        if not got:  # the pool closed its end: nothing more will come
            os._exit(0)
        self.buf += self.chunk[:got]

    def send(self, kind: int, payload: bytes) -> None:
        self.sock.sendall(P.frame(kind, payload))

    def _frame_ready(self) -> tuple[int, bytes] | None:
        if len(self.buf) < P.HEADER.size:
            return None
        size, kind = P.HEADER.unpack_from(self.buf)
        end = P.HEADER.size + size
        if len(self.buf) < end:
            return None
        payload = bytes(self.buf[P.HEADER.size : end])
        del self.buf[:end]
        return kind, payload

    def recv(self, timeout: float | None, spin_s: float = 0.0) -> tuple[int, bytes] | None:
        """The next frame, or None when `timeout` seconds pass first (None: no limit).
        For the first `spin_s` seconds it polls instead of sleeping (see SPIN_S)."""
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        spin_until = now + spin_s if deadline is None else min(now + spin_s, deadline)
        while True:
            ready = self._frame_ready()
            if ready is not None:
                return ready
            if spin_s and time.monotonic() < spin_until:
                try:
                    self._read(socket.MSG_DONTWAIT)
                except BlockingIOError:
                    pass
                continue
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if not select.select([self.sock], [], [], remaining)[0]:
                    return None
            self._read()


SPIN_S = 0.0003
"""How long a guest waiting on its tool calls polls the socket before it sleeps. Waking a
sleeping process costs ~0.1 ms here (a socket round trip between two processes: 165 us
asleep, 48 us polling), which is most of a fast tool call."""
QUICK_S = 0.00075
"""A worker polls only while answers come within this (in-process tools, caches; sleeping
adds its wake-up to what is measured, so this is longer than SPIN_S); after an answer
that took longer (a real downstream server, a timer) it sleeps at once, so slow tools
cost it no CPU, until answers come this fast again."""


# Run on every new instance while the worker is idle, before any user code: the first call
# into a fresh instance pays for page faults on the heap snapshot (~2 ms); this pays it
# ahead. It is our fixed program, so no user state can be carried by it.
WARMUP_CODE = "import asyncio\nawait asyncio.sleep(0)\nprint(end='')\n[1][0]"
WARMUP_LIMITS = {"max_stdout_bytes": 1, "max_result_bytes": 64}
NO_CATALOG = (None, '{"functions": [], "namespaces": []}')


class Output:
    """WASI stdout/stderr of every store: keeps the first `limit` bytes, counts the rest.
    The guest can write to fd 1 directly, so this bound is the one that holds."""

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit
        self.dropped = 0

    def __call__(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))


class Ready:
    """An instance and what it holds: its store, its `run` export, its memory cap and the
    id of the catalog it was last given."""

    __slots__ = ("catalog_id", "memory_bytes", "run", "store")

    def __init__(self, store: C.Store, run: C.StringExport, memory_bytes: int, catalog_id):
        self.store, self.run = store, run
        self.memory_bytes, self.catalog_id = memory_bytes, catalog_id


class Worker:
    def __init__(self, channel: Channel, compiled_path: str, strategy: str = OPTIMIZED) -> None:
        self.channel = channel
        self.engine = C.Engine(strategy)
        try:
            self.component = C.Component(self.engine, compiled_path)
        except C.WasmError as exc:
            raise ArtifactRefused(str(exc)) from None
        self.linker = C.Linker(self.engine)
        self.linker.add_wasip2()  # wasi:cli/clocks/random/filesystem; never wasi-http
        self.linker.add_wait(HOST_INTERFACE, "wait", self._wait)
        self.ready: Ready | None = None
        self.kept: Ready | None = None
        """The instance a run asked to keep (`"keep": true`): the next such run continues it."""
        self.finished: Ready | None = None
        """The instance of the run being reported: freed once its result is sent."""
        self.catalog: tuple[str | None, str] = NO_CATALOG
        """The last catalog the parent sent (id, JSON): new instances are given it while
        the worker is idle, and build the next program's globals from it then."""
        self.seq = 0
        self.deadline = 0.0
        self.paused = False
        """The parent said a person is being asked (CLOCK frames): time the guest spends
        blocked in `wait` meanwhile moves the deadline on (its CPU time never does)."""
        self._since: float | None = None
        self._credited = False
        self.crossings = 0
        self.quick = True
        """The last wait's answers came within QUICK_S: the next one polls first."""
        self.output = Output()
        threading.Thread(target=self._tick, name="epoch-ticker", daemon=True).start()

    def _tick(self) -> None:
        while True:
            time.sleep(EPOCH_TICK_S)
            self.engine.increment_epoch()

    def instantiate(self, memory_bytes: int) -> Ready:
        store = C.Store(self.engine, self.output, memory_bytes)  # WASI: no files, env, args
        store.set_epoch_deadline(2**62)
        instance = self.linker.instantiate(store, self.component)
        run = instance.get_func(store, "run")
        assert run is not None, "the component exports no `run`"
        self.deadline = time.monotonic() + 60
        self.paused = False
        catalog_id, catalog = self.catalog
        options = {"catalog_id": catalog_id, "limits": WARMUP_LIMITS, "prepare": True}
        run(WARMUP_CODE, json.dumps(options), catalog)
        return Ready(store, run, memory_bytes, catalog_id)

    # -- host functions (called by the guest; must never raise) -------------------------

    def _wait(self, context, batch: bytes, timeout_ms: int) -> bytes:
        try:
            self.crossings += 1
            if batch:
                self.channel.send(P.CALLS, P.SEQ.pack(self.seq) + batch)
            self._since = asked = time.monotonic()
            wake = None if timeout_ms < 0 else self._since + timeout_ms / 1000
            done: list[bytes] = []
            spin = SPIN_S if self.quick else 0.0
            while not done:
                until = wake if self.paused else min(self.deadline, wake or self.deadline)
                remaining = None if until is None else until - time.monotonic()
                got = self.channel.recv(remaining, spin)
                if got is None:
                    break
                self._take(got, done)
            # poll next time only if answers came while polling would have (not a timer)
            self.quick = bool(done) and time.monotonic() - asked <= QUICK_S
            while True:  # everything else that has already arrived
                got = self.channel.recv(0)
                if got is None:
                    break
                self._take(got, done)
            self._credit()
            self._since = None
            if self._credited:  # the deadline moved on: so does the CPU timer's
                self._credited = False
                ticks = max(1, round((self.deadline - time.monotonic()) / EPOCH_TICK_S))
                C.set_epoch_deadline(context, ticks)
            expired = not done and not self.paused and time.monotonic() >= self.deadline
            # the completions' JSON as the parent wrote it (UTF-8), never decoded here
            return b'{"expired": %s, "done": [%s]}' % (
                b"true" if expired else b"false",
                b",".join(done),
            )
        except Exception as exc:  # noqa: BLE001
            return json.dumps({"expired": True, "done": [], "host_error": str(exc)}).encode()

    def _credit(self) -> None:
        """Move the deadline on by the time blocked in `wait` while paused."""
        now = time.monotonic()
        if self.paused and self._since is not None:
            self.deadline += now - self._since
            self._credited = True
        self._since = now

    def _take(self, got: tuple[int, bytes], done: list[bytes]) -> None:
        kind, payload = got
        if P.SEQ.unpack_from(payload)[0] != self.seq:
            return  # a late frame of an earlier execution
        if kind == P.COMPLETION:
            done.append(payload[P.SEQ.size :])
        elif kind == P.CLOCK:
            self._credit()
            self.paused = payload[P.SEQ.size :] == b"P"

    # -- executions -------------------------------------------------------------------

    def execute(self, request: dict) -> None:
        self.seq = request["seq"]
        memory_bytes = int(request["memory_bytes"])
        timeout_s = float(request["timeout_s"])
        started = time.monotonic()
        self.deadline = started + timeout_s
        self.paused = False
        self.crossings = 0
        self.quick = True
        self.output.reset(int(request["max_stdout_bytes"]))
        keep = bool(request.get("keep"))
        if "catalog" in request:  # new to this worker: it stays until another comes
            self.catalog = (request["catalog_id"], request["catalog"])
        trap, outcome = self._run(request, memory_bytes, timeout_s, keep)
        header = {
            "crossings": self.crossings,
            "trap": trap,
            "stdout": self.output.data.decode("utf-8", "replace"),
            "stdout_dropped": self.output.dropped,
            "kept": self.kept is not None,
        }
        self.channel.send(P.RESULT, json.dumps(header).encode() + b"\n" + outcome)
        # Dropped after the result is sent (freeing an instance takes ~0.7 ms) and before
        # the next one is made (two are never held at once).
        self.finished = None
        if self.ready is None and not keep:
            try:  # the next execution's fresh instance
                self.ready = self.instantiate(memory_bytes)
            except C.WasmError:
                pass  # (a memory limit below the sandbox's floor): made, or refused, on demand

    def _run(
        self, request: dict, memory_bytes: int, timeout_s: float, keep: bool
    ) -> tuple[dict | None, bytes]:
        """Run the program in its instance: (trap or None, the guest's outcome JSON)."""
        kept, self.kept = self.kept, None
        trap = None
        outcome = b""
        try:
            if keep and kept is not None:
                ready = kept  # the same instance as the last run: its globals are still there
            else:
                ready, self.ready = self.ready, None
            if ready is None or ready.memory_bytes != memory_bytes:
                ready = self.instantiate(memory_bytes)
            self.finished = ready
            store, run = ready.store, ready.run
            catalog_id, catalog = self.catalog
            if ready.catalog_id == catalog_id:
                catalog = ""  # the instance holds it (and, if fresh, its globals are made)
            ready.catalog_id = catalog_id
            store.set_epoch_deadline(max(1, round(timeout_s / EPOCH_TICK_S)))
            options = request["options"]
            outcome = run(request["code"], options, catalog).encode("utf-8", "replace")
            if keep:
                self.kept = ready
        except C.WasmError as exc:
            trap = _classify_trap(str(exc))  # a trapped instance is never run again
        except Exception as exc:  # noqa: BLE001 - anything else is reported, worker lives on
            trap = {"type": "SandboxError", "message": f"{type(exc).__name__}: {exc}"}
        return trap, outcome

    def serve(self) -> None:
        while True:
            got = self.channel.recv(None)
            assert got is not None
            kind, payload = got
            if kind == P.EXECUTE:
                self.execute(json.loads(payload))


class ArtifactRefused(Exception):
    """wasmtime would not load the compiled file (another version, flags or machine)."""


_FLOOR = re.compile(r"minimum size of (\d+) pages exceeds memory limits")


def memory_floor_mb(message: str) -> int | None:
    """The memory the sandbox needs before any code runs, if `message` says the limit is
    below it (its heap snapshot is that big)."""
    found = _FLOOR.search(message)
    return -(-int(found.group(1)) * 65536 // (1 << 20)) if found else None


def _classify_trap(message: str) -> dict:
    floor = memory_floor_mb(message)
    if floor is not None:
        return {"type": "MemoryError", "message": message.strip(), "floor_mb": floor}
    # wasmtime's message opens with "error while executing at wasm backtrace:" and the
    # frames; what happened is the first line after "Caused by:"
    _, caused, cause = message.partition("Caused by:")
    lines = [line.strip() for line in (cause if caused else message).splitlines() if line.strip()]
    first = lines[0] if lines else message
    if "interrupt" in message:
        return {"type": "TimeoutError", "message": "the code ran past its deadline"}
    if "call stack exhausted" in message or "stack overflow" in message:
        return {"type": "RecursionError", "message": "the WebAssembly stack is exhausted"}
    if "memory" in message and ("limit" in message or "grow" in message):
        return {"type": "MemoryError", "message": first}
    return {"type": "SandboxTrap", "message": first}


def main() -> None:
    _die_with_parent()
    channel = Channel(socket.socket(fileno=int(sys.argv[1])))
    try:
        try:
            C.load(sys.argv[4])  # wasmtime's library, from wasmtime-py's folder
            strategy = sys.argv[5] if len(sys.argv) > 5 else OPTIMIZED
            worker = Worker(channel, sys.argv[2], strategy)
            worker.ready = worker.instantiate(int(sys.argv[3]))
        except Exception as exc:  # noqa: BLE001
            cause = b"artifact" if isinstance(exc, ArtifactRefused) else b"start"
            floor = memory_floor_mb(str(exc))
            text = f"{type(exc).__name__}: {exc}"
            if floor is not None:
                text = (
                    f"the memory limit ({int(sys.argv[3]) >> 20} MB) is below what the sandbox "
                    f"needs before any code runs ({floor} MB): raise memory_mb"
                )
            channel.send(P.FATAL, cause + b"\n" + text.encode())
            return
        channel.send(P.READY, b"")
        worker.serve()
    except (BrokenPipeError, ConnectionError):
        pass  # the pool is gone or gave up on this worker: nothing to report to


if __name__ == "__main__":
    main()
