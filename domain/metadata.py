"""A job's metadata: the client's own JSON object, kept with the job and handed back with
it everywhere (reads, live progress, webhooks), so a result can be matched to the
client's records without a lookup.

Limits (docs/api.md): a JSON object of at most MAX_KEYS top-level keys, each 1 to 64
letters, digits, `_` or `-` (so `GET /api/jobs?metadata.<key>=<value>` can name it);
a top-level string is at most MAX_STRING characters; nested values are any JSON; the
whole is at most MAX_BYTES bytes as compact UTF-8 JSON.

A job can be found by one top-level key: `filter_values` gives the text each of its
top-level strings, numbers and booleans is matched by (a string as it is, a number or
boolean as JSON writes it: `42`, `4.5`, `true`). Objects, arrays and null are kept and
returned, but not filtered on.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_BYTES = 4096
MAX_KEYS = 50
MAX_STRING = 500
KEY_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_KEY = re.compile(KEY_PATTERN)


def size_of(metadata: dict[str, Any]) -> int:
    """Its size as the limit counts it: compact UTF-8 JSON."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def problems(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """What breaks the limits, as (the top-level key it is about, or "", message)."""
    found: list[tuple[str, str]] = []
    if len(metadata) > MAX_KEYS:
        found.append(("", f"At most {MAX_KEYS} keys"))
    for key, value in metadata.items():
        if not _KEY.fullmatch(key):
            found.append((key, "Keys are 1 to 64 letters, digits, _ or -"))
        elif isinstance(value, str) and len(value) > MAX_STRING:
            found.append((key, f"Longer than {MAX_STRING} characters"))
    if not found and size_of(metadata) > MAX_BYTES:
        found.append(("", f"Larger than {MAX_BYTES} bytes as JSON"))
    return found


def is_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def filter_values(metadata: dict[str, Any]) -> dict[str, str]:
    """Each top-level key a job can be found by, with the text its value is matched by."""
    found: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            found[key] = value
        elif isinstance(value, bool | int | float):
            found[key] = json.dumps(value)
    return found
