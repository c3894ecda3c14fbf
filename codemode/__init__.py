"""codemode: an MCP server that runs one program instead of dozens of tool calls."""

__version__ = "0.1.0"
