"""A sandbox worker process in Python: the twin of the native worker (`worker.c`), run
where that one cannot be built (no C compiler). The two take the same arguments and speak
the same frames (`_protocol`); a change to one is a change to both.

Started by the pool as `python -E -S _worker.py FD COMPILED MEMORY_BYTES LIBRARY SETTINGS
WARMUP_CODE PREPARE_OPTIONS CATALOG` (by path, with no site and an empty environment, so it
imports only the stdlib and its sibling modules `_protocol`, `_pagecache` and `_capi`, which loads
wasmtime's library from LIBRARY). FD is its end of a socketpair; stdout is never used.
SETTINGS is `_protocol.settings`; the last three are the warm-up program, its options and
the catalog a first instance is prepared with. Each execution gets a fresh Store and
instance; the next one is prepared while the worker is idle, so an execution does not
wait for instantiation.

Host functions never raise into wasmtime (an exception crossing it is stored in a global
that is not thread-safe and poisons the instance); every failure is returned as data.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

import _capi as C
import _pagecache
import _protocol as P


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


class Settings:
    """What the parent starts a worker with (its arguments after MEMORY_BYTES)."""

    def __init__(self, settings: str, warmup: str, prepare: str, catalog: str) -> None:
        epoch, strategy, opt_level, self.tick_s, self.spin_s, self.quick_s, resident = (
            P.parse_settings(settings)
        )
        self.engine = (epoch, strategy, opt_level, resident)
        self.warmup, self.prepare, self.catalog = warmup, prepare, catalog


class Worker:
    def __init__(
        self, channel: Channel, compiled_path: str, settings: Settings, library: str = ""
    ) -> None:
        self.channel = channel
        self.files = [compiled_path, library] if library else [compiled_path]
        """The artifact and wasmtime's library: each mapping of them is advised MADV_RANDOM
        (`_pagecache`), as worker.c does."""
        self.settings = settings
        self.engine = C.Engine(*settings.engine)
        try:
            self.component = C.Component(self.engine, compiled_path)
        except C.WasmError as exc:
            raise ArtifactRefused(str(exc)) from None
        _pagecache.advise_random(self.files)
        self.linker = C.Linker(self.engine)
        self.linker.add_wasip2()  # wasi:cli/clocks/random/filesystem; never wasi-http
        self.linker.add_wait(P.HOST_INTERFACE, "wait", self._wait)
        self.ready: Ready | None = None
        self.kept: Ready | None = None
        """The instance a run asked to keep: the next such run continues it."""
        self.finished: Ready | None = None
        """The instance of the run being reported: freed once its result is sent."""
        self.catalog: tuple[bytes, str, str] = (b"", settings.catalog, settings.prepare)
        """The last catalog the parent sent (id, JSON, the warm-up's options for it; no id:
        the one the worker started with): new instances are given it while the worker is
        idle, and build the next program's globals from it then."""
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
        self.pending: bytes | None = None
        """An EXECUTE frame read while a warm-up waited: run next."""
        self.output = Output()
        threading.Thread(target=self._tick, name="epoch-ticker", daemon=True).start()

    def _tick(self) -> None:
        while True:
            time.sleep(self.settings.tick_s)
            self.engine.increment_epoch()

    def instantiate(self, memory_bytes: int) -> Ready:
        store = C.Store(self.engine, self.output, memory_bytes)  # WASI: no files, env, args
        store.set_epoch_deadline(2**62)
        instance = self.linker.instantiate(store, self.component)
        _pagecache.advise_random(self.files)  # its memory: a new mapping of the heap image
        run = instance.get_func(store, "run")
        assert run is not None, "the component exports no `run`"
        catalog_id, catalog, prepare = self.catalog
        run_clock = self.deadline, self.paused  # the warm-up's deadline is its own, not the run's
        self.deadline, self.paused = time.monotonic() + 60, False
        try:
            run(self.settings.warmup, prepare, catalog)
        finally:
            self.deadline, self.paused = run_clock
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
            spin = self.settings.spin_s if self.quick else 0.0
            while not done:
                until = wake if self.paused else min(self.deadline, wake or self.deadline)
                remaining = None if until is None else until - time.monotonic()
                got = self.channel.recv(remaining, spin)
                if got is None:
                    break
                self._take(got, done)
            # poll next time only if answers came while polling would have (not a timer)
            self.quick = bool(done) and time.monotonic() - asked <= self.settings.quick_s
            while True:  # everything else that has already arrived
                got = self.channel.recv(0)
                if got is None:
                    break
                self._take(got, done)
            self._credit()
            self._since = None
            if self._credited:  # the deadline moved on: so does the CPU timer's
                self._credited = False
                ticks = round((self.deadline - time.monotonic()) / self.settings.tick_s)
                C.set_epoch_deadline(context, max(1, ticks))
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
        if kind == P.EXECUTE:
            self.pending = payload  # (a warm-up's wait) the next run, kept for serve()
            return
        if P.SEQ.unpack_from(payload)[0] != self.seq:
            return  # a late frame of an earlier execution
        if kind == P.COMPLETION:
            done.append(payload[P.SEQ.size :])
        elif kind == P.CLOCK:
            self._credit()
            self.paused = payload[P.SEQ.size :] == b"P"

    # -- executions -------------------------------------------------------------------

    def execute(self, payload: bytes) -> None:
        try:
            head = P.EXECUTE_HEAD.unpack_from(payload)
            seq, memory_bytes, timeout_s, max_stdout, keep, has_catalog = head
            (catalog_id, code, options), end = P.read_fields(payload, P.EXECUTE_HEAD.size, 3)
            if has_catalog:  # new to this worker: it stays until another comes
                (catalog, prepare), _ = P.read_fields(payload, end, 2)
                self.catalog = (catalog_id, catalog.decode(), prepare.decode())
        except (struct.error, ValueError):
            os._exit(4)  # a frame this worker cannot read: the pool reports it died
        self.seq = seq
        self.deadline = time.monotonic() + timeout_s
        self.paused = False
        self.crossings = 0
        self.quick = True
        self.output.reset(max_stdout)
        trap, message, outcome = self._run(
            code.decode(), options.decode(), memory_bytes, timeout_s, bool(keep)
        )
        head = P.RESULT_HEAD.pack(self.crossings, self.output.dropped, self.kept is not None, trap)
        self.channel.send(P.RESULT, head + P.fields(message, bytes(self.output.data)) + outcome)
        # Dropped after the result is sent (freeing an instance takes ~0.7 ms) and before
        # the next one is made (two are never held at once).
        self.finished = None
        if self.ready is None and not keep:
            try:  # the next execution's fresh instance
                self.ready = self.instantiate(memory_bytes)
            except C.WasmError:
                pass  # (a memory limit below the sandbox's floor): made, or refused, on demand

    def _run(
        self, code: str, options: str, memory_bytes: int, timeout_s: float, keep: bool
    ) -> tuple[int, bytes, bytes]:
        """Run the program in its instance: (TRAP_*, its message, the guest's outcome)."""
        kept, self.kept = self.kept, None
        try:
            if keep and kept is not None:
                ready = kept  # the same instance as the last run: its globals are still there
            else:
                ready, self.ready = self.ready, None
            kept = None
            if ready is None or ready.memory_bytes != memory_bytes:
                ready = None  # freed before the next is made
                ready = self.instantiate(memory_bytes)
            self.finished = ready
            catalog_id, catalog, _ = self.catalog
            if ready.catalog_id == catalog_id:
                catalog = ""  # the instance holds it (and, if fresh, its globals are made)
            ready.catalog_id = catalog_id
            ready.store.set_epoch_deadline(max(1, round(timeout_s / self.settings.tick_s)))
            outcome = ready.run(code, options, catalog).encode("utf-8", "replace")
            if keep:
                self.kept = ready
            return P.TRAP_NONE, b"", outcome
        except C.WasmError as exc:  # a trapped instance is never run again
            return P.TRAP_WASM, str(exc).encode("utf-8", "replace"), b""
        except Exception as exc:  # noqa: BLE001 - anything else is reported, worker lives on
            return P.TRAP_HOST, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"), b""

    def serve(self) -> None:
        while True:
            payload, self.pending = self.pending, None
            if payload is None:
                got = self.channel.recv(None)
                assert got is not None
                kind, payload = got
                if kind != P.EXECUTE:
                    continue
            self.execute(payload)


class ArtifactRefused(Exception):
    """wasmtime would not load the compiled file (another version, flags or machine)."""


def main() -> None:
    _die_with_parent()
    channel = Channel(socket.socket(fileno=int(sys.argv[1])))
    try:
        try:
            C.load(sys.argv[4])  # wasmtime's library (wasmtime-py's)
            _pagecache.advise_random([sys.argv[4]])
            settings = Settings(*sys.argv[5:9])
            worker = Worker(channel, sys.argv[2], settings, sys.argv[4])
            worker.ready = worker.instantiate(int(sys.argv[3]))
        except Exception as exc:  # noqa: BLE001
            cause = b"artifact" if isinstance(exc, ArtifactRefused) else b"start"
            channel.send(P.FATAL, cause + b"\n" + f"{type(exc).__name__}: {exc}".encode())
            return
        channel.send(P.READY, b"")
        worker.serve()
    except (BrokenPipeError, ConnectionError):
        pass  # the pool is gone or gave up on this worker: nothing to report to


if __name__ == "__main__":
    main()
