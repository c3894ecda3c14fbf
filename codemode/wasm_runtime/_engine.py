"""The wasmtime Engine configuration, shared by the compiler and the worker processes.

A serialized (precompiled) component only loads into an engine with the same wasmtime
version and the same flags, so the flags here are part of the build cache key. This module
imports nothing but the stdlib and (in `make_engine`) wasmtime: the worker runs it without
the rest of codemode, and the server, which never runs wasm itself, never loads wasmtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

# Flags that change the compiled code. Changing any of them changes the cache key.
ENGINE_FLAGS: dict[str, object] = {
    "epoch_interruption": True,  # lets a ticker thread stop CPU-bound guests at a deadline
    "cranelift_opt_level": "speed",
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

# The interface name the guest imports, as written in guest/wit/sandbox.wit.
HOST_INTERFACE = "codemode:sandbox/host"


def make_engine(strategy: str = OPTIMIZED) -> wasmtime.Engine:
    """The engine for `strategy`. Code compiled by one loads only into an engine of the
    same strategy, so a worker is told which one its artifact was compiled with."""
    import wasmtime  # here, not at the top: the server reads ENGINE_FLAGS, only workers load it

    config = wasmtime.Config()
    config.epoch_interruption = bool(ENGINE_FLAGS["epoch_interruption"])
    if strategy == BASELINE:
        from wasmtime import _ffi

        _ffi.wasmtime_config_strategy_set(config.ptr(), _WINCH)
    elif strategy == OPTIMIZED:
        config.cranelift_opt_level = str(ENGINE_FLAGS["cranelift_opt_level"])
    else:
        raise ValueError(f"unknown compile strategy {strategy!r}; known: {STRATEGIES}")
    return wasmtime.Engine(config)
