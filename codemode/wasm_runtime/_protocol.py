"""Frames between the pool (parent) and a worker process, over a socketpair.

A frame is a 5-byte header (payload length, big-endian u32; kind, one byte) and the
payload. Stdlib only: the worker imports this without the rest of codemode.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">IB")
SEQ = struct.Struct(">I")

# parent -> worker
EXECUTE = ord("E")  # JSON {"seq", "code", "options", "timeout_s", "memory_bytes", "keep",
#                     "catalog_id", "catalog"?}: "catalog" (JSON text) only when the
#                     worker was not sent that catalog before
COMPLETION = ord("C")  # SEQ + JSON {"id", "ok", "value" | "error"} (passed to the guest as is;
#                        "value" is the tool result itself, not a JSON string of it)

CLOCK = ord("K")  # SEQ + b"P" (a person is being asked: time spent waiting is not the
#                   program's) or b"R" (the last such question was answered)

# worker -> parent
READY = ord("Y")  # empty: the worker is ready
CALLS = ord("T")  # SEQ + the guest's batch JSON, unparsed: the parent validates it
RESULT = ord("R")  # JSON header line, b"\n", then the guest's outcome JSON
FATAL = ord("F")  # b"artifact" or b"start", b"\n", a UTF-8 message: the worker could not
#                   start ("artifact": wasmtime refused the compiled file itself)


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), kind) + payload
