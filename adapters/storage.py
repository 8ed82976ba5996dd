"""Where finished renders are kept, and how they are named.

Renders are stored under an output directory (shared between worker and API processes
in production, e.g. a volume) by job id. Events record the location relative to that
directory, never a URL, so the public address can change without rewriting history.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from uuid import UUID


class OutputStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def location_for(job_id: UUID) -> str:
        return f"{job_id}.mp4"

    def store(self, job_id: UUID, rendered: Path, *, move: bool = False) -> str:
        """Put a finished render in place atomically; return its location.

        With `move`, the file is handed over: renamed into place when it is on the
        same filesystem (nothing copied), copied otherwise. Without, it is copied."""
        location = self.location_for(job_id)
        self._put(rendered, location, move)
        return location

    def store_poster(self, job_id: UUID, poster: Path, *, move: bool = False) -> str:
        """Put a render's JPEG poster frame in place beside it; return its location."""
        location = f"{job_id}.jpg"
        self._put(poster, location, move)
        return location

    def _put(self, source: Path, location: str, move: bool) -> None:
        final = self.root / location
        if move:
            try:
                os.replace(source, final)  # atomic: readers see no file or all of it
                return
            except OSError as error:
                if error.errno != errno.EXDEV:  # EXDEV: another filesystem, so copy
                    raise
        partial = final.with_name(f"{final.name}.part")
        shutil.copyfile(source, partial)
        os.replace(partial, final)  # readers never see a half-written file

    def remove(self, location: str) -> None:
        found = self.path_of(location)
        if found is not None:
            found.unlink(missing_ok=True)

    def path_of(self, location: str) -> Path | None:
        """The file for a location, or None if the name is not one of ours."""
        try:
            candidate = (self.root / location).resolve()
            if candidate.parent != self.root.resolve() or not candidate.is_file():
                return None
        except (OSError, ValueError):  # a name no file can have: too long, or with a NUL
            return None
        return candidate
