"""IANA time zone data for `zoneinfo`, read from the tzdata package at build time.

There are no files at run time, so `zoneinfo` is pointed at an in-memory copy: every zone
of the tzdata package the build found, each zlib-compressed (~240 KB in all). The build
puts tzdata on the guest's path (see `_build.py`); without it, zoneinfo has no zones and
says so.
"""

import importlib.resources
import io
import zlib
import zoneinfo
import zoneinfo._common
import zoneinfo._tzpath

ZONES: dict[str, bytes] = {}


def _read_tzdata() -> None:
    try:
        root = importlib.resources.files("tzdata")
    except ModuleNotFoundError:
        return
    for key in (root / "zones").read_text(encoding="utf-8").split():
        ZONES[key] = zlib.compress((root / "zoneinfo" / key).read_bytes(), 9)


ABBREVIATIONS = {
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles", "MST": "America/Denver",
    "CST": "America/Chicago", "EST": "America/New_York", "EDT": "America/New_York",
    "GMT": "Europe/London", "BST": "Europe/London", "CET": "Europe/Paris",
    "CEST": "Europe/Paris", "IST": "Asia/Kolkata", "JST": "Asia/Tokyo",
    "AEST": "Australia/Sydney",
}  # fmt: skip
"""Abbreviations programs pass for zones (ambiguous ones mapped to their commonest zone)."""


def _load_tzdata(key):
    data = ZONES.get(key) if isinstance(key, str) else None
    if data is None:
        meant = ABBREVIATIONS.get(str(key).upper())
        example = f"{key} is e.g. {meant!r}" if meant else "'America/New_York', 'Europe/Paris'"
        raise zoneinfo.ZoneInfoNotFoundError(
            f"No time zone found with key {key!r}; keys are IANA names ({example}, or "
            "'UTC'; zoneinfo.available_timezones() lists them)"
        )
    return io.BytesIO(zlib.decompress(data))


def _available_timezones() -> set[str]:
    return set(ZONES)


_read_tzdata()
zoneinfo.reset_tzpath(to=[])
zoneinfo._common.load_tzdata = _load_tzdata
zoneinfo.available_timezones = _available_timezones
zoneinfo._tzpath.available_timezones = _available_timezones
