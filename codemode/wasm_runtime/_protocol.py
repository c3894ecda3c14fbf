"""Frames between the pool (parent) and a worker process, over a socketpair.

A frame is a 5-byte header (payload length, big-endian u32; kind, one byte) and the
payload. Payloads are binary: fixed fields, then length-prefixed byte strings (`FIELD`),
so a worker reads a request without a JSON parser and writes a result without an encoder.
Two workers speak this: the native one (`worker.c`) and the Python one (`_worker.py`);
every decision about what a result means (which trap is which, what to tell the user)
is the parent's. Stdlib only: the Python worker imports this without the rest of codemode.
"""

from __future__ import annotations

import json
import struct

HEADER = struct.Struct(">IB")
SEQ = struct.Struct(">I")
FIELD = struct.Struct(">I")  # the length of the byte string that follows

HOST_INTERFACE = "codemode:sandbox/host"
"""The interface the guest imports its `wait` from, as guest/wit/sandbox.wit names it
(`worker.c` spells it too)."""

# parent -> worker
EXECUTE = ord("E")  # EXECUTE_HEAD, then fields: catalog id, code, options (JSON text);
#                     with HAS_CATALOG, two more: the catalog (JSON text) and the options
#                     of the warm-up that prepares a new instance with it. The catalog
#                     only comes when the worker was not sent it before.
EXECUTE_HEAD = struct.Struct(">IQdQBB")  # seq, memory bytes, timeout s, stdout bytes kept,
#                                          keep the instance (0/1), HAS_CATALOG (0/1)
COMPLETION = ord("C")  # SEQ + JSON {"id", "ok", "value" | "error"} (passed to the guest as is;
#                        "value" is the tool result itself, not a JSON string of it)

CLOCK = ord("K")  # SEQ + b"P" (a person is being asked: time spent waiting is not the
#                   program's) or b"R" (the last such question was answered)

# worker -> parent
READY = ord("Y")  # empty: the worker is ready
CALLS = ord("T")  # SEQ + the guest's batch JSON, unparsed: the parent validates it
RESULT = ord("R")  # RESULT_HEAD, fields: the trap's message, stdout (bytes as written);
#                    then the rest: the guest's outcome JSON (empty after a trap)
RESULT_HEAD = struct.Struct(">IQBB")  # crossings, stdout bytes dropped, kept (0/1), TRAP_*
FATAL = ord("F")  # b"artifact" or b"start", b"\n", a UTF-8 message: the worker could not
#                   start ("artifact": wasmtime refused the compiled file itself)

TRAP_NONE = 0
TRAP_WASM = 1  # wasmtime's error, as it said it (the parent classifies it)
TRAP_HOST = 2  # something else failed in the worker ("Type: message")


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), kind) + payload


def fields(*parts: bytes) -> bytes:
    return b"".join(FIELD.pack(len(part)) + part for part in parts)


def read_fields(payload: bytes, offset: int, count: int) -> tuple[list[bytes], int]:
    """`count` fields from `offset`, and the offset after them."""
    out = []
    for _ in range(count):
        (size,) = FIELD.unpack_from(payload, offset)
        offset += FIELD.size
        if offset + size > len(payload):
            raise ValueError("a frame's field runs past its end")
        out.append(payload[offset : offset + size])
        offset += size
    return out, offset


def execute_payload(
    seq: int,
    code: str,
    options: str,
    *,
    timeout_s: float,
    memory_bytes: int,
    max_stdout_bytes: int,
    keep: bool,
    catalog_id: str,
    catalog: str | None = None,
) -> bytes:
    """An EXECUTE frame's payload (with the catalog when `catalog` is given). Text that
    is not valid UTF-8 (a lone surrogate) is replaced: the guest takes only UTF-8."""
    head = EXECUTE_HEAD.pack(
        seq, memory_bytes, timeout_s, max_stdout_bytes, bool(keep), catalog is not None
    )
    parts = [catalog_id, code, options]
    if catalog is not None:
        parts += [catalog, prepare_options(catalog_id)]
    return head + fields(*(part.encode("utf-8", "replace") for part in parts))


def parse_result(payload: bytes) -> tuple[int, int, bool, int, str, str, bytes]:
    """A RESULT frame: (crossings, stdout bytes dropped, kept, TRAP_*, the trap's message,
    stdout, the guest's outcome JSON)."""
    crossings, dropped, kept, trap = RESULT_HEAD.unpack_from(payload)
    (message, stdout), end = read_fields(payload, RESULT_HEAD.size, 2)
    text, out = message.decode("utf-8", "replace"), stdout.decode("utf-8", "replace")
    return crossings, dropped, bool(kept), trap, text, out, payload[end:]


# -- what a worker is started with (the same for both workers) ---------------------------

WARMUP_CODE = "import asyncio\nawait asyncio.sleep(0)\nprint(end='')\n[1][0]"
"""Run on every new instance while the worker is idle, before any user code: the first
call into a fresh instance pays for page faults on the heap snapshot (~2 ms); this pays
it ahead. It is our fixed program, so no user state can be carried by it."""
WARMUP_LIMITS = {"max_stdout_bytes": 1, "max_result_bytes": 64}
EMPTY_CATALOG = '{"functions": [], "namespaces": []}'

SPIN_S = 0.0003
"""How long a guest waiting on its tool calls polls the socket before it sleeps. Waking a
sleeping process costs ~0.1 ms here (a socket round trip between two processes: 165 us
asleep, 48 us polling), which is most of a fast tool call."""
QUICK_S = 0.00075
"""A worker polls only while answers come within this (in-process tools, caches; sleeping
adds its wake-up to what is measured, so this is longer than SPIN_S); after an answer
that took longer (a real downstream server, a timer) it sleeps at once, so slow tools
cost it no CPU, until answers come this fast again."""


def prepare_options(catalog_id: str | None) -> str:
    """The warm-up's options for an instance that is to hold `catalog_id`'s catalog."""
    return json.dumps({"catalog_id": catalog_id, "limits": WARMUP_LIMITS, "prepare": True})


def settings(
    engine: tuple[bool, int | None, int | None], tick_s: float, resident_bytes: int
) -> str:
    """A worker's SETTINGS argument: "epoch,strategy,opt_level,tick_us,spin_us,quick_us,
    resident_bytes" (-1: wasmtime's default), from `_engine.engine_settings`, the timings
    here and how much of an instance's memory stays resident between runs (0: none, and
    wasmtime's on-demand allocator; see worker.c's `pool_instances`)."""
    epoch, strategy, opt_level = engine
    numbers = (
        int(epoch),
        -1 if strategy is None else strategy,
        -1 if opt_level is None else opt_level,
        round(tick_s * 1e6),
        round(SPIN_S * 1e6),
        round(QUICK_S * 1e6),
        max(0, int(resident_bytes)),
    )
    return ",".join(map(str, numbers))


def parse_settings(text: str) -> tuple[bool, int | None, int | None, float, float, float, int]:
    epoch, strategy, opt, tick, spin, quick, resident = (int(n) for n in text.split(","))
    return (
        bool(epoch),
        None if strategy < 0 else strategy,
        None if opt < 0 else opt,
        tick / 1e6,
        spin / 1e6,
        quick / 1e6,
        resident,
    )
