"""The config file: shapes users already have, ${VAR}, and errors that name key and fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from codemode.config import load_config, parse_config
from codemode.errors import ConfigError


def test_claude_desktop_shape_with_stdio_and_http_servers():
    config = parse_config(
        {
            "mcpServers": {
                "git": {
                    "command": "uvx",
                    "args": ["mcp-server-git"],
                    "env": {"A": "1"},
                    "cwd": "/tmp",
                },
                "remote": {
                    "url": "http://127.0.0.1:9/mcp",
                    "headers": {"Authorization": "Bearer x"},
                },
            }
        }
    )
    assert config.servers["git"].transport == "stdio" and config.servers["git"].env == {"A": "1"}
    assert config.servers["remote"].transport == "http"


def test_vs_code_shape_with_types():
    config = parse_config(
        {
            "servers": {
                "a": {"type": "stdio", "command": "x"},
                "b": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
            },
            "inputs": [],
        }
    )
    assert config.servers["a"].transport == "stdio" and config.servers["b"].transport == "http"


def test_env_vars_expand_and_a_missing_one_is_named(monkeypatch):
    monkeypatch.setenv("TOKEN_FOR_TEST", "s3cret")
    config = parse_config(
        {"mcpServers": {"a": {"command": "x", "env": {"T": "${TOKEN_FOR_TEST}"}}}}
    )
    assert config.servers["a"].env["T"] == "s3cret"
    with pytest.raises(ConfigError, match=r"mcpServers\.a\.args\[0\].*NOPE_NOT_SET"):
        parse_config({"mcpServers": {"a": {"command": "x", "args": ["${NOPE_NOT_SET}"]}}})


def test_unknown_key_is_reported_with_its_path(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"mcpServers": {"a": {"command": "x", "argz": []}}}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text and "mcpServers.a.argz" in text and "unknown key" in text


def test_codemode_section_limits_and_server_options():
    config = parse_config(
        {
            "mcpServers": {"a": {"command": "x"}},
            "codemode": {
                "limits": {"timeout_s": 5},
                "servers": {"a": {"namespace": "alpha", "deny": ["rm*"]}},
            },
        }
    )
    assert config.codemode.limits.overrides() == {"timeout_s": 5}
    assert config.options("a").namespace == "alpha" and config.options("a").deny == ["rm*"]
    with pytest.raises(ConfigError, match=r"codemode\.servers has options for 'b'"):
        parse_config({"mcpServers": {"a": {"command": "x"}}, "codemode": {"servers": {"b": {}}}})
    with pytest.raises(ConfigError, match=r"codemode\.limits\.timeout_s"):
        parse_config({"codemode": {"limits": {"timeout_s": -1}}})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "top level must be a JSON object"),
        ({"mcpServer": {}}, "unknown top-level key"),
        ({"mcpServers": {"a": {}}}, "needs `command`"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "not both"),
        ({"mcpServers": {}, "servers": {}}, "not both"),
        ({"mcpServers": {"a": {"type": "http", "command": "x"}}}, 'type "http" needs `url`'),
    ],
)
def test_bad_configs_fail_with_a_fix(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_config(data, "cfg.json")


def test_bad_json_names_line_and_column(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n  "mcpServers": {,}\n}')
    with pytest.raises(ConfigError, match=r"line 2, column"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.json")


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG rule is Linux's")
@pytest.mark.parametrize(
    "env",
    [{}, {"XDG_CACHE_HOME": "/tmp/xc"}, {"XDG_CACHE_HOME": "  "}, {"XDG_CACHE_HOME": "rel/c"},
     {"XDG_CACHE_HOME": "~/c"}, {"HOME": "relative/home"}],
    ids=["unset", "absolute", "blank", "relative", "tilde", "relative-home"],
)  # fmt: skip
def test_the_cache_folder_is_the_one_platformdirs_names(monkeypatch, tmp_path, env):
    # codemode answers it itself on Linux (no platformdirs import at every start): the
    # same folder, whatever the environment says
    import platformdirs

    from codemode import _paths

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CODEMODE_CACHE_DIR", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _paths.cache_dir() == Path(platformdirs.user_cache_dir("codemode"))
