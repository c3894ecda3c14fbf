"""Imports while a program runs: namespaces and the tool API import as modules, and a
module that is not in the sandbox fails with why and what to use instead."""

import builtins

import _cm_stdlib
from _cm_api import Registry, _close
from _cm_relevance import relevant_tools, tools_that_may_help


def _missing_module_message(name: str) -> str:
    top = name.partition(".")[0]
    reason = _cm_stdlib.ABSENT.get(name) or _cm_stdlib.ABSENT.get(top)
    if reason is not None:
        if reason is _cm_stdlib.NO_NETWORK:
            extra = tools_that_may_help("fetch", "http", "url", "web", "browse", "download")
        elif reason is _cm_stdlib.NO_FILES:
            found = relevant_tools("write", "read", "file", "directory")
            extra = f" (tools that look relevant here: {', '.join(found)})" if found else ""
        elif reason is _cm_stdlib.NO_PROCESSES:
            extra = tools_that_may_help()
        else:
            extra = ""
        return f"No module named {name!r}: {reason}{extra}."
    close = _close(name, _cm_stdlib.OFFERED)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"No module named {name!r}: the sandbox has the Python standard library only (no pip "
        "packages, no network, no host files); the tools are the way out"
        f"{tools_that_may_help()}. Modules: "
        f"{', '.join(m for m in _cm_stdlib.OFFERED if '.' not in m)}.{hint}"
    )


class MissingModules:
    """Last on sys.meta_path: an import nothing else found fails with a message that says
    why it is absent and what to use instead."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ModuleNotFoundError(_missing_module_message(name), name=name)

    @staticmethod
    def invalidate_caches():
        pass


_real_import = builtins.__import__


class _FromTools:
    """`from default_api import get_leads`: a made-up module whose names are all tools."""

    def __init__(self, found: dict):
        self.__dict__.update(found)


def program_import(name, globals=None, locals=None, fromlist=(), level=0):
    """`__import__` while a program runs: in the program's own code (its globals are the
    program's), namespaces and the tool API import as themselves; everywhere else (the
    stdlib's own imports) it is the stock import."""
    if level == 0 and globals is Registry.env and globals:
        ns = Registry.namespaces.get(name)
        if ns is not None:
            return ns
        if name == "tools":
            return Registry.env.get("tools")
        if name == "codemode":
            return Registry.env.get("__codemode_module__")
    try:
        return _real_import(name, globals, locals, fromlist, level)
    except ModuleNotFoundError:
        if level != 0 or not fromlist or "." in name:
            raise
        tools = Registry.env.get("tools")
        found = {}
        for wanted in fromlist:
            match = tools._find(wanted) if tools is not None else []
            if len(match) != 1:
                raise
            found[wanted] = match[0]
        return _FromTools(found)
