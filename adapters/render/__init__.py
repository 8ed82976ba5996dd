"""Rendering a movie script to an MP4 with FFmpeg: one filter graph, one run.

Graphs are built with ffmpeg-python and run with the FFmpeg binary shipped in the
`imageio-ffmpeg` wheel. A render is:

1. `downloading`: every media `src` is fetched by our own code (adapters/media.py:
   http(s) only, public addresses only, size cap, time limit, Content-Type check;
   through the host's media cache, adapters/media_cache.py) into the work directory,
   and each file is opened once by FFmpeg to check it is media of the kind the script
   uses it as, and whether it has sound (probe.py).
2. One FFmpeg run of one filter graph built from the whole script (graph.py), run
   under watch: deadline, stall watchdog, stderr kept to its meaningful line
   (process.py). Its progress, by output time, is reported as `rendering_scene_N`
   (and `stitching` while a transition is being drawn) (progress.py).
3. `encoding`: the file is finished. Its duration is read from the MP4 header (the
   video track's, mp4.py; no second decoding pass) and the JPEG poster is one frame
   decoded from it.

renderer.py holds the entry point and runs these stages; the names below are what
the rest of the system uses. Failures raise RenderFailed (failure.py) with one line
an API user can act on.
"""

from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.progress import ProgressCallback
from phantomflow.adapters.render.renderer import FFmpegRenderer, RenderResult, renderer_for

__all__ = ["FFmpegRenderer", "ProgressCallback", "RenderFailed", "RenderResult", "renderer_for"]
