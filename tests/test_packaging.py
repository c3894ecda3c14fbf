"""The install the README describes: a wheel built from this tree, installed into a fresh
virtual environment, runs the demo. A file missing from the package fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from codemode.wasm_runtime._engine import compile_target, machine

ROOT = Path(__file__).parent.parent


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("codemode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    ships_compiled = compile_target() is not None
    # compiled code makes it this platform's wheel, for any Python 3
    assert wheel.name.startswith("codemode-0.1.0-py3-none-")
    assert wheel.name.endswith("-any.whl") != ships_compiled, wheel.name
    if ships_compiled and sys.platform == "linux":  # a tag an index takes, as wasmtime's is
        assert wheel.name.endswith(f"-manylinux_2_17_{machine()}.manylinux2014_{machine()}.whl")
    guest = ROOT / "codemode" / "wasm_runtime" / "guest"
    for source in [*guest.glob("*.py"), *guest.glob("wit/*.wit")]:
        assert source.relative_to(ROOT).as_posix() in names  # the sandbox's own sources
    assert "codemode/wasm_runtime/worker.c" in names  # the native worker, built on first use
    # the build hook's component and its compiled code (setup.py): a first start copies
    # the code into the cache, where it was compiled for this architecture
    shipped = ["sandbox.wasm", "meta.json"] + (["sandbox.cwasm", "compiled.json"] * ships_compiled)
    for name in shipped:
        assert f"codemode/wasm_runtime/prebuilt/{name}" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr
    demo = subprocess.run(
        [str(venv / "bin" / "codemode"), "demo", "--latency-ms", "5"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        # an empty cache: the demo's `serve` gets the SDK's default environment (HOME,
        # not CODEMODE_CACHE_DIR), so the cache is emptied through HOME
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CODEMODE_"))},
            "HOME": str(tmp_path / "home"),
        },
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Team members over their Q3 budget" in demo.stdout
    assert "The baseline: the same tool calls" in demo.stdout
    assert "componentize" not in demo.stderr  # the shipped component is never made again
    if ships_compiled:  # an empty cache: the shipped code is copied in, nothing compiled
        assert "shipped with the package; no compile" in demo.stderr, demo.stderr[-2000:]
        assert "compile:" not in demo.stderr and "optimized code" not in demo.stderr
    else:  # an empty cache: the shipped component is compiled
        assert "its component shipped with the package" in demo.stderr, demo.stderr[-2000:]
    built_workers = list((tmp_path / "home").rglob("codemode-worker"))
    assert len(built_workers) == (1 if shutil.which("cc") else 0), built_workers

    # Beside a tzdata other than the wheel build's (pip keeps any that satisfies the
    # requirement), the shipped sandbox is still used as it is, with its own zones.
    meta = json.loads(zipfile.ZipFile(wheel).read("codemode/wasm_runtime/prebuilt/meta.json"))
    other = "2024.1" if meta.get("tzdata") != "2024.1" else "2024.2"
    pip = [str(venv / "bin" / "pip"), "install", "-q", f"tzdata=={other}"]
    assert subprocess.run(pip, capture_output=True, timeout=600).returncode == 0
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CODEMODE_"))},
        "HOME": str(tmp_path / "home-other-tzdata"),
        "CODEMODE_CACHE_DIR": str(tmp_path / "cache-other-tzdata"),
    }
    build = subprocess.run(
        [str(venv / "bin" / "codemode"), "build"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert "componentize" not in build.stderr, build.stderr[-2000:]
    if ships_compiled:
        assert "copied from the package, which ships it compiled" in build.stderr, build.stderr
    code = 'import zoneinfo, datetime\nstr(datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset())'
    run = subprocess.run(
        [str(venv / "bin" / "codemode"), "run", "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0 and "2:00:00" in run.stdout, (run.stdout, run.stderr[-2000:])
    assert "componentize" not in run.stderr
