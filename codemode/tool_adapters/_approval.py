"""Approvals: a person says yes before a call the config names is sent downstream.

`Policy.approval_rule()` says whether a call needs one; `approve()` asks through the
caller context's `ask` (MCP elicitation, however the client's protocol era carries it),
stops the execution's clock while the person decides, and either returns (the call goes
on) or raises ToolCallError: Declined (a "no" or a dismissal), ApprovalTimeout (no answer
in time), ApprovalUnavailable (the client cannot ask anyone). Nothing is sent downstream
unless it returns. The question names the server, the tool and the arguments, shortened
for reading (with the full arguments in a field of the form, and in `_meta`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..context import CURRENT_CALL, CallContext, Question
from ..errors import ErrorKind, ToolCallError
from ._policy import ApprovalRule

log = logging.getLogger("codemode.approvals")

MAX_SHOWN_STRING = 160
"""A string argument longer than this is shown cut, with its length."""
MAX_SHOWN_ARGUMENTS = 1200
"""The arguments are shown up to this many characters of JSON."""
MAX_SHOWN_ITEMS = 20
"""A list or object argument shows this many items, and how many more there are."""

REST_OF_RUN = "rest_of_run"
FULL = "full_arguments"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        REST_OF_RUN: {
            "type": "boolean",
            "title": "Also approve this tool's other calls in this run",
            "default": False,
        }
    },
}
"""The form: accept to approve (ticking the box approves the tool for the rest of the run),
decline or dismiss to refuse."""


def _shorten(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str) and len(value) > MAX_SHOWN_STRING:
        return f"{value[:MAX_SHOWN_STRING]}… ({len(value):,} characters)"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): _shorten(v, depth + 1) for k, v in items[:MAX_SHOWN_ITEMS]}
        if len(items) > MAX_SHOWN_ITEMS:
            out["…"] = f"{len(items) - MAX_SHOWN_ITEMS} more keys"
        return out
    if isinstance(value, list):
        shown = [_shorten(v, depth + 1) for v in value[:MAX_SHOWN_ITEMS]]
        if len(value) > MAX_SHOWN_ITEMS:
            shown.append(f"… {len(value) - MAX_SHOWN_ITEMS} more items")
        return shown
    return value


def shown_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as a person reads them: JSON, long strings and lists cut (each cut
    says how much it left out), the whole cut at MAX_SHOWN_ARGUMENTS."""
    shown = _shorten(arguments)
    text = json.dumps(shown, ensure_ascii=False, default=str)
    if len(text) > 100:  # one argument per line reads better than one long line
        text = json.dumps(shown, ensure_ascii=False, indent=1, default=str)
    if len(text) > MAX_SHOWN_ARGUMENTS:
        full = len(json.dumps(arguments, ensure_ascii=False, default=str))
        text = f"{text[:MAX_SHOWN_ARGUMENTS]}… (shortened; {full:,} characters in all)"
    return text


def question(server: str, tool: str, label: str, arguments: dict[str, Any], rule: str) -> Question:
    """The question for one call. When the arguments are shown shortened, the form also
    carries them in full, as a text field's value (every client that renders the form
    shows it; 2026-07-28 input requests carry no `_meta`)."""
    shown = shown_arguments(arguments)
    full = json.dumps(arguments, ensure_ascii=False, indent=1, default=str)
    schema = SCHEMA
    if shown != json.dumps(arguments, ensure_ascii=False, default=str) and shown != full:
        schema = {"type": "object", "properties": {**SCHEMA["properties"], FULL: {
            "type": "string",
            "title": "The call's full arguments (to read; changes are ignored)",
            "default": full,
        }}}  # fmt: skip
        shown += "\n(shortened: the form's last field holds the full arguments)"
    message = (
        f"A program run by codemode wants to call {tool!r} on the server {server!r} "
        f"({label}), with these arguments:\n{shown}\n\n"
        f"Approve this call? (asked because {rule})"
    )
    meta = {"codemode/call": {"server": server, "tool": tool, "arguments": arguments}}
    return Question(message, schema, meta)


async def approve(
    rule: ApprovalRule | None,
    server: str,
    tool: str,
    label: str,
    arguments: dict[str, Any],
    context: CallContext | None,
    timeout_s: float,
) -> None:
    """Return when the call may be sent (no rule, or a person approved it); else raise
    ToolCallError naming what happened. `rule`: the setting that asks (Policy)."""
    if rule is None:
        return
    details = {"server": server, "tool": tool}
    setting, why = rule.setting, rule.reason
    if context is None or context.ask is None:
        who = (
            "this client cannot ask one (it declared no MCP elicitation support, or its "
            "connection takes no server requests)"
            if context is not None and context.client is not None
            else "no MCP client is there to ask one (`codemode run` has none)"
        )
        raise ToolCallError(
            f"{label} needs a person's approval ({why}), but {who}: the call was not sent. "
            f"Use a client with elicitation support, or change {setting}.",
            ErrorKind.APPROVAL_UNAVAILABLE,
            **details,
        )
    stats = context.approvals
    mark = CURRENT_CALL.get()
    if (server, tool) in stats.rest_of_run:
        if mark is not None:
            mark.approved = True
        return
    stats.asked += 1
    try:
        answer = await context.ask_person(question(server, tool, label, arguments, why))
    except TimeoutError:
        raise ToolCallError(
            f"{label} needed a person's approval ({why}) and none came within "
            f"codemode.approval_timeout_s ({timeout_s:g} s): the call was not sent.",
            ErrorKind.APPROVAL_TIMEOUT,
            **details,
        ) from None
    except ToolCallError:
        raise
    except Exception as exc:  # noqa: BLE001 - the client failed to ask: fail closed
        log.info("an approval could not be asked: %r", exc)
        raise ToolCallError(
            f"{label} needs a person's approval ({why}), but the client could not ask "
            f"({exc}): the call was not sent.",
            ErrorKind.APPROVAL_UNAVAILABLE,
            **details,
        ) from None
    if answer.action == "accept":
        stats.granted += 1
        if mark is not None:
            mark.approved = True
        if answer.content.get(REST_OF_RUN) is True:
            stats.rest_of_run.add((server, tool))
        return
    stats.declined += 1
    how = "declined" if answer.action == "decline" else "dismissed without an answer"
    raise ToolCallError(
        f"{label} was {how} by the person asked to approve it: the call was not sent.",
        ErrorKind.DECLINED,
        action=answer.action,
        **details,
    )
