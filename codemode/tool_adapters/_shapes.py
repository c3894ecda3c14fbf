"""Learned output shapes: what a tool without a useful `outputSchema` really returns.

Most tools declare no output schema (or one that says only "an object"), so their
signatures would say `-> Any` or `-> dict`, and a model guesses (and often wraps, unwraps
or decodes wrongly). codemode records the shape of real results instead: field names and
types, list element shapes, and for text results that they are text plus a short sample
of their format (`"Commit: <sha>\\nAuthor: ..."`, with values that vary replaced by
placeholders). Nothing else of a result is kept.

A shape is keyed by server, tool and a fingerprint of the tool's schemas (a changed tool
is learned anew), kept in `shapes.json` in the cache dir with owner-only permissions,
bounded to `MAX_ENTRIES` tools, and turned off with `codemode.learn_shapes: false`.
Shapes only grow more general (a field missing from one result becomes optional; a second
type becomes a union), so the catalog changes when a shape is first learned or widens,
never back and forth; the first text sample is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from .._paths import cache_dir, private_dir

log = logging.getLogger("codemode.shapes")

MAX_ENTRIES = 1000
"""Tools whose shapes are kept; past it the longest-learned are forgotten first."""
MAX_FIELDS = 30
"""Fields recorded per object (the catalog shows the first 12)."""
SHOWN_FIELDS = 12
MAX_DEPTH = 4
"""Nesting recorded; deeper values are `Any`."""
LIST_SAMPLE = 20
"""Elements of a list whose shapes are merged into its element shape."""
MAX_UNION = 3
"""Alternatives kept before a value's shape becomes `Any`."""
SAMPLE_LINES = 3
SAMPLE_CHARS = 72
STABLE_AFTER = 50
"""Calls in a row that did not change a shape; after that one call in `SPOT_CHECK` is
looked at, so a hot tool pays almost nothing."""
SPOT_CHECK = 25

_PLACEHOLDERS = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"),
     "<datetime>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<email>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
     "<uuid>"),
    (re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,64}\b"), "<sha>"),
    (re.compile(r"(?<![\w<])-?\d+(\.\d+)?(?![\w>])"), "<n>"),
]  # fmt: skip
_KEY_VALUE = re.compile(r"^(\s*[A-Za-z][\w .\-/]{0,30}:)\s+(.+)$")


def shapes_file() -> Path:
    override = os.environ.get("CODEMODE_SHAPES_FILE")
    return Path(override).expanduser() if override else cache_dir() / "shapes.json"


def vague(annotation: str) -> bool:
    """Whether a declared return type says nothing about fields (no outputSchema gives
    "Any"; `dict[str, Any]` gives "dict"): such tools get a learned shape."""
    return annotation in ("Any", "dict", "list", "list[dict]", "list[Any]", "dict | None")


