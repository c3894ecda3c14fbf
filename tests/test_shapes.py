"""Learned output shapes: what is recorded, how it widens, where it is kept, and that the
catalog shows it (a real downstream server's text tool)."""

from __future__ import annotations

import asyncio
import json
import stat

from serve_client import faulty

from codemode.config import parse_config
from codemode.tool_adapters import Federation, render_catalog
from codemode.tool_adapters._shapes import (
    MAX_ENTRIES,
    ShapeStore,
    merge,
    render,
    shape_of,
    text_sample,
)


def learned(*values):
    shape = shape_of(values[0])
    for value in values[1:]:
        shape = merge(shape, shape_of(value))
    return render(shape)


def test_shapes_record_fields_lists_and_unions():
    assert learned({"id": "a", "n": 1}) == "{id: str, n: int}"
    assert learned([{"id": "a"}, {"id": "b", "tag": None}]) == "list[{id: str, tag?: None}]"
    assert learned({"a": 1}, {"a": 2.5, "b": "x"}) == "{a: float, b?: str}"
    assert learned(1, None) == "int | None"
    assert learned("x", 1, [1], {"a": 1}) == "Any"
    assert learned([]) == "list" and learned({}) == "dict"


def test_a_shape_only_widens_so_the_catalog_settles():
    values = [{"a": 1, "b": "x"}, {"a": 2}, {"a": 3, "b": "y"}, {"a": 4}]
    seen = [learned(*values[: i + 1]) for i in range(len(values))]
    assert seen == [
        "{a: int, b: str}",
        "{a: int, b?: str}",
        "{a: int, b?: str}",
        "{a: int, b?: str}",
    ]


def test_text_samples_keep_the_format_and_drop_the_values():
    log = (
        "Commit history:\nCommit: 9f2c1e4b7a6d5c3b2a1f0e9d8c7b6a5f4e3d2c1b\n"
        "Author: Ada <ada@example.com>\nDate: 2024-07-01 12:00:00+00:00\nMessage: x\n"
    )
    sample = text_sample(log)
    assert sample.startswith('"Commit history:\\nCommit: <sha>\\nAuthor: Ada <<email>>')
    assert "9f2c1e4" not in sample and "ada@example.com" not in sample
    assert len(sample) <= 72


def test_the_store_is_owner_only_bounded_and_survives_a_bad_file(tmp_path):
    path = tmp_path / "cache" / "shapes.json"
    store = ShapeStore(path)
    assert store.observe("s", "t", "fp", {"a": 1}) is True
    assert store.observe("s", "t", "fp", {"a": 2}) is False  # nothing new to show
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ShapeStore(path).get("s", "t", "fp") == ("{a: int}", "")
    assert ShapeStore(path).get("s", "t", "other-schema") is None
    for i in range(MAX_ENTRIES + 5):
        store.observe("s", f"tool{i}", "fp", i)
    assert len(json.loads(path.read_text())["shapes"]) == MAX_ENTRIES
    path.write_text("{not json")
    assert ShapeStore(path).get("s", "t", "fp") is None  # ignored, then rewritten
    assert ShapeStore(path).observe("s", "t", "fp", "text") is True


async def test_the_catalog_shows_a_learned_shape_and_learning_can_be_turned_off(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CODEMODE_SHAPES_FILE", str(tmp_path / "shapes.json"))
    config = parse_config({"mcpServers": {"f": faulty()}})
    async with Federation(config) as fed:
        assert "f.mixed() -> Any" in render_catalog(fed.tools)
        version = fed.catalog.version
        await fed.call_tool("f", "mixed")
        for _ in range(100):  # the catalog is rebuilt by the federation's own task
            if fed.catalog.version > version:
                break
            await asyncio.sleep(0.02)
        line = next(x for x in render_catalog(fed.tools).splitlines() if "f.mixed(" in x)
        assert "-> list" in line and "# observed" in line
        assert "observed in real calls" in next(t for t in fed.tools if t.name == "mixed").doc()
    # the next start reads what was learned
    async with Federation(config) as fed:
        assert "f.mixed() -> list" in render_catalog(fed.tools)
    off = parse_config({"mcpServers": {"f": faulty()}, "codemode": {"learn_shapes": False}})
    (tmp_path / "shapes.json").unlink()
    async with Federation(off) as fed:
        await fed.call_tool("f", "mixed")
        assert "f.mixed() -> Any" in render_catalog(fed.tools)
    assert not (tmp_path / "shapes.json").exists()
