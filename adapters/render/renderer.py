"""The renderer: a movie script in, an MP4 and its JPEG poster out (see the package's docstring).

`FFmpegRenderer.render` runs the stages in order: the fonts are checked, the media
downloaded (adapters/media.py, through the host's media cache) and probed (probe.py),
the script's one FFmpeg run built (graph.py) and run under watch (process.py) while
its progress is reported (progress.py), then the file's duration is read and its
poster taken. `renderer_for` makes the renderer a deployment's settings ask for.

A font that is missing or not a font fails the render up front: with fontconfig in
this FFmpeg build, drawtext would otherwise quietly substitute whatever system font
fontconfig finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from phantomflow.adapters.asset_files import LocalAsset
from phantomflow.adapters.media import FetchLimits, MediaFetcher, MediaFetchFailed
from phantomflow.adapters.media_cache import MediaCache
from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.graph import GraphBuilder, poster_command, poster_time
from phantomflow.adapters.render.preview import PreviewDrawing, ProxyResult, StoryboardCallback
from phantomflow.adapters.render.probe import MediaInfo, measure_duration, probe_sources
from phantomflow.adapters.render.process import (
    RENDER_NICENESS,
    STALL_SECONDS,
    Deadline,
    run_checked,
)
from phantomflow.adapters.render.progress import (
    DOWNLOAD_END,
    FRAMES_END,
    ProgressCallback,
    ProgressReporter,
    frame_progress,
)
from phantomflow.adapters.settings import Settings
from phantomflow.adapters.storage import StorageError
from phantomflow.domain.assets import is_asset_ref
from phantomflow.domain.errors import DomainError
from phantomflow.domain.script import MovieScript, TextElement

FONTS_DIR = Path(__file__).parent / "fonts"
FONT_FILES: dict[tuple[str, str], str] = {
    ("DejaVu Sans", "normal"): "DejaVuSans.ttf",
    ("DejaVu Sans", "bold"): "DejaVuSans-Bold.ttf",
    ("DejaVu Serif", "normal"): "DejaVuSerif.ttf",
    ("DejaVu Serif", "bold"): "DejaVuSerif-Bold.ttf",
    ("DejaVu Sans Mono", "normal"): "DejaVuSansMono.ttf",
    ("DejaVu Sans Mono", "bold"): "DejaVuSansMono-Bold.ttf",
}

# TrueType, OpenType (CFF) and TrueType collection signatures. Checked because this
# FFmpeg build has fontconfig: drawtext silently falls back to some system font when
# `fontfile` cannot be loaded, which would make output depend on the machine.
FONT_SIGNATURES = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf", b"wOFF")

# An uploaded asset's bytes as a local file for a render: (its `asset_…` id, the
# render's work folder) -> the file, and whether the host's media cache had it. Built by
# the composition root on the storage (adapters/asset_files.py `asset_local_file`).
AssetResolver = Callable[[str, Path], LocalAsset]


# The font of the "PREVIEW" watermark.
WATERMARK_FONT = ("DejaVu Sans", "bold")
# A preview that takes longer than this has failed (a render may take an hour).
PREVIEW_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class RenderResult:
    path: Path
    duration_seconds: float  # read from the real output file, not from the script
    file_size_bytes: int
    poster_path: Path | None = None  # a JPEG frame of the video, beside it


class FFmpegRenderer:
    def __init__(
        self,
        ffmpeg_exe: str | None = None,
        font_path: Path | None = None,
        timeout_seconds: float = 3600,
        stall_seconds: float = STALL_SECONDS,
        fetcher: MediaFetcher | None = None,
        assets: AssetResolver | None = None,
    ) -> None:
        """`font_path` replaces every bundled font with one file (tests, custom builds);
        `assets` gives the files of the uploaded assets a script names."""
        self.ffmpeg_exe = ffmpeg_exe or imageio_ffmpeg.get_ffmpeg_exe()
        self.font_path = font_path
        self.timeout_seconds = timeout_seconds
        self.stall_seconds = stall_seconds
        self.fetcher = fetcher or MediaFetcher()
        self.assets = assets

    def render(
        self,
        script: MovieScript,
        output_path: Path,
        on_progress: ProgressCallback,
        work_dir: Path,
    ) -> RenderResult:
        """Render `script` to `output_path` (and a JPEG poster beside it).

        Intermediate files go in `work_dir`. Raises RenderFailed when a source cannot
        be fetched or is not media, when FFmpeg cannot render the script, or when the
        deadline passes. An exception from `on_progress` kills FFmpeg and propagates
        as is; OSError means the FFmpeg binary could not be started (a deployment fault).
        """
        deadline = Deadline(self.timeout_seconds)
        progress = ProgressReporter(on_progress)
        work_dir = work_dir.resolve()
        output_path = output_path.resolve()
        poster_path = output_path.with_suffix(".jpg")
        work_dir.mkdir(parents=True, exist_ok=True)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        fonts = self._checked_fonts(script, work_dir)

        media = self._download(script, work_dir, progress, deadline)
        frames_start = DOWNLOAD_END if media else 0.0
        plan = GraphBuilder(script, fonts, media, work_dir).build(output_path)
        on_out_time = frame_progress(progress, script, frames_start)
        run_checked(
            plan.compile(cmd=self.ffmpeg_exe),
            deadline,
            on_out_time,
            work_dir,
            self.stall_seconds,
            RENDER_NICENESS,
        )
        progress.start_stage("encoding", FRAMES_END)
        duration = measure_duration(output_path)
        poster_at = min(poster_time(script.duration), duration / 2)
        poster = poster_command(output_path, poster_path, poster_at)
        run_checked(
            poster.compile(cmd=self.ffmpeg_exe),
            deadline,
            _ignore,
            work_dir,
            niceness=RENDER_NICENESS,
        )
        return RenderResult(
            path=output_path,
            duration_seconds=duration,
            file_size_bytes=output_path.stat().st_size,
            poster_path=poster_path if poster_path.is_file() else None,
        )

    def preview(
        self,
        script: MovieScript,
        output_dir: Path,
        on_progress: ProgressCallback,
        on_storyboard: StoryboardCallback,
        work_dir: Path,
    ) -> ProxyResult:
        """Draw the preview of `script` into `output_dir` (preview.py): its storyboard
        stills (`storyboard-NN.jpg`, handed to `on_storyboard` as soon as they are all
        drawn) and its proxy (`proxy.mp4`, drawn meanwhile, returned once the storyboard
        has been handed over). Fails as `render` does."""
        deadline = Deadline(min(self.timeout_seconds, PREVIEW_TIMEOUT_SECONDS))
        progress = ProgressReporter(on_progress)
        work_dir = work_dir.resolve()
        output_dir = output_dir.resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        fonts = self._checked_fonts(script, work_dir)
        watermark_font = _checked_font(self._font_file(WATERMARK_FONT))
        media = self._download(script, work_dir, progress, deadline)

        drawing = PreviewDrawing(
            ffmpeg_exe=self.ffmpeg_exe,
            script=script,
            fonts=fonts,
            watermark_font=watermark_font,
            media=media,
            work_dir=work_dir,
            output_dir=output_dir,
            deadline=deadline,
            stall_seconds=self.stall_seconds,
        )
        return drawing.draw(progress, DOWNLOAD_END if media else 0.0, on_storyboard)

    def _checked_fonts(self, script: MovieScript, work_dir: Path) -> dict[tuple[str, str], Path]:
        return {key: _checked_font(path) for key, path in self._fonts(script, work_dir).items()}

    def _font_file(self, key: tuple[str, str]) -> Path:
        return self.font_path or FONTS_DIR / FONT_FILES[key]

    def _fonts(self, script: MovieScript, work_dir: Path) -> dict[tuple[str, str], Path]:
        used = {
            (element.font_family, element.font_weight)
            for scene in script.scenes
            for element in scene.elements
            if isinstance(element, TextElement)
        }
        # An uploaded font is the one file for both weights: the text is drawn in it.
        uploaded = {key: self._asset(key[0], work_dir).path for key in used if is_asset_ref(key[0])}
        if self.font_path is not None:
            return {**dict.fromkeys(used, self.font_path), **uploaded}
        return {key: uploaded.get(key) or FONTS_DIR / FONT_FILES[key] for key in used}

    def _asset(self, ref: str, work_dir: Path) -> LocalAsset:
        if self.assets is None:
            raise RenderFailed(f"{ref}: this renderer has no asset storage")
        try:
            return self.assets(ref, work_dir)
        except (OSError, LookupError, DomainError, StorageError) as error:
            raise RenderFailed(f"{ref}: the asset's file could not be read ({error})") from None

    def _download(
        self,
        script: MovieScript,
        work_dir: Path,
        progress: ProgressReporter,
        deadline: Deadline,
    ) -> dict[str, MediaInfo]:
        sources = script.media_sources()
        if not sources:
            return {}
        progress.start_stage("downloading", 0.0)
        # Uploaded assets come from storage, URLs from the web; both through the host's
        # media cache, whose hits and misses the last `downloading` report carries.
        assets = {
            source.url: self._asset(source.url, work_dir)
            for source in sources
            if is_asset_ref(source.url)
        }
        files = {ref: asset.path for ref, asset in assets.items()}
        hits = sum(1 for asset in assets.values() if asset.from_cache is True)
        misses = sum(1 for asset in assets.values() if asset.from_cache is False)
        remote = [source for source in sources if source.url not in files]
        if remote:
            try:
                fetched = self.fetcher.fetch_all(
                    remote,
                    work_dir / "media",
                    lambda done, total: progress.advance(DOWNLOAD_END * 0.8 * done / total),
                )
            except MediaFetchFailed as failure:
                raise RenderFailed(failure.message) from None
            from_cache = sum(1 for file in fetched.values() if file.from_cache)
            hits += from_cache
            misses += len(fetched) - from_cache
            files.update({url: file.path for url, file in fetched.items()})
        progress.media_fetched(DOWNLOAD_END * 0.8, hits, misses)
        return probe_sources(self.ffmpeg_exe, sources, files, deadline)


def _ignore(_done: float) -> None:
    """The progress of a run too short to report."""


def _checked_font(font_path: Path) -> Path:
    """The font, if it is a font file; RenderFailed otherwise (see FONT_SIGNATURES)."""
    try:
        with font_path.open("rb") as font:
            signature = font.read(4)
    except OSError:
        raise RenderFailed(f"renderer font {font_path.name!r} is missing") from None
    if signature not in FONT_SIGNATURES:
        raise RenderFailed(f"renderer font {font_path.name!r} is not a TrueType/OpenType font")
    return font_path.resolve()


def renderer_for(settings: Settings, assets: AssetResolver | None = None) -> FFmpegRenderer:
    """The renderer a deployment's settings ask for (media download policy and limits,
    and the media cache, shared with the host's other workers through its folder),
    reading uploaded assets with `assets`."""
    cache = media_cache_for(settings)
    return FFmpegRenderer(
        assets=assets,
        fetcher=MediaFetcher(
            allow_private=settings.allow_private_urls,
            limits=FetchLimits(
                max_bytes=settings.media_max_bytes,
                timeout_seconds=settings.media_timeout_seconds,
            ),
            cache=cache,
        ),
    )


def media_cache_for(settings: Settings) -> MediaCache | None:
    """The host's media cache as the settings ask for it (None when turned off). Every
    instance over one folder is the same cache: they share it through the folder."""
    if settings.media_cache_bytes <= 0:
        return None
    return MediaCache(settings.media_cache_folder, settings.media_cache_bytes)
