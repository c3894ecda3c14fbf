"""What the config allows: which tools are exposed, and how many calls per minute.

`blocked()` is asked when the catalog is built (a blocked tool is not listed, and a call of
it says which rule blocked it); `admit()` before every call (the per-minute caps, across
executions); `approval_rule()` before every call too (whether a person must approve it,
asked by the caller context's approver).
"""

from __future__ import annotations

import collections
import fnmatch
import time
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ErrorKind, ToolCallError

WINDOW_S = 60.0
"""The caps count calls in any window of this length."""


@dataclass(frozen=True)
class ApprovalRule:
    """Why a call needs a person's approval: the `setting` that says so, and how."""

    setting: str
    reason: str


class Policy:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._recent: dict[str, collections.deque[float]] = {}

    def blocked(self, server: str, tool: Any) -> str | None:
        """Why the config hides `tool` (an MCP Tool) of `server`, or None."""
        options = self.config.options(server)
        name = tool.name
        if options.allow is not None and not any(
            fnmatch.fnmatchcase(name, p) for p in options.allow
        ):
            return f"not in codemode.servers.{server}.allow ({', '.join(options.allow)})"
        for pattern in options.deny:
            if fnmatch.fnmatchcase(name, pattern):
                return f"matches {pattern!r} in codemode.servers.{server}.deny"
        read_only = options.read_only
        rule = f"codemode.servers.{server}.read_only"
        if read_only is None:
            read_only, rule = self.config.codemode.read_only, "codemode.read_only"
        annotations = tool.annotations
        if read_only and not (annotations and annotations.read_only_hint):
            return f"{rule} is on and the server does not mark {name!r} readOnlyHint"
        return None

    def approval_rule(self, server: str, name: str, tool: Any = None) -> ApprovalRule | None:
        """The setting that makes a person approve calls of `name` (`tool`: its MCP Tool,
        None when the server does not list it), or None when calls go without asking."""
        approve, setting = self.config.options(server).approve, f"codemode.servers.{server}.approve"
        if approve is None:
            approve, setting = self.config.codemode.approve, "codemode.approve"
        if approve is None:
            return None
        if approve == "all":
            return ApprovalRule(setting, f'{setting} is "all"')
        if approve == "writes":
            annotations = getattr(tool, "annotations", None)
            if annotations is not None and annotations.read_only_hint:
                return None
            why = "does not mark it" if tool is not None else "does not list it, so cannot mark it"
            return ApprovalRule(setting, f'{setting} is "writes" and the server {why} readOnlyHint')
        for pattern in approve:
            if fnmatch.fnmatchcase(name, pattern):
                return ApprovalRule(setting, f"{name!r} matches {pattern!r} in {setting}")
        return None

    def identity_rule(self, identity: str | None) -> tuple[str, Any] | None:
        """The `codemode.identities` entry that applies to a caller: (its key, policy)."""
        if identity is None:
            return None
        rules = self.config.codemode.identities
        if identity in rules:
            return identity, rules[identity]
        if "*" in rules:
            return "*", rules["*"]
        return None

    def identity_blocks(self, identity: str | None, server: str, tool: str) -> str | None:
        """Why `codemode.identities` keeps the caller from this tool (its servers, its tool
        rules), or None."""
        found = self.identity_rule(identity)
        return None if found is None else _blocks(found, identity, server, tool)

    def admit_identity(self, identity: str | None, server: str, tool: str) -> None:
        """What the caller may use (`codemode.identities`): its servers, its tool rules and
        its own per-minute cap; raises ToolCallError (PolicyBlocked) naming the rule."""
        found = self.identity_rule(identity)
        if found is None:
            return
        reason = _blocks(found, identity, server, tool)
        if reason is not None:
            raise self.refuse(server, tool, reason)
        key, rule = found
        if rule.max_tool_calls_per_minute is not None:
            cap = (f"identity:{identity}", rule.max_tool_calls_per_minute,
                   f"codemode.identities.{key}.max_tool_calls_per_minute")  # fmt: skip
            self._count([cap], server, tool)

    def refuse(self, server: str, tool: str, reason: str) -> ToolCallError:
        return ToolCallError(
            f"{server}.{tool} is blocked by policy: {reason}",
            ErrorKind.POLICY_BLOCKED,
            server=server,
            tool=tool,
        )

    def admit(self, server: str, tool: str) -> None:
        """Count one call against the per-minute caps (all servers, then this one), or
        raise ToolCallError (PolicyBlocked) naming the cap and when to retry. A refused
        call counts against none of them."""
        caps = [
            ("*", self.config.codemode.max_tool_calls_per_minute,
             "codemode.max_tool_calls_per_minute"),
            (server, self.config.options(server).max_calls_per_minute,
             f"codemode.servers.{server}.max_calls_per_minute"),
        ]  # fmt: skip
        self._count([(k, cap, rule) for k, cap, rule in caps if cap is not None], server, tool)

    def _count(self, caps: list[tuple[str, int, str]], server: str, tool: str) -> None:
        now = time.monotonic()
        windows = []
        for key, cap, rule in caps:
            window = self._recent.setdefault(key, collections.deque())
            while window and now - window[0] >= WINDOW_S:
                window.popleft()
            if len(window) >= cap:
                wait = WINDOW_S - (now - window[0])
                raise ToolCallError(
                    f"{server}.{tool} is blocked by policy: {rule} is {cap} and {cap} calls "
                    f"were made in the last 60 s; retry in {wait:.0f} s or raise the limit",
                    ErrorKind.POLICY_BLOCKED,
                    server=server,
                    tool=tool,
                    limit=rule,
                )
            windows.append(window)
        for window in windows:
            window.append(now)


def _blocks(found: tuple[str, Any], identity: str | None, server: str, tool: str) -> str | None:
    key, rule = found
    where = f"codemode.identities.{key}"
    if rule.servers is not None and not any(fnmatch.fnmatchcase(server, p) for p in rule.servers):
        return f"{identity!r} may use only the servers {', '.join(rule.servers)} ({where}.servers)"
    allowed = rule.allow.get(server)
    if allowed is not None and not any(fnmatch.fnmatchcase(tool, p) for p in allowed):
        return f"not in {where}.allow.{server} for {identity!r}"
    for pattern in rule.deny.get(server, []):
        if fnmatch.fnmatchcase(tool, pattern):
            return f"matches {pattern!r} in {where}.deny.{server} for {identity!r}"
    return None
