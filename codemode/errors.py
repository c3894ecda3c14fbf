"""Every error codemode raises to its callers, in one place.

`CodeModeError` is the root. Errors that happen *inside* an execution (a guest exception,
a limit hit, a tool failure) are not raised: they come back as data in `ExecutionResult`
so the model can read them. What is raised here is what stops codemode itself from doing
its job: a bad config, a sandbox that cannot be built, a downstream server that cannot start.
"""

from __future__ import annotations


class CodeModeError(Exception):
    """Base class of every error codemode raises."""


class ConfigError(CodeModeError):
    """The configuration file is missing, unreadable or invalid; the message names the
    file, the key path and the fix."""


class SandboxError(CodeModeError):
    """The sandbox could not do its job (as opposed to the user's code failing in it)."""


class SandboxBuildError(SandboxError):
    """Building the WebAssembly component or compiling it to native code failed."""


class WorkerError(SandboxError):
    """A sandbox worker process could not start, or died in a way that was not a limit."""


class ServeError(CodeModeError):
    """`codemode serve` could not serve: its address could not be bound, for one."""


class DownstreamError(CodeModeError):
    """A downstream MCP server failed: it did not start, or a call to it failed."""


class ServerStartError(DownstreamError):
    """A downstream server did not start or did not complete MCP initialization."""


class ToolCallError(DownstreamError):
    """One tool call failed. `kind` says how (ToolError, InvalidArguments, Timeout,
    ServerUnavailable, PolicyBlocked, LimitExceeded); `details` carries server and tool."""

    def __init__(self, message: str, kind: str = "ToolError", **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details
