"""The worker's binding to wasmtime's C API: the ~30 calls a worker makes, declared here.

Importing wasmtime-py costs a worker ~95 ms and ~7 MB (ctypes declarations of the whole
C API, typing, dataclasses), and its component calls work out the function's type on
every call (~50 us a run, ~25 us a tool call here). A worker needs an engine, a compiled
component, a linker with WASI and one host function, a store per instance and one export.
The library is wasmtime-py's own (the pinned wasmtime), at the path the parent gives; the
build still compiles with wasmtime-py (`_engine.make_engine`), and the parent passes the
same flags (`_engine.engine_settings`), so what it compiles loads here. The native worker
(`worker.c`) declares the same calls.

The two crossings of the guest boundary have the fixed signatures of guest/wit/sandbox.wit:
the export `run(string, string, string) -> string` and the import `wait(string, s32) ->
string`. Each value's kind is checked as it is read, so a WIT that changed shape fails
loudly instead of reading memory as the wrong type.

Stdlib only (ctypes); the worker imports it without the rest of codemode.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    byref,
    c_bool,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_ssize_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)

_STRING = 12  # WASMTIME_COMPONENT_STRING
_S32 = 5  # WASMTIME_COMPONENT_S32


class ByteVec(Structure):
    _fields_ = [("size", c_size_t), ("data", POINTER(c_uint8))]


class _Of(Union):
    _fields_ = [("s32", c_int32), ("string", ByteVec), ("_room", c_uint64 * 3)]


class Val(Structure):
    """wasmtime_component_val_t: a kind and 24 bytes (only strings and s32 are read)."""

    _fields_ = [("kind", c_uint8), ("of", _Of)]


class _FuncRef(Structure):
    """wasmtime_component_func_t (opaque: store id and indices)."""

    _fields_ = [("store_id", c_uint64), ("_p1", c_uint64), ("_p2", c_uint64), ("_p3", c_void_p)]


class _InstanceRef(Structure):
    """wasmtime_component_instance_t (opaque)."""

    _fields_ = [("store_id", c_uint64), ("_p", c_uint32)]


assert ctypes.sizeof(Val) == 32 and ctypes.sizeof(_FuncRef) == 32
assert ctypes.sizeof(_InstanceRef) == 16

_p = c_void_p  # every handle is opaque here
_Callback = CFUNCTYPE(c_size_t, _p, _p, _p, POINTER(Val), c_size_t, POINTER(Val), c_size_t)
_Output = CFUNCTYPE(c_ssize_t, _p, POINTER(c_uint8), c_size_t)
_Finalizer = CFUNCTYPE(None, _p)

POOL_LIMITS = {  # the pooling allocator's limits: worker.c's POOL_LIMITS (see there)
    "total_component_instances": (c_uint32, 4),
    "total_core_instances": (c_uint32, 256),
    "total_memories": (c_uint32, 4),
    "total_tables": (c_uint32, 64),
    "total_stacks": (c_uint32, 4),
    "max_core_instances_per_component": (c_uint32, 64),
    "max_memories_per_component": (c_uint32, 2),
    "max_tables_per_component": (c_uint32, 16),
    "table_elements": (c_size_t, 1 << 17),
    "max_memory_size": (c_size_t, 1 << 32),
    "max_core_instance_size": (c_size_t, 1 << 22),
    "max_component_instance_size": (c_size_t, 1 << 22),
    "linear_memory_keep_resident": (c_size_t, None),  # the worker's resident_bytes
    "table_keep_resident": (c_size_t, None),
}

_SIGNATURES = {
    **{
        f"wasmtime_pooling_allocation_config_{name}_set": (None, [_p, kind])
        for name, (kind, _) in POOL_LIMITS.items()
    },
    "wasmtime_pooling_allocation_config_new": (_p, []),
    "wasmtime_pooling_allocation_config_delete": (None, [_p]),
    "wasmtime_pooling_allocation_strategy_set": (None, [_p, _p]),
    "wasm_config_new": (_p, []),
    "wasmtime_config_epoch_interruption_set": (None, [_p, c_bool]),
    "wasmtime_config_cranelift_opt_level_set": (None, [_p, c_uint8]),
    "wasmtime_config_strategy_set": (None, [_p, c_uint8]),
    "wasm_engine_new_with_config": (_p, [_p]),
    "wasmtime_engine_increment_epoch": (None, [_p]),
    "wasmtime_component_deserialize_file": (_p, [_p, c_char_p, POINTER(_p)]),
    "wasmtime_component_linker_new": (_p, [_p]),
    "wasmtime_component_linker_root": (_p, [_p]),
    "wasmtime_component_linker_instance_add_instance": (_p, [_p, c_char_p, c_size_t, POINTER(_p)]),
    "wasmtime_component_linker_instance_add_func": (
        _p,
        [_p, c_char_p, c_size_t, _Callback, _p, _Finalizer],
    ),
    "wasmtime_component_linker_instance_delete": (None, [_p]),
    "wasmtime_component_linker_add_wasip2": (_p, [_p]),
    "wasmtime_component_linker_instantiate": (_p, [_p, _p, _p, POINTER(_InstanceRef)]),
    "wasmtime_component_instance_get_export_index": (
        _p,
        [POINTER(_InstanceRef), _p, _p, c_char_p, c_size_t],
    ),
    "wasmtime_component_instance_get_func": (
        c_bool,
        [POINTER(_InstanceRef), _p, _p, POINTER(_FuncRef)],
    ),
    "wasmtime_component_export_index_delete": (None, [_p]),
    "wasmtime_component_func_call": (
        _p,
        [POINTER(_FuncRef), _p, POINTER(Val), c_size_t, POINTER(Val), c_size_t],
    ),
    "wasmtime_component_val_delete": (None, [POINTER(Val)]),
    "wasmtime_store_new": (_p, [_p, _p, _Finalizer]),
    "wasmtime_store_context": (_p, [_p]),
    "wasmtime_store_delete": (None, [_p]),
    "wasmtime_store_limiter": (None, [_p, c_int64, c_int64, c_int64, c_int64, c_int64]),
    "wasmtime_context_set_wasi": (_p, [_p, _p]),
    "wasmtime_context_set_epoch_deadline": (None, [_p, c_uint64]),
    "wasi_config_new": (_p, []),
    "wasi_config_set_stdout_custom": (None, [_p, _Output, _p, _Finalizer]),
    "wasi_config_set_stderr_custom": (None, [_p, _Output, _p, _Finalizer]),
    "wasmtime_error_new": (_p, [c_char_p]),
    "wasmtime_error_message": (None, [_p, POINTER(ByteVec)]),
    "wasmtime_error_delete": (None, [_p]),
    "wasm_byte_vec_new_uninitialized": (None, [POINTER(ByteVec), c_size_t]),
    "wasm_byte_vec_delete": (None, [POINTER(ByteVec)]),
}


class _Lib:
    """The library's functions, declared on first use of `load`."""

    def __init__(self, path: str) -> None:
        dll = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(dll, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


lib: _Lib = None  # type: ignore[assignment]


def load(path: str) -> None:
    """Load wasmtime's library (wasmtime-py's, at `path`)."""
    global lib
    lib = _Lib(path)


class WasmError(Exception):
    """A wasmtime error: a trap, a failed instantiation, a bad artifact (its message)."""


def _raise_if(err: int | None) -> None:
    if err:
        raise WasmError(_error_message(err))


def _error_message(err: int) -> str:
    vec = ByteVec()
    lib.wasmtime_error_message(err, byref(vec))
    message = ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace")
    lib.wasm_byte_vec_delete(byref(vec))
    lib.wasmtime_error_delete(err)
    return message


def _new_error(message: str) -> int:
    return lib.wasmtime_error_new(message.encode("utf-8", "replace")) or 0


def take_bytes(val: Val) -> bytes:
    """The UTF-8 bytes of a string value, which are freed (the receiver owns them)."""
    vec = val.of.string
    data = ctypes.string_at(vec.data, vec.size)
    lib.wasm_byte_vec_delete(byref(val.of.string))
    return data


def put_bytes(val: Val, data: bytes) -> None:
    """Make `val` a string value of `data`, which must be UTF-8 (the receiver owns it)."""
    val.kind = _STRING
    lib.wasm_byte_vec_new_uninitialized(byref(val.of.string), len(data))
    if data:
        ctypes.memmove(val.of.string.data, data, len(data))


@_Finalizer
def _no_finalizer(_data) -> None:
    return None


class Engine:
    def __init__(
        self, epoch: bool, strategy_code: int | None, opt_level: int | None, resident: int = 0
    ) -> None:
        """The flags as `_engine.engine_settings` gives them (None: wasmtime's default);
        `resident` > 0: instances from the pooling allocator, as worker.c's
        `pool_instances`."""
        config = lib.wasm_config_new()
        lib.wasmtime_config_epoch_interruption_set(config, epoch)
        if strategy_code is not None:
            lib.wasmtime_config_strategy_set(config, strategy_code)
        if opt_level is not None:
            lib.wasmtime_config_cranelift_opt_level_set(config, opt_level)
        if resident > 0:
            pool = lib.wasmtime_pooling_allocation_config_new()
            for name, (_, value) in POOL_LIMITS.items():
                setter = getattr(lib, f"wasmtime_pooling_allocation_config_{name}_set")
                setter(pool, resident if value is None else value)
            lib.wasmtime_pooling_allocation_strategy_set(config, pool)  # copies it
            lib.wasmtime_pooling_allocation_config_delete(pool)
        self.ptr = lib.wasm_engine_new_with_config(config)  # takes the config

    def increment_epoch(self) -> None:
        lib.wasmtime_engine_increment_epoch(self.ptr)


class Component:
    def __init__(self, engine: Engine, path: str) -> None:
        out = c_void_p()
        _raise_if(
            lib.wasmtime_component_deserialize_file(engine.ptr, os.fsencode(path), byref(out))
        )
        self.ptr = out.value


Wait = Callable[[int, bytes, int], bytes]
"""`wait(context, batch, timeout_ms) -> reply`, both UTF-8 JSON as bytes (the worker
frames them as they are): the host function of the guest's bridge."""


class Linker:
    """WASI (wasi:cli, clocks, random, filesystem; never wasi-http) and the host's `wait`."""

    def __init__(self, engine: Engine) -> None:
        self.ptr = lib.wasmtime_component_linker_new(engine.ptr)
        self._kept: list = []  # callbacks wasmtime holds: alive as long as the linker

    def add_wasip2(self) -> None:
        _raise_if(lib.wasmtime_component_linker_add_wasip2(self.ptr))

    def add_wait(self, interface: str, name: str, wait: Wait) -> None:
        """Define `interface#name(string, s32) -> string` as `wait`. If anything raises in
        it, the guest traps with the message; nothing unwinds into wasmtime."""

        @_Callback
        def trampoline(_env, context, _ty, args, nargs, results, nresults):
            try:
                if nargs != 2 or nresults != 1 or args[0].kind != _STRING or args[1].kind != _S32:
                    return _new_error(f"{name}: the guest called it with another signature")
                batch = take_bytes(args[0])
                put_bytes(results[0], wait(context, batch, args[1].of.s32))
                return 0
            except BaseException as exc:  # noqa: BLE001 - nothing may unwind into wasmtime
                return _new_error(f"{name} failed in the host: {type(exc).__name__}: {exc}")

        self._kept.append(trampoline)
        root = lib.wasmtime_component_linker_root(self.ptr)
        inner = c_void_p()
        iface, func = interface.encode(), name.encode()
        try:
            _raise_if(
                lib.wasmtime_component_linker_instance_add_instance(
                    root, iface, len(iface), byref(inner)
                )
            )
            _raise_if(
                lib.wasmtime_component_linker_instance_add_func(
                    inner.value, func, len(func), trampoline, None, _no_finalizer
                )
            )
        finally:  # the inner instance first: each locks the one it was made from
            if inner.value:
                lib.wasmtime_component_linker_instance_delete(inner.value)
            lib.wasmtime_component_linker_instance_delete(root)

    def instantiate(self, store: Store, component: Component) -> Instance:
        instance = _InstanceRef()
        _raise_if(
            lib.wasmtime_component_linker_instantiate(
                self.ptr, store.context, component.ptr, byref(instance)
            )
        )
        return Instance(instance)


Output = Callable[[bytes], None]


class Store:
    """One instance's store: its WASI (no preopens, env, args or stdin; stdout and stderr
    to `output`), memory limit and epoch deadline. Deleted with this object."""

    def __init__(self, engine: Engine, output: Output, memory_bytes: int) -> None:
        self.ptr = lib.wasmtime_store_new(engine.ptr, None, _no_finalizer)
        self.context = lib.wasmtime_store_context(self.ptr)

        @_Output
        def write(_data, ptr, size):
            try:
                output(ctypes.string_at(ptr, size))
                return size
            except BaseException:  # noqa: BLE001 - nothing may unwind into wasmtime
                return -errno.EIO

        self._write = write  # wasmtime holds it until the store is deleted
        wasi = lib.wasi_config_new()
        lib.wasi_config_set_stdout_custom(wasi, write, None, _no_finalizer)
        lib.wasi_config_set_stderr_custom(wasi, write, None, _no_finalizer)
        _raise_if(lib.wasmtime_context_set_wasi(self.context, wasi))  # takes the config
        lib.wasmtime_store_limiter(self.ptr, memory_bytes, -1, -1, -1, -1)

    def set_epoch_deadline(self, ticks: int) -> None:
        set_epoch_deadline(self.context, ticks)

    def close(self) -> None:
        if self.ptr is not None and lib is not None:
            lib.wasmtime_store_delete(self.ptr)
            self.ptr = self.context = None

    __del__ = close


def set_epoch_deadline(context: int, ticks: int) -> None:
    """The store's deadline, `ticks` epochs from now; by its context, which is what a host
    function is given."""
    lib.wasmtime_context_set_epoch_deadline(context, ticks)


class Instance:
    def __init__(self, ref: _InstanceRef) -> None:
        self.ref = ref

    def get_func(self, store: Store, name: str) -> StringExport | None:
        encoded = name.encode()
        index = lib.wasmtime_component_instance_get_export_index(
            byref(self.ref), store.context, None, encoded, len(encoded)
        )
        if not index:
            return None
        try:
            func = _FuncRef()
            found = lib.wasmtime_component_instance_get_func(
                byref(self.ref), store.context, index, byref(func)
            )
        finally:
            lib.wasmtime_component_export_index_delete(index)
        return StringExport(func, store) if found else None


class StringExport:
    """An export that takes strings and returns one (`run`), in its store."""

    def __init__(self, func: _FuncRef, store: Store) -> None:
        self._func = func
        self._store = store

    def __call__(self, *texts: str) -> str:
        params = (Val * len(texts))()
        made = 0
        try:
            for text in texts:
                put_bytes(params[made], text.encode("utf-8"))
                made += 1
            result = Val()
            _raise_if(
                lib.wasmtime_component_func_call(
                    byref(self._func), self._store.context, params, made, byref(result), 1
                )
            )
            if result.kind != _STRING:
                lib.wasmtime_component_val_delete(byref(result))
                raise WasmError("the export returned something other than a string")
            return take_bytes(result).decode("utf-8")
        finally:
            for i in range(made):
                lib.wasmtime_component_val_delete(byref(params[i]))
