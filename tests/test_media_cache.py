"""The media cache: sources downloaded once per host, revalidated, capped in bytes.

A real HTTP server on 127.0.0.1, started here, serves small files with an `ETag`
and/or `Last-Modified`, answers conditional requests with 304 and counts every
answer; the fetchers may reach it only because these tests set allow_private.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import imageio_ffmpeg
import pytest
from aiohttp import web

from phantomflow.adapters.media import FetchedMedia, FetchLimits, MediaFetcher, MediaFetchFailed
from phantomflow.adapters.media_cache import MediaCache
from phantomflow.adapters.render import renderer_for
from phantomflow.adapters.settings import Settings
from phantomflow.api.sse import progress_event
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MediaSource, MovieScript
from phantomflow.projections.job_view import history_entry
from phantomflow.workers.render import RenderService
from tests.conftest import TINY_SCRIPT
from tests.servers.http import app_in_thread

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    body: bytes
    content_type: str = "video/mp4"
    etag: str | None = None
    last_modified: str | None = None
    cache_control: str | None = None
    seconds: float = 0.0  # spread the body over this long


@dataclass
class MediaServer:
    base: str
    files: dict[str, Served]
    answers: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, name: str, body: bytes, **kwargs: object) -> str:
        self.files[name] = Served(body, **kwargs)  # type: ignore[arg-type]
        return self.url(name)

    def downloads(self, name: str) -> int:
        return self.answers[(name, 200)]

    def revalidations(self, name: str) -> int:
        return self.answers[(name, 304)]

    def requests(self, name: str) -> int:
        return sum(count for (served, _), count in self.answers.items() if served == name)


@pytest.fixture
def server() -> Iterator[MediaServer]:
    files: dict[str, Served] = {}
    state: dict = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        media: MediaServer = state["server"]
        served = files.get(name)
        if served is None:
            media.answers[(name, 404)] += 1
            raise web.HTTPNotFound()
        headers = {"Content-Type": served.content_type}
        if served.etag:
            headers["ETag"] = served.etag
        if served.last_modified:
            headers["Last-Modified"] = served.last_modified
        if served.cache_control:
            headers["Cache-Control"] = served.cache_control
        etag_matches = served.etag and request.headers.get("If-None-Match") == served.etag
        since = request.headers.get("If-Modified-Since")
        unmodified = not served.etag and served.last_modified and since == served.last_modified
        if etag_matches or unmodified:
            media.answers[(name, 304)] += 1
            return web.Response(status=304, headers=headers)
        media.answers[(name, 200)] += 1
        headers["Content-Length"] = str(len(served.body))
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        pieces = 10 if served.seconds else 1
        step = -(-len(served.body) // pieces)
        for start in range(0, len(served.body), step):
            await response.write(served.body[start : start + step])
            await asyncio.sleep(served.seconds / pieces)
        return response

    app = web.Application()
    app.router.add_get("/{name}", serve)
    with app_in_thread(app) as base:
        state["server"] = MediaServer(base, files)
        yield state["server"]


def fetcher(cache: MediaCache | None, **limits: float) -> MediaFetcher:
    return MediaFetcher(allow_private=True, limits=FetchLimits(**limits), cache=cache)


def fetch(media_fetcher: MediaFetcher, url: str, folder: Path) -> FetchedMedia:
    source = MediaSource(url=url, kind="video", path="scenes.0.elements.0.src")
    return media_fetcher.fetch_all([source], folder)[url]


VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # ~10 KB
CHANGED = b"\x00\x00\x00\x18ftypmp42" + bytes(reversed(range(256))) * 40


def test_a_source_is_downloaded_once_then_revalidated_by_etag_and_reused(
    server: MediaServer, tmp_path: Path
):
    url = server.put("clip.mp4", VIDEO, etag='"v1"')
    media = fetcher(MediaCache(tmp_path / "cache"))

    first = fetch(media, url, tmp_path / "job1")
    second = fetch(media, url, tmp_path / "job2")

    assert (first.from_cache, second.from_cache) == (False, True)
    assert first.path.read_bytes() == second.path.read_bytes() == VIDEO
    assert (server.downloads("clip.mp4"), server.revalidations("clip.mp4")) == (1, 1)
    assert second.content_type == "video/mp4" and second.size_bytes == len(VIDEO)


def test_a_source_with_only_last_modified_is_revalidated_by_date(
    server: MediaServer, tmp_path: Path
):
    url = server.put("clip.mp4", VIDEO, last_modified=formatdate(1_700_000_000, usegmt=True))
    media = fetcher(MediaCache(tmp_path / "cache"))

    fetch(media, url, tmp_path / "job1")
    again = fetch(media, url, tmp_path / "job2")

    assert again.from_cache and again.path.read_bytes() == VIDEO
    assert (server.downloads("clip.mp4"), server.revalidations("clip.mp4")) == (1, 1)


def test_changed_content_is_downloaded_again_and_replaces_the_entry(
    server: MediaServer, tmp_path: Path
):
    url = server.put("clip.mp4", VIDEO, etag='"v1"')
    media = fetcher(MediaCache(tmp_path / "cache"))
    old = fetch(media, url, tmp_path / "job1")

    server.put("clip.mp4", CHANGED, etag='"v2"')
    new = fetch(media, url, tmp_path / "job2")
    again = fetch(media, url, tmp_path / "job3")

    assert not new.from_cache and new.path.read_bytes() == CHANGED
    assert again.from_cache and again.path.read_bytes() == CHANGED
    assert old.path.read_bytes() == VIDEO, "a job's copy never changes under it"
    assert server.downloads("clip.mp4") == 2


def test_a_source_that_cannot_be_revalidated_is_not_kept(server: MediaServer, tmp_path: Path):
    plain = server.put("plain.mp4", VIDEO)
    private = server.put("private.mp4", VIDEO, etag='"p"', cache_control="no-store")
    cache = MediaCache(tmp_path / "cache")
    media = fetcher(cache)

    for job in range(2):
        assert not fetch(media, plain, tmp_path / f"plain{job}").from_cache
        assert not fetch(media, private, tmp_path / f"private{job}").from_cache

    assert server.downloads("plain.mp4") == server.downloads("private.mp4") == 2
    assert cache.total_bytes() == 0


def test_least_recently_used_entries_are_evicted_by_bytes(server: MediaServer, tmp_path: Path):
    size = len(VIDEO)
    urls = {name: server.put(name, VIDEO, etag=f'"{name}"') for name in ("a", "b", "c")}
    cache = MediaCache(tmp_path / "cache", max_bytes=2 * size + size // 2)  # room for two
    media = fetcher(cache)

    fetch(media, urls["a"], tmp_path / "1")
    fetch(media, urls["b"], tmp_path / "2")
    assert fetch(media, urls["a"], tmp_path / "3").from_cache  # a is now the more recent
    fetch(media, urls["c"], tmp_path / "4")  # no room for three: b goes

    assert cache.total_bytes() == 2 * size
    assert fetch(media, urls["a"], tmp_path / "5").from_cache
    assert fetch(media, urls["c"], tmp_path / "6").from_cache
    assert not fetch(media, urls["b"], tmp_path / "7").from_cache
    assert [server.downloads(name) for name in "abc"] == [1, 2, 1]


def test_the_cache_never_holds_more_than_its_cap(server: MediaServer, tmp_path: Path):
    cap = 35_000
    cache = MediaCache(tmp_path / "cache", max_bytes=cap)
    media = fetcher(cache)
    big = server.put("big.mp4", VIDEO * 4, etag='"big"')  # ~40 KB: larger than the cap

    for number in range(12):
        body = VIDEO[: 3000 + 1000 * number]
        fetch(media, server.put(f"f{number}", body, etag=f'"{number}"'), tmp_path / f"{number}")
        assert cache.total_bytes() <= cap
    too_big = fetch(media, big, tmp_path / "big")

    assert too_big.path.read_bytes() == VIDEO * 4, "delivered, though not kept"
    assert cache.total_bytes() <= cap
    assert not fetch(media, big, tmp_path / "big2").from_cache


def test_concurrent_jobs_in_one_process_download_a_source_once(server: MediaServer, tmp_path: Path):
    url = server.put("shared.mp4", VIDEO * 20, etag='"s"', seconds=0.5)
    media = fetcher(MediaCache(tmp_path / "cache"))
    jobs = 8
    start = threading.Barrier(jobs)
    results: list[FetchedMedia] = []

    def job(number: int) -> None:
        start.wait()
        results.append(fetch(media, url, tmp_path / f"job{number}"))

    threads = [threading.Thread(target=job, args=(n,)) for n in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == jobs
    assert server.downloads("shared.mp4") == 1
    assert sorted(result.from_cache for result in results) == [False] + [True] * (jobs - 1)
    assert all(result.path.read_bytes() == VIDEO * 20 for result in results)


FETCH_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from phantomflow.adapters.media import FetchLimits, MediaFetcher
from phantomflow.adapters.media_cache import MediaCache
from phantomflow.domain.script import MediaSource
url, cache, work = sys.argv[1:]
media = MediaFetcher(allow_private=True, limits=FetchLimits(), cache=MediaCache(Path(cache)))
got = media.fetch_all([MediaSource(url, "video", "src")], Path(work))[url]
print(json.dumps({"from_cache": got.from_cache, "bytes": got.path.stat().st_size}))
"""


