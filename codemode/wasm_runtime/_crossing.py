"""The worker's two crossings of the guest boundary, called through wasmtime's C API.

wasmtime-py's component `Func.__call__` and its host-function trampoline work out the
function's type on every call (a dozen FFI calls, and an object for each parameter type):
~50 us a run and ~20 us a tool call here, which is as much as the conversions themselves.
Both signatures are fixed by guest/wit/sandbox.wit, so this converts exactly those:
`run(string, string, string) -> string` and `wait(string, s32) -> string`. Each value's
kind is checked as it is read, so a WIT that changed shape fails loudly instead of reading
memory as the wrong type.

Stdlib and wasmtime only (the worker imports it without the rest of codemode). It uses
wasmtime-py's ctypes bindings of the C API (`wasmtime._ffi`), for the pinned wasmtime.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wc

_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_S32 = ffi.WASMTIME_COMPONENT_S32.value
_Val = ffi.wasmtime_component_val_t


def _take_string(val: ffi.wasmtime_component_val_t) -> str:
    """The text of a string value, whose bytes are freed (the receiver owns them)."""
    vec = val.of.string
    text = ctypes.string_at(vec.data, vec.size).decode("utf-8")
    ffi.wasm_byte_vec_delete(ctypes.byref(val.of.string))
    return text


def _put_string(val: ffi.wasmtime_component_val_t, text: str) -> None:
    data = text.encode("utf-8")
    val.kind = _STRING
    ffi.wasm_byte_vec_new_uninitialized(ctypes.byref(val.of.string), len(data))
    if data:
        ctypes.memmove(val.of.string.data, data, len(data))


def _error(message: str) -> int:
    """A wasmtime error for the guest's call to end in (a trap): its address."""
    return ctypes.cast(wasmtime.WasmtimeError(message)._consume(), ctypes.c_void_p).value or 0


Wait = Callable[["ctypes._Pointer[ffi.wasmtime_context_t]", str, int], str]

_KEPT: list = []
"""The callbacks handed to wasmtime: ctypes frees a callback that nothing references."""


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _no_finalizer(_data) -> None:
    return None


def add_wait(instance: wc.LinkerInstance, name: str, wait: Wait) -> None:
    """Define `name(string, s32) -> string` in the linker instance as `wait(context,
    text, number)`. `wait` returns the reply; if anything raises, the guest traps."""

    @ffi.wasmtime_component_func_callback_t
    def trampoline(_env, context, _ty, args, nargs, results, nresults):
        try:
            if nargs != 2 or nresults != 1 or args[0].kind != _STRING or args[1].kind != _S32:
                return _error(f"{name}: the guest called it with another signature")
            batch = _take_string(args[0])
            _put_string(results[0], wait(context, batch, args[1].of.s32))
            return 0
        except BaseException as exc:  # noqa: BLE001 - nothing may unwind into wasmtime
            return _error(f"{name} failed in the host: {type(exc).__name__}: {exc}")

    _KEPT.append(trampoline)
    name_bytes = name.encode("utf-8")
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(),
        ctypes.create_string_buffer(name_bytes),
        len(name_bytes),
        trampoline,
        None,
        _no_finalizer,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)


def set_epoch_deadline(context, ticks: int) -> None:
    """From inside a host function: the store's deadline, `ticks` epochs from now."""
    ffi.wasmtime_context_set_epoch_deadline(context, ticks)


class StringExport:
    """An export taking strings and returning one (`run`), called without wasmtime-py's
    per-call type lookup."""

    def __init__(self, func: wc.Func) -> None:
        self._func = ctypes.byref(func._func)

    def __call__(self, store: wasmtime.Store, *texts: str) -> str:
        params = (_Val * len(texts))()
        made = 0
        try:
            for text in texts:
                _put_string(params[made], text)
                made += 1
            result = _Val()
            err = ffi.wasmtime_component_func_call(
                self._func, store._context(), params, made, ctypes.byref(result), 1
            )
            if err:
                raise wasmtime.WasmtimeError._from_ptr(err)
            if result.kind != _STRING:
                ffi.wasmtime_component_val_delete(ctypes.byref(result))
                raise wasmtime.WasmtimeError("the export returned something other than a string")
            return _take_string(result)
        finally:
            for i in range(made):
                ffi.wasmtime_component_val_delete(ctypes.byref(params[i]))
