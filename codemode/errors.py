"""Every error codemode raises, and the one vocabulary of error kinds, in one place.

`ErrorKind` is what went wrong, as a client or a program reads it (`error.kind` in the
execute_code result, `e.kind` of a ToolError in the program). Each kind says when it
happens and what to do. Lower layers map their own errors to a kind once, at their
boundary: the guest's outcome in `wasm_runtime`, the SDK's exceptions in
`tool_adapters._connection`, the two sides of the bridge in `server._host`.

`CodeModeError` is the root of what is raised. Errors that happen *inside* an execution
(a program's exception, a limit hit, a tool failure) are not raised to callers: they come
back as data in `ExecutionResult`, so the model can read them. What is raised is what stops
codemode itself: a bad config, a sandbox that cannot be built, a server that cannot start.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(str, enum.Enum):
    """What went wrong. The value is what clients and programs read."""

    help: str

    def __new__(cls, value: str, help: str) -> ErrorKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.help = help
        return member

    PROGRAM_ERROR = (
        "ProgramError",
        "The program raised an exception of its own (`type` names it): fix the code, "
        "following the traceback and the hint.",
    )
    SYNTAX_ERROR = (
        "SyntaxError",
        "The program is not valid Python: fix it at the line and column given.",
    )
    CHECK_FAILED = (
        "CheckFailed",
        "The pre-check found certain mistakes (unknown keywords, missing arguments, names "
        "defined nowhere) and nothing ran: fix each line listed.",
    )
    TOOL_ERROR = (
        "ToolError",
        "A tool reported an error: read its message; change the arguments or handle it with "
        "`except ToolError`.",
    )
    INVALID_ARGUMENTS = (
        "InvalidArguments",
        "Arguments were refused before anything was sent (against the tool's schema, or the "
        "request to execute_code itself): fix the parameter named.",
    )
    UNKNOWN_TOOL = (
        "UnknownTool",
        "No such server or tool: use a name from the catalog or tools.search().",
    )
    SERVER_UNAVAILABLE = (
        "ServerUnavailable",
        "The server is not running (it failed to start or stopped): see the reason; codemode "
        "retries it on the next call, with back-off.",
    )
    POLICY_BLOCKED = (
        "PolicyBlocked",
        "A rule in the config blocks this call (allow, deny, read_only, a per-minute cap): "
        "the message names the rule; change the config or do without the tool.",
    )
    DECLINED = (
        "Declined",
        "A person declined (or dismissed) the approval of this call, so it was not sent: "
        "do without it, or ask the user why before trying again.",
    )
    APPROVAL_UNAVAILABLE = (
        "ApprovalUnavailable",
        "The call needs a person's approval (the message names the setting) but the client "
        "cannot ask one (no elicitation support), so it was not sent: use a client that "
        "supports elicitation, or change the setting.",
    )
    APPROVAL_TIMEOUT = (
        "ApprovalTimeout",
        "Nobody answered the approval of this call within codemode.approval_timeout_s, so it "
        "was not sent: ask the user to answer, or raise the limit.",
    )
    TIMEOUT = (
        "Timeout",
        "A time limit passed (`limit`: timeout_s for the program, call_timeout_s for one "
        "call): do less per run, or raise the limit.",
    )
    LIMIT_EXCEEDED = (
        "LimitExceeded",
        "Another limit was reached (`limit` names it: max_tool_calls, max_code_bytes, "
        "memory_mb): do less per run, or raise the limit.",
    )
    DEADLOCK = (
        "Deadlock",
        "Every task waits and nothing can wake one: await only calls, sleeps and tasks that "
        "finish.",
    )
    RESULT_ERROR = (
        "ResultError",
        "The program's result could not be turned into JSON: return plain values.",
    )
    SANDBOX_FAILURE = (
        "SandboxFailure",
        "The sandbox's own runtime broke (its process died or trapped); nothing outside it "
        "was affected and the next run starts fresh: run again, and report it if it recurs.",
    )
    SANDBOX_UNAVAILABLE = (
        "SandboxUnavailable",
        "The sandbox could not be built or started: see the message, run `codemode doctor`.",
    )
    INTERNAL_ERROR = (
        "InternalError",
        "A bug in codemode: report it with the program that caused it.",
    )

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: Any, default: ErrorKind | None = None) -> ErrorKind:
        """The kind named `value`, or `default` (ToolError) for a name not in the list."""
        try:
            return cls(value)
        except ValueError:
            return default or cls.TOOL_ERROR


TOOL_CALL_KINDS = frozenset(
    {ErrorKind.TOOL_ERROR, ErrorKind.INVALID_ARGUMENTS, ErrorKind.UNKNOWN_TOOL,
     ErrorKind.SERVER_UNAVAILABLE, ErrorKind.POLICY_BLOCKED, ErrorKind.TIMEOUT,
     ErrorKind.LIMIT_EXCEEDED, ErrorKind.INTERNAL_ERROR, ErrorKind.DECLINED,
     ErrorKind.APPROVAL_UNAVAILABLE, ErrorKind.APPROVAL_TIMEOUT}
)  # fmt: skip
"""The kinds a single tool call can fail with (a ToolError's `kind` in the program)."""


class CodeModeError(Exception):
    """Base class of every error codemode raises."""


class ConfigError(CodeModeError):
    """The configuration file is missing, unreadable or invalid; the message names the
    file, the key path and the fix."""


class ServeError(CodeModeError):
    """`codemode serve` could not serve: its address could not be bound, for one."""


class SandboxError(CodeModeError):
    """The sandbox could not do its job (as opposed to the user's code failing in it)."""


class SandboxBuildError(SandboxError):
    """Building the WebAssembly component or compiling it to native code failed."""


class WorkerError(SandboxError):
    """A sandbox worker process could not start, or died in a way that was not a limit."""


class CallFailed(SandboxError):
    """A call across the bridge failed: what a `ToolHost` raises for the program to see as
    a ToolError. The sandbox's side of the contract; it knows nothing of MCP."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.TOOL_ERROR, **details: Any):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details


class DownstreamError(CodeModeError):
    """A downstream MCP server failed: it did not start, or a call to it failed."""


class ServerStartError(DownstreamError):
    """A downstream server did not start or did not complete MCP initialization."""


class ToolCallError(DownstreamError):
    """One tool call failed; `kind` (an ErrorKind of TOOL_CALL_KINDS) says how, and
    `details` carries server, tool and, for limits, the limit's name."""

    def __init__(
        self, message: str, kind: ErrorKind | str = ErrorKind.TOOL_ERROR, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = ErrorKind.of(kind)
        self.details = details
