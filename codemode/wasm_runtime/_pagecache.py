"""How much of the two large files a worker maps ends up in its RSS: the compiled
artifact (its code, and the heap image each instance maps copy-on-write) and wasmtime's
library.

The kernel maps more of them than a run touches. On a fault it also maps the cached pages
around the faulting one (fault-around, 64 KB); on a page not cached it reads ahead (up to
the disk's `read_ahead_kb`: 8 MB on this machine's disk). So:
- every mapping of either file is advised MADV_RANDOM as it appears (`worker.c`, and
  `advise_random` here for the Python worker): a page not cached is read alone;
- the artifact's cached pages are dropped after a build wrote it and after a checksum
  read it whole (`drop`): with the whole file cached, fault-around maps most of the heap
  image into every instance (~10 MB more per worker).

Reading pages one at a time costs when the cache has lost them: the kernel may reclaim
cache no process maps (here a DAMON `pageout` scheme takes what was unused for a minute):
the heap-image pages only runs touch (mapped only while a run is on), and everything once
no worker is left. A gather in a new process after that took 75-84 ms instead of 57-61.
So a record is kept (`pages.json` beside the artifact, each range tied to its file's
size and mtime): a build starts it (`_warmup` runs the common ways once), and
`remember`, after a pool's 1st, 16th, 256th and 4096th runs, adds the heap image's
cached pages and the pages a worker's lasting mappings (the code, the library) map;
`settle_soon`, when a worker starts and before a run after a
quiet spell, has a thread read the recorded pages the cache lacks ahead (in ranges), and
drop cached image pages far outside the record that no process maps (a copy of the file
read it, say).

All of it is advice: what a guest sees is the same, and where it cannot be given (not
Linux, a read-only cache) nothing is done.
"""

from __future__ import annotations

import _thread  # built in: its lock without importing threading
import contextlib
import functools
import json
import os
import sys

# (logging, re and ctypes are imported where used, and no pathlib or typing: the Python
# worker imports this module for advise_random alone, and starts faster without them)

RECORD_NAME = "pages.json"
REMEMBER_AT = frozenset({1, 16, 256, 4096})
"""A pool's run counts after which `remember` adds to the record."""
QUIET_S = 20.0
"""A run after this long without one settles the cache first."""

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROT_READ = _MAP_SHARED = 1
_MADV_RANDOM = 1
_BIT0 = bytes(i & 1 for i in range(256))  # mincore's other bits are reserved


@functools.cache
def _libc():
    """libc's madvise, mmap, munmap and mincore through ctypes (imported on first use),
    or None off Linux."""
    if not sys.platform.startswith("linux") or not hasattr(os, "posix_fadvise"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]  # fmt: skip
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    except (ImportError, OSError, AttributeError):
        return None
    return libc


def _mappings(pid: int | str, paths: list[str]) -> list[tuple[int, int, bytes, int, str]]:
    """The mappings of these files in process `pid`: (start, end, permissions, file
    offset, path)."""
    ids = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        ids[(st.st_dev, st.st_ino)] = path
    try:
        with open(f"/proc/{pid}/maps", "rb") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6:
            continue
        major, minor = (int(x, 16) for x in fields[3].split(b":"))
        path = ids.get((os.makedev(major, minor), int(fields[4])))
        if path is not None:
            lo, hi = (int(x, 16) for x in fields[0].split(b"-"))
            found.append((lo, hi, fields[1], int(fields[2], 16), path))
    return found


def advise_random(paths: list[str]) -> None:
    """Advise MADV_RANDOM for every mapping of these files in this process (each new
    instance maps the heap image anew: call again then). `worker.c`'s advise_random."""
    libc = _libc()
    if libc is None:
        return
    for lo, hi, _, _, _ in _mappings("self", paths):
        libc.madvise(lo, hi - lo, _MADV_RANDOM)