def test_worker_processes_on_one_host_share_the_cache_and_download_once(
    server: MediaServer, tmp_path: Path
):
    url = server.put("shared.mp4", VIDEO * 20, etag='"s"', seconds=1.0)
    command = [sys.executable, "-c", FETCH_IN_ANOTHER_PROCESS, url, str(tmp_path / "cache")]
    processes = [
        subprocess.Popen(
            [*command, str(tmp_path / f"work{number}")], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for number in range(3)
    ]
    outputs = [json.loads(process.communicate(timeout=60)[0]) for process in processes]

    assert all(process.returncode == 0 for process in processes)
    assert server.downloads("shared.mp4") == 1
    assert sorted(output["from_cache"] for output in outputs) == [False, True, True]
    assert all(output["bytes"] == len(VIDEO) * 20 for output in outputs)


def test_a_file_in_use_survives_its_entry_being_evicted(server: MediaServer, tmp_path: Path):
    size = len(VIDEO)
    cache = MediaCache(tmp_path / "cache", max_bytes=size + size // 2)  # room for one
    media = fetcher(cache)
    in_use = fetch(media, server.put("a", VIDEO, etag='"a"'), tmp_path / "render1")

    fetch(media, server.put("b", CHANGED, etag='"b"'), tmp_path / "render2")  # evicts a

    assert len(cache.entry_names()) == 1
    assert in_use.path.read_bytes() == VIDEO
    # Read-only, so that nothing a render does through its link can alter a cached copy.
    assert in_use.path.stat().st_mode & 0o222 == 0


def test_an_entry_held_by_a_job_is_not_evicted_until_it_is_released(
    server: MediaServer, tmp_path: Path
):
    size = len(VIDEO)
    cache = MediaCache(tmp_path / "cache", max_bytes=size + size // 2)  # room for one
    media = fetcher(cache)
    held_url = server.put("held", VIDEO, etag='"h"')
    fetch(media, held_url, tmp_path / "first")
    held_name = cache.entry_names()[0]

    async def while_held() -> None:
        async with cache.url_slot(held_url) as slot:
            assert slot.info is not None
            other = server.put("other", CHANGED, etag='"o"')
            await asyncio.to_thread(fetch, media, other, tmp_path / "second")
            assert held_name in cache.entry_names(), "held: eviction passes it by"

    asyncio.run(while_held())
    fetch(media, server.put("third", VIDEO[:-1], etag='"t"'), tmp_path / "third")

    assert held_name not in cache.entry_names()
    assert cache.total_bytes() <= cache.max_bytes


def test_the_cache_keeps_every_address_rule(server: MediaServer, tmp_path: Path):
    url = server.put("clip.mp4", VIDEO, etag='"v1"')
    cache = MediaCache(tmp_path / "cache")
    fetch(fetcher(cache), url, tmp_path / "allowed")

    strict = MediaFetcher(cache=cache)  # the production default: no private addresses
    with pytest.raises(MediaFetchFailed) as refused:
        fetch(strict, url, tmp_path / "refused")

    assert "not a public address" in refused.value.message
    assert server.requests("clip.mp4") == 1
    assert not (tmp_path / "refused" / "media_001").exists()


def test_a_cached_source_larger_than_a_fetchers_limit_is_refused(
    server: MediaServer, tmp_path: Path
):
    url = server.put("clip.mp4", VIDEO, etag='"v1"')
    cache = MediaCache(tmp_path / "cache")
    fetch(fetcher(cache), url, tmp_path / "first")

    with pytest.raises(MediaFetchFailed) as failure:
        fetch(fetcher(cache, max_bytes=1000), url, tmp_path / "second")

    assert "larger than the limit" in failure.value.message


def test_entries_by_sha256_are_fetched_once_and_checked(tmp_path: Path):
    cache = MediaCache(tmp_path / "cache")
    digest = hashlib.sha256(VIDEO).hexdigest()
    calls: list[Path] = []

    def fetch_asset(path: Path) -> None:
        calls.append(path)
        path.write_bytes(VIDEO)

    hit_first = cache.by_sha256(digest, fetch_asset, tmp_path / "one.mp4")
    hit_second = cache.by_sha256(digest.upper(), fetch_asset, tmp_path / "two.mp4")

    assert (hit_first, hit_second, len(calls)) == (False, True, 1)
    assert (tmp_path / "two.mp4").read_bytes() == VIDEO

    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="sha256"):
        cache.by_sha256(wrong, fetch_asset, tmp_path / "three.mp4")
    with pytest.raises(ValueError, match="not a sha256"):
        cache.by_sha256("../../etc/passwd", fetch_asset, tmp_path / "four.mp4")
    assert cache.total_bytes() == len(VIDEO)


def make_png(target: Path) -> bytes:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "color=c=0x00FF00:s=64x48", "-frames:v", "1", str(target)],
        check=True, timeout=60,
    )  # fmt: skip
    return target.read_bytes()