def fingerprint(input_schema: Any, output_schema: Any) -> str:
    text = json.dumps([input_schema, output_schema], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- shapes: JSON values of {"t": kind, ...} -----------------------------------------------


def shape_of(value: Any, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        return {"t": "any"}
    if value is None:
        return {"t": "null"}
    if isinstance(value, bool):
        return {"t": "bool"}
    if isinstance(value, int):
        return {"t": "int"}
    if isinstance(value, float):
        return {"t": "float"}
    if isinstance(value, str):
        return {"t": "str"}
    if isinstance(value, list):
        item = None
        for element in value[:LIST_SAMPLE]:
            shape = shape_of(element, depth + 1)
            item = shape if item is None else merge(item, shape)
        return {"t": "list", "i": item}
    if isinstance(value, dict):
        fields = {
            str(k): [shape_of(v, depth + 1), True] for k, v in list(value.items())[:MAX_FIELDS]
        }
        return {"t": "dict", "f": fields, "more": len(value) > MAX_FIELDS}
    return {"t": "any"}


def _members(shape: dict[str, Any]) -> list[dict[str, Any]]:
    return list(shape["of"]) if shape["t"] == "union" else [shape]


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The shape of values that are either `a` or `b` (only ever more general)."""
    if a == b:
        return a
    kinds = {a["t"], b["t"]}
    if "any" in kinds:
        return {"t": "any"}
    if kinds == {"int", "float"}:
        return {"t": "float"}
    if a["t"] == b["t"] == "list":
        ia, ib = a.get("i"), b.get("i")
        return {"t": "list", "i": ib if ia is None else ia if ib is None else merge(ia, ib)}
    if a["t"] == b["t"] == "dict":
        fields: dict[str, list[Any]] = {}
        for name in [*a["f"], *(k for k in b["f"] if k not in a["f"])][:MAX_FIELDS]:
            fa, fb = a["f"].get(name), b["f"].get(name)
            if fa is None or fb is None:
                fields[name] = [(fa or fb)[0], False]
            else:
                fields[name] = [merge(fa[0], fb[0]), fa[1] and fb[1]]
        return {"t": "dict", "f": fields, "more": bool(a.get("more") or b.get("more"))}
    if a["t"] == b["t"] == "str":
        return a  # the first sample stays
    members = _members(a)
    for other in _members(b):
        for i, mine in enumerate(members):
            if mine["t"] == other["t"] or {mine["t"], other["t"]} == {"int", "float"}:
                members[i] = merge(mine, other)
                break
        else:
            members.append(other)
    if len(members) > MAX_UNION:
        return {"t": "any"}
    return {"t": "union", "of": members} if len(members) > 1 else members[0]


def render(shape: dict[str, Any] | None) -> str:
    """A Python-style annotation, in the catalog's TypedDict-style notation."""
    if shape is None:
        return "Any"
    kind = shape["t"]
    if kind in ("str", "int", "float", "bool"):
        return kind
    if kind == "null":
        return "None"
    if kind == "list":
        return f"list[{render(shape['i'])}]" if shape.get("i") else "list"
    if kind == "dict":
        fields = list(shape["f"].items())
        if not fields:
            return "dict"
        parts = [f"{n}{'' if req else '?'}: {render(s)}" for n, (s, req) in fields[:SHOWN_FIELDS]]
        more = ", ..." if len(fields) > SHOWN_FIELDS or shape.get("more") else ""
        return "{" + ", ".join(parts) + more + "}"
    if kind == "union":
        parts = sorted((render(m) for m in shape["of"]), key=lambda p: p == "None")
        return " | ".join(parts)
    return "Any"


def _generalize(value: str) -> str:
    for pattern, placeholder in _PLACEHOLDERS:
        value = pattern.sub(placeholder, value)
    return value if len(value) <= 28 else value[:27] + "…"


def text_sample(text: str) -> str:
    """The format of a text result: its first lines, with what varies replaced."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    out = []
    for line in lines[:SAMPLE_LINES]:
        match = _KEY_VALUE.match(line)
        if match:
            out.append(f"{match.group(1)} {_generalize(match.group(2))}")
        else:
            out.append(_generalize(line))
    if len(lines) > SAMPLE_LINES:
        out.append("...")
    sample = json.dumps("\n".join(out), ensure_ascii=False)
    return sample if len(sample) <= SAMPLE_CHARS else sample[: SAMPLE_CHARS - 2] + '…"'


# -- the store ----------------------------------------------------------------------


class ShapeStore:
    """Learned shapes, read at start and written when one changes. `path` None: in
    memory only. A file that cannot be read is ignored (and rewritten); one that cannot
    be written is logged once, and learning goes on in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._streak: dict[str, int] = {}
        self._calls: dict[str, int] = {}
        self._warned = False
        if path is not None:
            self._load(path)

    @staticmethod
    def _key(server: str, tool: str, fp: str) -> str:
        return f"{server}\x1f{tool}\x1f{fp}"

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data.get("shapes", {}) if data.get("version") == 1 else {}
            self._entries = {
                k: v
                for k, v in entries.items()
                if isinstance(v, dict) and isinstance(v.get("shape"), dict)
            }
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring the learned shapes in %s: %s", path, exc)

    def get(self, server: str, tool: str, fp: str) -> tuple[str, str] | None:
        """(annotation, text sample or "") for a learned tool, else None."""
        entry = self._entries.get(self._key(server, tool, fp))
        if entry is None:
            return None
        return render(entry["shape"]), str(entry.get("sample") or "")

    def observe(self, server: str, tool: str, fp: str, value: Any) -> bool:
        """Record one result; True when what the catalog shows for the tool changed."""
        key = self._key(server, tool, fp)
        if self._streak.get(key, 0) >= STABLE_AFTER:
            self._calls[key] = self._calls.get(key, 0) + 1
            if self._calls[key] % SPOT_CHECK:
                return False
        entry = self._entries.get(key)
        shape = shape_of(value)
        if entry is None:
            sample = text_sample(value) if isinstance(value, str) else ""
            entry = {"shape": shape, "sample": sample, "learned": time.time()}
            changed = True
        else:
            merged = merge(entry["shape"], shape)
            changed = render(merged) != render(entry["shape"])
            entry = {**entry, "shape": merged}
        self._entries[key] = entry
        if not changed:
            self._streak[key] = self._streak.get(key, 0) + 1
            return False
        self._streak[key] = 0
        self._bound()
        self._save()
        return True

    def _bound(self) -> None:
        if len(self._entries) <= MAX_ENTRIES:
            return
        oldest = sorted(self._entries, key=lambda k: self._entries[k].get("learned", 0))
        for key in oldest[: len(self._entries) - MAX_ENTRIES]:
            del self._entries[key]

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            folder = private_dir(self.path.parent)
            fd, tmp = tempfile.mkstemp(prefix=".shapes-", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
                    json.dump({"version": 1, "shapes": self._entries}, f)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            if not self._warned:
                log.warning("learned shapes are kept in memory only: %s", exc)
                self._warned = True
