"""What a render that cannot be done raises: one line an API user can act on.

Every part of the render package raises it (a source that is not media, a missing
font, FFmpeg's own error, a deadline passed); workers/render.py turns it into the
job's failure.
"""

from __future__ import annotations


class RenderFailed(Exception):
    """A render FFmpeg could not do.

    `message` is FFmpeg's one meaningful error line (not the whole stderr), or what
    was wrong with a media source, suitable for an API user.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
