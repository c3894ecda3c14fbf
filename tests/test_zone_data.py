"""The sandbox's zone data and the component's key (`_component.component_key`): a package
that ships its component ships that component's zones, so a tzdata other than the wheel
build's, installed beside it, does not make a first start build the sandbox again;
`CODEMODE_TZDATA=installed` asks for the installed tzdata's zones instead.

The wheel itself, with another tzdata installed into its venv, is tests/test_packaging.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from codemode.errors import SandboxBuildError
from codemode.wasm_runtime import _component
from codemode.wasm_runtime._component import COMPONENT_NAME, META_NAME

INSTALLED = _component.dist_version("tzdata")
OLD = "2020.1"  # a tzdata no environment of these tests has installed


def _guest_hash():
    digest = hashlib.sha256()
    for path in _component.guest_files():
        digest.update(path.relative_to(_component.GUEST_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest


def _key_with(tzdata: str | None) -> str:
    """The key of a component of these sources and this componentize-py, with `tzdata`'s
    zones (worked out here from the facts, not by the function under test)."""
    digest = _guest_hash()
    facts = {"componentize-py": _component.dist_version("componentize-py"), "tzdata": tzdata}
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


def _ship(folder: Path, tzdata: str, key: str, size: int | None = None) -> None:
    """A package's prebuilt folder as the build hook leaves it (a stand-in component:
    its bytes are checked only when it is used)."""
    folder.mkdir(exist_ok=True)
    (folder / COMPONENT_NAME).write_bytes(b"\0asm" + bytes(60))
    meta = {"key": key, "sha256": "0" * 64, "size": size or 64, "tzdata": tzdata}
    (folder / META_NAME).write_text(json.dumps(meta))


@pytest.fixture
def prebuilt(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "prebuilt"
    monkeypatch.setattr(_component, "PREBUILT_DIR", folder)
    monkeypatch.delenv("CODEMODE_TZDATA", raising=False)
    return folder


def test_a_source_checkout_keys_the_installed_tzdata(prebuilt):
    assert not prebuilt.exists()
    assert _component.component_key() == _key_with(INSTALLED)
    assert _component.zone_data() == f"tzdata {INSTALLED}, installed"


def test_the_shipped_components_zones_are_used_whatever_tzdata_is_installed(prebuilt):
    _ship(prebuilt, OLD, _key_with(OLD))
    assert _component.component_key() == _key_with(OLD) != _key_with(INSTALLED)
    said = _component.zone_data()
    assert said.startswith(f"tzdata {OLD}, shipped with the package (installed: {INSTALLED};")
    assert "CODEMODE_TZDATA=installed" in said
    # and the compiled artifact's key follows it (the record a wheel's code is found by)
    from codemode.wasm_runtime import _build

    with_old = _build.cache_key()
    prebuilt.joinpath(META_NAME).unlink()
    assert _build.cache_key() != with_old


def test_installed_asks_for_the_installed_tzdatas_zones(prebuilt, monkeypatch):
    _ship(prebuilt, OLD, _key_with(OLD))
    monkeypatch.setenv("CODEMODE_TZDATA", " Installed ")
    assert _component.component_key() == _key_with(INSTALLED)
    assert _component.zone_data() == f"tzdata {INSTALLED}, installed"


@pytest.mark.parametrize(
    "why", ["other sources", "a cut file", "an older record", "a record that is not JSON"]
)
def test_a_shipped_component_that_is_not_this_ones_is_ignored(prebuilt, why):
    if why == "other sources":  # a component made from another version's guest
        _ship(prebuilt, OLD, "f" * 64)
    elif why == "a cut file":
        _ship(prebuilt, OLD, _key_with(OLD), size=65)
    elif why == "an older record":  # made before records named their tzdata
        _ship(prebuilt, OLD, _key_with(OLD))
        meta = json.loads((prebuilt / META_NAME).read_text())
        del meta["tzdata"]
        (prebuilt / META_NAME).write_text(json.dumps(meta))
    else:
        _ship(prebuilt, OLD, _key_with(OLD))
        (prebuilt / META_NAME).write_text("{not json")
    assert _component.component_key() == _key_with(INSTALLED)


def test_a_choice_that_is_not_one_says_which_there_are(prebuilt, monkeypatch):
    monkeypatch.setenv("CODEMODE_TZDATA", "newest")
    with pytest.raises(
        SandboxBuildError, match=r"CODEMODE_TZDATA='newest' is not a choice: use one of "
    ):
        _component.component_key()
    monkeypatch.setenv("CODEMODE_TZDATA", "package")
    assert _component.component_key() == _key_with(INSTALLED)
