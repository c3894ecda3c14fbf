"""The stdlib as models use it: small changes to the guest's stdlib that make habits
from other Pythons work where their intent is unambiguous (`asyncio.gather([a, b])`,
`csv.reader(text)`, `dataclasses.asdict(result)`, `help(tool)`), and notes where a habit
silently finds nothing here (`glob.glob` of host paths) or leaves work undone (tasks still
running when the program ends). Each is installed once, at build time."""

import dataclasses
import functools
import sys
import types

from _cm_api import CODE_FILENAME, Namespace, Notes, ToolFunction
from _cm_bridge import bridge
from _cm_gather import Batches, gather_calls
from _cm_relevance import relevant_tools


def _noting(label: str, fn, words: tuple[str, ...], lazy: bool = False):
    """`fn`, which looks at host paths; when a program's call of it finds nothing (there
    are no host files here), a note says why and which tools reach files."""

    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        if lazy:
            result = list(result)
        if not result and sys._getframe(1).f_code.co_filename == CODE_FILENAME:
            found = relevant_tools(*words)
            use = f": use {' or '.join(f'{p}(...)' for p in found[:2])}" if found else ""
            Notes.add(
                f"{label}() found nothing because the sandbox has no host file system (host "
                f"paths never exist here){use}"
            )
        return iter(result) if lazy else result

    return functools.wraps(fn)(wrapper)


def install_file_notes() -> None:
    import glob
    import os
    import pathlib

    listing = ("search", "list", "directory", "tree")
    checking = ("info", "list", "directory", "read")
    glob.glob = _noting("glob.glob", glob.glob, listing)
    glob.iglob = _noting("glob.iglob", glob.iglob, listing, lazy=True)
    os.walk = _noting("os.walk", os.walk, listing, lazy=True)
    for name in ("exists", "isfile", "isdir", "lexists"):
        setattr(os.path, name, _noting(f"os.path.{name}", getattr(os.path, name), checking))
    for name in ("exists", "is_file", "is_dir"):
        method = getattr(pathlib.Path, name)
        setattr(pathlib.Path, name, _noting(f"Path.{name}", method, checking))
    for name in ("glob", "rglob"):
        method = getattr(pathlib.Path, name)
        setattr(pathlib.Path, name, _noting(f"Path.{name}", method, listing, lazy=True))


def install_task_notes() -> None:
    """Tasks still running when a program's loop closes are cancelled (as asyncio.run
    does); a note says how many, since the program likely meant to await them. Not after
    the deadline: then the program was stopped, and the error says so."""
    import asyncio.runners

    stock = asyncio.runners._cancel_all_tasks

    def cancel_all(loop):
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        running = [f"{len(pending)} task(s)"] if pending else []
        calls = Batches.pending_calls()  # a gather of tool calls runs them without tasks
        if calls:
            running.append(f"{calls} tool call(s) of an asyncio.gather(...)")
        if running and not bridge.expired:
            Notes.add(
                f"{' and '.join(running)} were still running when the program ended, and were "
                "cancelled: await them before returning, e.g. `await asyncio.gather(*tasks)`"
            )
        return stock(loop)

    asyncio.runners._cancel_all_tasks = cancel_all


def install_csv_of_text() -> None:
    """`csv.reader(text)` reads the text's lines (iterating a str gives characters, which is
    never what is meant); `csv.reader(result_dict)` says where the text is."""
    import csv

    def taking_text(stock):
        @functools.wraps(stock)
        def reader(source, *args, **kwargs):
            if isinstance(source, str):
                source = source.splitlines()
            elif isinstance(source, dict):
                texts = [k for k, v in source.items() if isinstance(v, str)]
                where = f"; this tool result's text is in its {texts[0]!r} field" if texts else ""
                raise TypeError(
                    f"csv.{stock.__name__}() needs text or lines, not a dict{where}: "
                    f"csv.{stock.__name__}(result[{(texts or ['key'])[0]!r}])"
                )
            return stock(source, *args, **kwargs)

        return reader

    csv.reader = taking_text(csv.reader)  # DictReader reads through the module's `reader`


def _help(obj=None):
    """help(x): x's signature and documentation (a tool's, a namespace's functions)."""
    import inspect

    if obj is None:
        print("help(x) prints x's documentation; tools.search('words') finds tools.")
        return
    if isinstance(obj, ToolFunction):
        print(obj.__doc__)
        return
    if isinstance(obj, Namespace):
        print(repr(obj))
        for fn in obj._cm_functions.values():
            print(f"  {fn.signature}")
        return
    try:
        head = f"{getattr(obj, '__name__', type(obj).__name__)}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        head = repr(obj)
    print(head)
    print(inspect.getdoc(obj) or "")


def install_asdict_of_dicts() -> None:
    """`dataclasses.asdict(result)` of a tool result (a dict already) gives a copy of it."""
    stock = dataclasses.asdict

    @functools.wraps(stock)
    def asdict(obj, *, dict_factory=dict):
        if isinstance(obj, dict):
            return dict_factory(obj.items())
        return stock(obj, dict_factory=dict_factory)

    dataclasses.asdict = asdict


def install_gather_of_a_list() -> None:
    """`asyncio.gather([a, b])` (a list, not `*list`) means `gather(a, b)`: it can mean
    nothing else, so the program's gather takes it."""
    import asyncio

    stock = asyncio.gather

    def gather(*aws, return_exceptions=False, **named):
        if len(aws) == 1 and isinstance(aws[0], (list, tuple, types.GeneratorType)):
            aws = tuple(aws[0])
        if named and not aws:  # gather(a=..., b=...): their results by name
            return _gather_named(stock, named, return_exceptions)
        if named:
            raise TypeError(
                "asyncio.gather() takes awaitables positionally (or only by name, to get a "
                f"dict back); got both, and {', '.join(named)} by name"
            )
        batch = gather_calls(aws, return_exceptions)
        return batch if batch is not None else stock(*aws, return_exceptions=return_exceptions)

    gather.__doc__ = stock.__doc__
    gather.__qualname__ = gather.__name__ = "gather"
    gather.__module__ = "asyncio"
    asyncio.gather = gather


async def _gather_named(stock, named: dict, return_exceptions: bool) -> dict:
    values = await stock(*named.values(), return_exceptions=return_exceptions)
    return dict(zip(named, values))