@pytest.mark.ffmpeg
def test_each_jobs_downloading_stage_says_whether_its_sources_came_from_the_cache(
    runtime, server: MediaServer, tmp_path: Path
):
    image = server.put(
        "green.png", make_png(tmp_path / "green.png"), content_type="image/png", etag='"g"'
    )
    settings = dataclasses.replace(
        runtime.settings, allow_private_urls=True, media_cache_dir=tmp_path / "cache"
    )
    worker = RenderService(
        app=runtime.app, renderer=renderer_for(settings), storage=runtime.storage
    )
    account = runtime.app.open_account(plan="pro", credits=100)
    script = {**TINY_SCRIPT, "scenes": [{"duration": 1, "background": {"type": "image", "src": image}}]}  # fmt: skip
    reports = []
    for _ in range(2):
        job_id = runtime.app.submit_render(
            account.account_id, MovieScript.from_dict(script), None, {}
        ).job_id
        assert worker.run(job_id) == "completed"
        events = runtime.app.events.get(job_id)
        reports.append([e for e in events if isinstance(e, RenderJob.ProgressReported)])

    assert server.downloads("green.png") == 1
    for progress, expected in zip(reports, ({"hits": 0, "misses": 1}, {"hits": 1, "misses": 0}), strict=True):  # fmt: skip
        said = [e for e in progress if e.media_cache is not None]
        assert [(e.stage, e.media_cache) for e in said] == [("downloading", expected)]
        # As GET /api/jobs/{id}/events and the SSE `progress` event show it.
        assert history_entry(said[0])["data"]["media_cache"] == expected
        name, data = progress_event(said[0], "http://api", None)  # type: ignore[misc]
        assert (name, data["stage"], data["mediaCache"]) == ("progress", "downloading", expected)
        later = progress_event(progress[-1], "http://api", None)
        assert later is not None and "mediaCache" not in later[1]


def test_the_cache_is_configured_from_the_environment(tmp_path: Path):
    folder = tmp_path / "shared-cache"
    settings = Settings.from_env(
        {"PHANTOMFLOW_MEDIA_CACHE_BYTES": "5000000", "PHANTOMFLOW_MEDIA_CACHE_DIR": str(folder)}
    )
    cache = renderer_for(settings).fetcher.cache
    assert cache is not None and (cache.folder, cache.max_bytes) == (folder, 5_000_000)

    default = renderer_for(Settings.from_env({})).fetcher.cache
    assert default is not None and default.max_bytes == 1024**3
    off = Settings.from_env({"PHANTOMFLOW_MEDIA_CACHE_BYTES": "0"})
    assert renderer_for(off).fetcher.cache is None
