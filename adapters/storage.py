"""Where finished renders are kept, and how they are named.

Renders are stored under an output directory (shared between worker and API processes
in production, e.g. a volume) by job id. Events record the location relative to that
directory, never a URL, so the public address can change without rewriting history.
"""

from __future__ import annotations

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

    def store(self, job_id: UUID, rendered: Path) -> str:
        """Move a finished render into place atomically; return its location."""
        location = self.location_for(job_id)
        final = self.root / location
        partial = final.with_suffix(".part")
        shutil.copyfile(rendered, partial)
        os.replace(partial, final)  # readers never see a half-written file
        return location

    def store_poster(self, job_id: UUID, poster: Path) -> str:
        """Move a render's JPEG poster frame into place beside it; return its location."""
        location = f"{job_id}.jpg"
        final = self.root / location
        partial = final.with_suffix(".jpg.part")
        shutil.copyfile(poster, partial)
        os.replace(partial, final)
        return location

    def remove(self, location: str) -> None:
        found = self.path_of(location)
        if found is not None:
            found.unlink(missing_ok=True)

    def path_of(self, location: str) -> Path | None:
        """The file for a location, or None if the name is not one of ours."""
        candidate = (self.root / location).resolve()
        if candidate.parent != self.root.resolve() or not candidate.is_file():
            return None
        return candidate
