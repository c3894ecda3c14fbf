"""An execution's outcome as the host reads it: the result as JSON, or the error with the
submitted code's frames, its line and a hint."""

import dataclasses
import datetime
import decimal
import fractions
import json
import re
import traceback
import types

from _cm_api import CODE_FILENAME, Calls
from _cm_bridge import ToolError
from _cm_hints import hint_for

_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` as valid Unicode: lone surrogates (which Python strings may hold, but which
    neither the component model nor the MCP client's JSON can carry) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


def _jsonable_result(value):
    if isinstance(value, (types.GeneratorType, map, filter, zip, range, reversed)) or (
        type(value).__name__ in ("dict_keys", "dict_values", "dict_items")
    ):
        return list(value)  # a lazy sequence: what it yields is the result
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "backslashreplace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (decimal.Decimal, fractions.Fraction)):
        return float(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    return repr(value)


def _user_frames(tb) -> traceback.StackSummary:
    return traceback.StackSummary.from_list(
        [f for f in traceback.extract_tb(tb) if f.filename == CODE_FILENAME]
    )


def _leaf(group: BaseExceptionGroup) -> BaseException:  # noqa: F821 - the guest is 3.14
    first = group.exceptions[0]
    return _leaf(first) if isinstance(first, BaseExceptionGroup) else first  # noqa: F821


def error(exc: BaseException, code: str) -> dict:
    """The error dict of an uncaught exception (the shape `ExecutionError` reads). An
    exception group (a TaskGroup's) is reported as its first error, which says what
    went wrong; the message counts the others."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # noqa: F821
        leaf = _leaf(exc)
        out = error(leaf, code)
        others = len(exc.exceptions) - 1
        also = f"; and {others} more error(s) in the same group" if others else ""
        out["message"] = f"{out['message']} (in {exc.message}{also})"
        return out
    name = type(exc).__name__
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = "".join(traceback.format_exception_only(type(exc), exc))
        out = {
            "type": name,
            "message": f"{exc.msg} ({where})",
            "traceback": text,
            "line": exc.lineno,
            "column": exc.offset,
        }
        hint = hint_for(exc, exc.text or "", code)
        return {**out, "hint": hint} if hint else out
    frames = _user_frames(exc.__traceback__)
    lines = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    message = str(exc) if not isinstance(exc, KeyError) else repr(exc.args[0]) if exc.args else ""
    out = {
        "type": "ToolError" if isinstance(exc, ToolError) else name,
        "message": message,
        "traceback": "".join(lines),
        "line": frames[-1].lineno if frames else None,
    }
    if isinstance(exc, ToolError):
        out["kind"], out["details"] = exc.kind, exc.details
    hint = hint_for(exc, (frames[-1].line or "") if frames else "", code)
    if hint:
        out["hint"] = hint
    return out


def unawaited_notes() -> list[str]:
    counts: dict[tuple, int] = {}
    for path, line in Calls.unawaited():
        counts[(path, line)] = counts.get((path, line), 0) + 1
    notes = []
    for (path, line), n in counts.items():
        where = f"line {line}: " if line else ""
        times = f" ({n} calls)" if n > 1 else ""
        notes.append(
            f"{where}{path}() was called without `await`{times}, so it never ran; write "
            f"`await {path}(...)`"
        )
    return notes[:5]


_encode_result = json.JSONEncoder(ensure_ascii=False, default=_jsonable_result).encode
_encode_outcome = json.JSONEncoder(ensure_ascii=False, default=repr).encode
"""Made once (json.dumps with arguments builds an encoder per call)."""


def encode(outcome: dict, max_result_bytes: int) -> str:
    try:
        result_text = _encode_result(outcome["result"])
    except (ValueError, TypeError, RecursionError) as exc:
        outcome["ok"] = False
        outcome["error"] = {
            "type": "ResultError",
            "message": f"the result could not be converted to JSON: {exc}",
            "traceback": "",
            "hint": "return plain values: dicts, lists, str, numbers, bool or None",
        }
        result_text = "null"
    result_text = valid_text(result_text)
    outcome["result"] = None
    size = len(result_text.encode("utf-8", "surrogatepass"))
    outcome["result_bytes"] = size
    if size > max_result_bytes:
        outcome["result_truncated"] = result_text.encode("utf-8", "surrogatepass")[
            :max_result_bytes
        ].decode("utf-8", "ignore")
        result_text = "null"
    outcome["result_json"] = result_text
    return valid_text(_encode_outcome(outcome))