def drop(path: os.PathLike[str]) -> None:
    """Drop the file's cached pages that no process maps: after a build wrote it or a
    checksum read it whole, workers would otherwise map most of it."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)  # pages written are dropped only once they are on disk
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cached(fd: int, offset: int, length: int) -> bytes:
    """One byte per page of the file's range: 1 where the page cache holds it."""
    import ctypes

    libc = _libc()
    # a mapping of its own, never touched: mincore then reads the cache
    addr = libc.mmap(None, length, _PROT_READ, _MAP_SHARED, fd, offset)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap")
    try:
        vector = ctypes.create_string_buffer(length // _PAGE + 1)
        if libc.mincore(addr, length, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return vector.raw[: (length + _PAGE - 1) // _PAGE].translate(_BIT0)
    finally:
        libc.munmap(addr, length)


def cached_pages(path: str | os.PathLike[str], offset: int, length: int) -> bytes:
    """`_cached` of a file's range, by path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _cached(fd, offset, length)
    finally:
        os.close(fd)


def _minus(a: bytes, b: bytes) -> bytes:
    """Pages in `a` and not in `b` (each one byte, 0 or 1, per page; the same length)."""
    n = len(a)
    ones = int.from_bytes(b"\x01" * n, "big")
    return (int.from_bytes(a, "big") & (ones ^ int.from_bytes(b, "big"))).to_bytes(n, "big")


def _advise(fd: int, offset: int, pages: bytes, advice: int) -> None:
    import re

    for run in re.finditer(rb"\x01+", pages):
        start, length = offset + run.start() * _PAGE, (run.end() - run.start()) * _PAGE
        os.posix_fadvise(fd, start, length, advice)


def file_identity(path: str | os.PathLike[str]) -> list[int]:
    """A file's inode, size and mtime: another file at the same path (a rebuild, a copy)
    differs in one of them."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _recorded_identity(path: str) -> list[int]:
    """What a record ties a range to: its file's size and mtime in whole seconds, which
    a copy that keeps times (an image layer, `cp -p`) keeps too; the inode it does not.
    (A rebuild replaces the artifact's whole folder, the record with it.)"""
    st = os.stat(path)
    return [st.st_size, int(st.st_mtime)]


Region = tuple[str, int, int]
"""A file's range: (path, offset, length)."""


def _load(record: os.PathLike[str]) -> dict[Region, tuple[str, bytes]]:
    """The recorded regions whose file is the one at their path now: for each, its kind
    ("image": the heap image; "mapped": a worker's lasting mapping) and its pages."""
    import base64
    import zlib

    try:
        with open(record, encoding="utf-8") as f:
            data = json.load(f)
        entries = data["regions"]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    if not isinstance(entries, list):
        return {}
    found: dict[Region, tuple[str, bytes]] = {}
    for entry in entries:
        try:
            path, offset, length = str(entry["path"]), int(entry["offset"]), int(entry["length"])
            identity = _recorded_identity(path)
            if entry["file"] != identity or entry["kind"] not in ("image", "mapped"):
                continue
            if offset % _PAGE or length <= 0 or offset + length > identity[0]:
                continue  # not a range of this file
            pages = zlib.decompress(base64.b64decode(entry["pages"]))
        except (OSError, ValueError, TypeError, KeyError, zlib.error):
            continue
        if len(pages) == (length + _PAGE - 1) // _PAGE:
            found[(path, offset, length)] = (entry["kind"], pages)
    return found


def _save(record: os.PathLike[str], regions: dict[Region, tuple[str, bytes]]) -> None:
    import base64
    import zlib

    entries = []
    for (path, offset, length), (kind, pages) in regions.items():
        try:
            identity = _recorded_identity(path)
        except OSError:
            continue
        packed = base64.b64encode(zlib.compress(pages)).decode()
        entries.append({"path": path, "file": identity, "offset": offset, "length": length,
                        "kind": kind, "pages": packed})  # fmt: skip
    staging = f"{os.fspath(record)}.tmp{os.getpid()}"
    try:
        with open(staging, "w", encoding="utf-8") as f:
            json.dump({"regions": entries}, f)
        os.replace(staging, record)
    except OSError:  # a read-only cache: the record is not kept
        with contextlib.suppress(OSError):
            os.unlink(staging)


_images: dict[tuple[str, int, int], tuple[int, int]] = {}


def image_of(pid: int, artifact: str) -> tuple[int, int] | None:
    """Where the heap image lies in the artifact (file offset, length): the file range an
    instance of worker `pid` maps writable. Kept once found (a worker has no instance
    while it makes its next one)."""
    try:
        st = os.stat(artifact)
    except OSError:
        return None
    key = (artifact, st.st_ino, st.st_size)  # a file rebuilt in place is another
    if key in _images:
        return _images[key]
    ranges = [(hi - lo, offset) for lo, hi, perms, offset, _ in _mappings(pid, [artifact])
              if perms.startswith(b"rw")]  # fmt: skip
    if not ranges:
        return None
    length, offset = max(ranges)
    _images[key] = offset, length
    return offset, length


_PRESENT = bytes(b >> 7 for b in range(256))  # a pagemap entry's top byte: bit 63, present


def _present(pid: int, lo: int, hi: int) -> bytes:
    """One byte per page of `pid`'s range [lo, hi): 1 where its page tables map it."""
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(lo // _PAGE * 8)
        entries = pagemap.read((hi - lo) // _PAGE * 8)
    return entries[7::8].translate(_PRESENT)  # little-endian: byte 7 holds bit 63


def _union(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") | int.from_bytes(b, "big")).to_bytes(len(a), "big")


WHOLE_READ = 0.8
"""Above this share of the heap image cached, something read the file whole (a copy, a
checksum) and the cache says nothing of what runs touch. Runs themselves touch ~60% of it
by the build's warm-up alone (3,038 of 5,089 pages, then 3,096 of 5,121 after a guest
change): the bound was 60%, and a guest change made the warm-up's record lose its image."""


def remember(record: os.PathLike[str], paths: list[str], pid: int) -> None:
    """Add to the record what worker `pid` uses of these files (the artifact first): the
    heap image's cached pages (not when more than `WHOLE_READ` of it is cached: then
    something other than runs read it), and the pages its lasting mappings (code, the
    library) map. Regions of other files are dropped: a cache that several environments
    share would otherwise list each one's wasmtime library, and every start would read
    them all ahead."""
    if _libc() is None:
        return
    seen: dict[Region, tuple[str, bytes]] = {}
    image = image_of(pid, paths[0])
    if image is not None:
        offset, length = image
        try:
            cached = cached_pages(paths[0], offset, length)
            if cached.count(1) <= len(cached) * WHOLE_READ:
                seen[(paths[0], offset, length)] = ("image", cached)
        except OSError:
            pass
    for lo, hi, perms, offset, path in _mappings(pid, paths):
        if not perms.startswith(b"rw"):
            try:
                seen[(path, offset, hi - lo)] = ("mapped", _present(pid, lo, hi))
            except OSError:
                continue
    loaded = _load(record)
    known = {region: value for region, value in loaded.items() if region[0] in paths}
    changed = len(known) != len(loaded)
    for region, (kind, pages) in seen.items():
        old = known.get(region)
        if old is not None and old[0] == kind:
            if not _minus(pages, old[1]).count(1):
                continue
            pages = _union(pages, old[1])
        known[region] = (kind, pages)
        changed = True
    if changed:
        _save(record, known)


def _in_thread(work, *args, daemon: bool) -> None:
    """Run `work(*args)` in a thread of its own; its errors are logged at debug level
    (advice only: never an error of a run's)."""
    import threading

    def run() -> None:
        try:
            work(*args)
        except Exception:
            import logging

            logging.getLogger("codemode.sandbox").debug("page-cache advice failed", exc_info=True)

    threading.Thread(target=run, name="codemode:page-cache", daemon=daemon).start()


_recording = _thread.allocate_lock()
"""One `remember` at a time: each adds to what the last one wrote."""


def remember_locked(record: os.PathLike[str], paths: list[str], pid: int) -> None:
    """`remember`, after any other that is running (a pool's, in its thread)."""
    with _recording:
        remember(record, paths, pid)


def remember_soon(record: os.PathLike[str], paths: list[str], pid: int) -> None:
    """`remember` in a thread: ~4 ms of reading /proc and the cache, which the caller's
    loop need not wait for. Not a daemon, so an exit waits for its write."""
    _in_thread(remember_locked, record, paths, pid, daemon=False)


def settle_soon(record: os.PathLike[str]) -> None:
    """`settle` in a thread of its own: with the cache cold, asking for ~20 MB to be read
    blocks for tens of milliseconds, and the caller's loop has other work."""
    _in_thread(settle, record, daemon=True)


def settle(record: os.PathLike[str]) -> None:
    """Read the recorded pages the cache lacks ahead (asynchronously), and drop cached
    image pages outside the record that no process maps, when they are many."""
    if _libc() is None:
        return
    for (path, offset, length), (kind, wanted) in _load(record).items():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            cached = _cached(fd, offset, length)
            extra = _minus(cached, wanted)
            if kind == "image" and extra.count(1) * 4 > len(cached):
                _advise(fd, offset, extra, os.POSIX_FADV_DONTNEED)
            _advise(fd, offset, _minus(wanted, cached), os.POSIX_FADV_WILLNEED)
        except OSError:
            pass  # advice only
        finally:
            os.close(fd)
