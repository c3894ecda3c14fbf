"""The wasmtime Engine configuration, shared by the compiler and the worker processes.

A serialized (precompiled) component only loads into an engine with the same wasmtime
version and the same flags, so the flags here are part of the build cache key. The build
configures wasmtime-py from them (`make_engine`, the only place it is imported); a worker
is passed them as numbers (`engine_settings`, as `_protocol.settings`). The server, which
never runs wasm itself, never loads wasmtime.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime


def machine() -> str:
    """The machine's architecture, as `platform.machine()` says it (os.uname is what it
    reads on POSIX; importing `platform` costs a server start ~2 ms)."""
    if hasattr(os, "uname"):
        return os.uname().machine
    import platform

    return platform.machine()


_TRIPLES = {  # (sys.platform, machine): the target triple a portable build names
    ("linux", "x86_64"): "x86_64-unknown-linux-gnu",
    ("linux", "aarch64"): "aarch64-unknown-linux-gnu",
    ("darwin", "x86_64"): "x86_64-apple-darwin",
    ("darwin", "arm64"): "aarch64-apple-darwin",
}


def compile_target() -> str | None:
    """The target triple builds compile for: naming it explicitly makes wasmtime compile
    for the architecture's baseline features (x86-64: SSE2) instead of detecting this
    CPU's, so the code loads on every machine of the architecture. None where no triple
    is known: wasmtime's default, this machine's own features (then nothing is shipped
    compiled, see `_shipped`)."""
    return _TRIPLES.get((sys.platform, machine()))


# Flags that change the compiled code. Changing any of them changes the cache key.
ENGINE_FLAGS: dict[str, object] = {
    "epoch_interruption": True,  # lets a ticker thread stop CPU-bound guests at a deadline
    "cranelift_opt_level": "speed",
    # Code for the architecture's baseline CPU, not for this machine's (`compile_target`):
    # any machine of the architecture loads it, so a wheel can ship it compiled. CPython's
    # interpreter gains nothing measurable from AVX, BMI or LZCNT (README, tenth round).
    "target": "portable" if compile_target() else "host",
}

OPTIMIZED = "optimized"
"""Cranelift, optimizing: the code every worker runs once it is compiled (~6 s here)."""
BASELINE = "baseline"
"""Winch, wasmtime's baseline compiler: ~3x faster to compile (~2 s here), code ~1.4x
slower. The first start on an empty cache runs on it while the optimized code compiles
in the background; then workers move over."""
STRATEGIES = (OPTIMIZED, BASELINE)

_WINCH = 2  # WASMTIME_STRATEGY_WINCH in wasmtime's C API (wasmtime-py names only 0 and 1)

# How often the worker's ticker advances the engine epoch. The deadline of an execution is
# counted in these ticks, so this is the granularity of the CPU timeout.
EPOCH_TICK_S = 0.01


_OPT_LEVELS = {"none": 0, "speed": 1, "speed_and_size": 2}  # wasmtime_opt_level_t


def engine_settings(strategy: str) -> tuple[bool, int | None, int | None]:
    """(epoch interruption, compile strategy, Cranelift opt level) for `strategy`, as
    wasmtime's C API numbers them (None: left at wasmtime's default). The worker's own
    binding (`_capi`), the native worker and `make_engine` all configure from this."""
    epoch = bool(ENGINE_FLAGS["epoch_interruption"])
    if strategy == BASELINE:
        return epoch, _WINCH, None
    if strategy == OPTIMIZED:
        return epoch, None, _OPT_LEVELS[str(ENGINE_FLAGS["cranelift_opt_level"])]
    raise ValueError(f"unknown compile strategy {strategy!r}; known: {STRATEGIES}")


def make_engine(strategy: str = OPTIMIZED) -> wasmtime.Engine:
    """The engine for `strategy`, in wasmtime-py (the build compiles with it). Code
    compiled by one loads only into an engine of the same strategy, so a worker is told
    which one its artifact was compiled with."""
    import wasmtime  # here, not at the top: the server reads ENGINE_FLAGS, only builds load it
    from wasmtime import _ffi

    epoch, strategy_code, opt_level = engine_settings(strategy)
    config = wasmtime.Config()
    config.epoch_interruption = epoch
    if strategy_code is not None:
        _ffi.wasmtime_config_strategy_set(config.ptr(), strategy_code)
    if opt_level is not None:
        _ffi.wasmtime_config_cranelift_opt_level_set(config.ptr(), opt_level)
    target = compile_target()
    if target is not None:
        error = _ffi.wasmtime_config_target_set(config.ptr(), target.encode())
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    return wasmtime.Engine(config)
