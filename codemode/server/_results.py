"""An execution's outcome as an MCP tool result: short text for the model, plus
`structuredContent` under `OUTPUT_SCHEMA` for clients and programs that read it."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorKind
from ..wasm_runtime import MAX_CALL_RECORDS, ExecutionError, ExecutionResult

_COUNT = {"type": "integer", "minimum": 0}

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "result": {"description": "The program's return value (any JSON value)."},
        "stdout": {"type": "string", "description": "What the program printed."},
        "error": {
            "description": "null on success; else what stopped the program.",
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                        "traceback": {
                            "type": "string",
                            "description": "Frames of the submitted code, with its line numbers.",
                        },
                        "line": {"type": ["integer", "null"]},
                        "limit": {
                            "type": ["string", "null"],
                            "description": "The limit that stopped the program, if one did.",
                        },
                        "hint": {
                            "type": ["string", "null"],
                            "description": "The fix, when the error is a known mistake.",
                        },
                        "kind": {
                            "enum": [k.value for k in ErrorKind],
                            "description": "What went wrong, in codemode's one vocabulary "
                            "of error kinds (the same as a ToolError's `kind` in the program).",
                        },
                    },
                    "required": ["type", "message", "traceback"],
                },
            ],
        },
        "stats": {
            "type": "object",
            "properties": {
                "tool_calls": _COUNT,
                "crossings": _COUNT,
                "bytes_from_tools": _COUNT,
                "bytes_returned": _COUNT,
                "duration_ms": {"type": "number"},
                "queue_ms": {
                    "type": "number",
                    "description": "ms spent waiting for a sandbox worker before the run "
                    "started (not part of duration_ms).",
                },
                "approvals": {
                    "type": "object",
                    "description": "Approvals a person was asked for, granted and declined "
                    "(declined counts dismissals too), and the ms spent waiting on them "
                    "(part of duration_ms, not of the program's timeout).",
                    "properties": {
                        "asked": _COUNT,
                        "granted": _COUNT,
                        "declined": _COUNT,
                        "waited_ms": {"type": "number"},
                    },
                    "required": ["asked", "granted", "declined", "waited_ms"],
                },
            },
            "required": [
                "tool_calls",
                "crossings",
                "bytes_from_tools",
                "bytes_returned",
                "duration_ms",
            ],
        },
        "calls": {
            "type": "array",
            "description": f"The first {MAX_CALL_RECORDS} tool calls, in the order they ended.",
            "items": {
                "type": "object",
                "properties": {
                    "tool": {"type": "string"},
                    "ms": {"type": "number"},
                    "ok": {"type": "boolean"},
                    "approved": {
                        "type": "boolean",
                        "description": "A person approved the call before it was sent.",
                    },
                },
                "required": ["tool", "ms", "ok", "approved"],
            },
        },
        "calls_dropped": {**_COUNT, "description": "Calls made but not listed in `calls`."},
        "session": {
            "description": "The session the program ran in (null without one): its name, "
            "calls so far, seconds until it expires when idle, and the handle to pass as "
            "`session` where the transport needs one.",
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "calls": _COUNT,
                        "expires_in_s": {"type": "number"},
                        "handle": {"type": "string"},
                    },
                    "required": ["name", "calls", "expires_in_s"],
                },
            ],
        },
        "notes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Likely mistakes that did not stop the program (a call never "
            "awaited, no result).",
        },
    },
    "required": ["result", "stdout", "error", "stats", "calls", "calls_dropped"],
}


NO_RESULT_NOTE = (
    "the program returned None and printed nothing: end it with `return value` (or a final "
    "expression) to see its result"
)


def notes(result: ExecutionResult, in_session: bool = False) -> list[str]:
    """The result's notes, plus one when a program that worked gave nothing to read (not
    in a session, where a call that only sets names up is the point)."""
    extra = []
    if result.ok and result.result is None and not result.stdout and not in_session:
        extra.append(NO_RESULT_NOTE)
    return [*result.notes, *extra]


def structured(result: ExecutionResult, session: Any = None) -> dict[str, Any]:
    error = None
    if result.error is not None:
        e = result.error
        error = {
            "type": e.type,
            "message": e.message,
            "traceback": e.traceback,
            "line": e.line,
            "limit": e.limit,
            "hint": e.hint,
            "kind": (e.kind or ErrorKind.PROGRAM_ERROR).value,
        }
    s = result.stats
    return {
        "result": result.result,
        "stdout": result.stdout,
        "error": error,
        "stats": {
            "tool_calls": s.tool_calls,
            "crossings": s.crossings,
            "bytes_from_tools": s.bytes_from_tools,
            "bytes_returned": s.bytes_returned,
            "duration_ms": round(s.duration_ms, 2),
            "queue_ms": round(s.queue_ms, 2),
            "approvals": {
                "asked": s.approvals_asked,
                "granted": s.approvals_granted,
                "declined": s.approvals_declined,
                "waited_ms": round(s.waited_ms, 2),
            },
        },
        "calls": [
            {"tool": c.tool, "ms": round(c.ms, 2), "ok": c.ok, "approved": c.approved}
            for c in result.calls
        ],
        "calls_dropped": result.calls_dropped,
        "session": session.to_json() if session is not None else None,
        "notes": notes(result, session is not None),
    }


def error_text(error: ExecutionError) -> str:
    """The traceback (the submitted code's frames), ending with `Type: message`."""
    trace = error.traceback.rstrip("\n")
    head = f"{error.type}: {error.message}"
    last = trace.rsplit("\n", 1)[-1]
    shown = head in trace or (error.type == "SyntaxError" and last.startswith("SyntaxError:"))
    text = f"{trace}\n{head}" if trace and not shown else trace or head
    return f"{text}\nHint: {error.hint}" if error.hint else text


def text(result: ExecutionResult, session: Any = None) -> str:
    """What the model reads: the result (JSON), what was printed, the error, one stats line."""
    parts = []
    if result.error is None:
        parts.append(result.result_json if result.result is not None or not result.stdout else "")
    if result.stdout:
        parts.append("printed:\n" + result.stdout.rstrip("\n"))
    if result.error is not None:
        parts.append(error_text(result.error))
    if result.stats.duration_ms:  # not for a request refused before anything ran
        parts += [f"Note: {note}" for note in notes(result, session is not None)]
    s = result.stats
    if s.duration_ms:  # not for a request refused before anything ran
        calls = f"{s.tool_calls} tool call{'s' * (s.tool_calls != 1)}"
        if s.approvals_asked:
            calls += (
                f", {s.approvals_asked} approval{'s' * (s.approvals_asked != 1)} asked "
                f"({s.approvals_granted} granted, {s.approvals_declined} declined)"
            )
        where = (
            f", session {session.handle or session.name!r} call {session.calls}" if session else ""
        )
        parts.append(f"[{calls}, {s.duration_ms:.0f} ms{where}{'' if result.ok else ', failed'}]")
    return "\n".join(p for p in parts if p)
