"""Instants as the contract writes them: ISO 8601 in UTC with a Z."""

from __future__ import annotations

from datetime import datetime


def iso(moment: datetime, timespec: str = "milliseconds") -> str:
    """`2026-01-15T10:30:00.123Z` (or to the second with timespec="seconds")."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
