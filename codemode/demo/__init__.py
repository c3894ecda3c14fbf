"""Built-in demo MCP servers with the product brief's data, for `codemode demo` and tests."""
