"""A byte-capped cache of downloaded media, shared by the worker processes of one host.

Twenty jobs that use the same 100 MB video should download it once. The cache is a
folder (`PHANTOMFLOW_MEDIA_CACHE_DIR`, by default `phantomflow-media-cache` in the
system's temporary directory, where renders keep their scratch files) holding at most
`max_bytes` (`PHANTOMFLOW_MEDIA_CACHE_BYTES`) of entries; past that the least recently
used are deleted. Its API is small:

- `url_slot(url)`: an entry keyed by URL, held exclusively while the caller (only
  adapters/media.py) revalidates it with the validators it keeps (`ETag`,
  `Last-Modified`), downloads it, or uses it. Holding the slot is the single flight:
  a job that needs a URL another job is downloading waits for that download and then
  uses the bytes (`Slot.joined`) without asking the server again.
- `by_sha256(sha256, fetch, into)`: an entry keyed by its content, for bytes whose
  sha256 the caller already knows (an uploaded asset). On a miss `fetch(path)` writes
  them; they are checked against the sha256 and kept. Content-addressed bytes cannot
  go stale, so they are never revalidated.

Both hand the bytes over as a hard link in the caller's own folder (a copy when that
folder is on another filesystem): an entry evicted or replaced while a render reads
its link changes nothing for that render, whose link keeps the old bytes until its
scratch folder goes. Entries are read-only, so nothing written through a link can
change the cache. Linked files still in use are not counted against the cap. An
entry is never evicted while it is held (read, downloaded or replaced), so with many
jobs at once the folder can pass its cap by the entries held at that moment; each
slot released evicts again.

Across threads and processes the folder is coordinated with `flock` only, no server:
an entry's lock (one of LOCK_STRIPES files, chosen by the key's hash, so the folder
does not fill with lock files) is held while it is read, downloaded or replaced, and
eviction skips any entry whose lock is held. Recency is the data file's mtime, touched
on every use, so every process sees the same order. Layout:

    entries/<name>.data   the bytes (read-only)
    entries/<name>.json   what they are (EntryInfo)
    locks/<stripe>.lock   flock targets
    tmp/                  downloads in progress
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # 1 GiB
# 16 ** 3 lock files at most; two keys share a lock once in 4,096 (and then only wait
# for each other).
STRIPE_HEX_DIGITS = 3
# A download in tmp/ this old belongs to a process that died (downloads time out in
# minutes): eviction removes it.
ORPHAN_SECONDS = 3600.0
LOCK_POLL_SECONDS = (0.005, 0.1)  # first and longest wait between tries of a busy lock
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EntryInfo:
    """What an entry's bytes are. URL entries keep the validators they are revalidated
    with and the URL they finally came from (after redirects)."""

    size: int
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None
    validated_at: float = 0.0  # time.time() of the last download or revalidation


class MediaCache:
    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._entries = folder / "entries"
        self._locks = folder / "locks"
        self._tmp = folder / "tmp"
        for path in (self._entries, self._locks, self._tmp):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    # --- the two ways in ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def url_slot(self, url: str) -> AsyncIterator[Slot]:
        """The entry of `url`, held (across threads and processes) until the block ends."""
        name = "url-" + hashlib.sha256(url.encode()).hexdigest()
        asked_at = time.time()
        fd = await self._lock_async(name)
        try:
            with Slot(self, name, asked_at) as slot:
                yield slot
        finally:
            os.close(fd)  # releases the flock
        # An eviction that had to pass this entry by (in use) may have left the folder
        # over its cap: now it can go.
        self.evict()

    def by_sha256(self, sha256: str, fetch: Callable[[Path], None], into: Path) -> bool:
        """Put the bytes whose sha256 is `sha256` at `into`; True if the cache had them.

        On a miss `fetch(path)` must write them to `path`; what it wrote is hashed and
        kept only if it matches (ValueError otherwise, nothing kept). Exceptions from
        `fetch` propagate. Blocks while another thread or process fetches the same
        sha256, then uses its bytes."""
        sha256 = sha256.lower()
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        name = f"sha256-{sha256}"
        fd = self._lock_blocking(name)
        try:
            with Slot(self, name, time.time()) as slot:
                if slot.info is not None:
                    slot.touch()
                    slot.link_into(into)
                    return True
                temp = slot.temp_path()
                fetch(temp)
                digest = hashlib.sha256()
                with temp.open("rb") as file:
                    while chunk := file.read(1024 * 1024):
                        digest.update(chunk)
                if digest.hexdigest() != sha256:
                    raise ValueError(f"the fetched bytes' sha256 is {digest.hexdigest()}")
                slot.store(temp, EntryInfo(size=temp.stat().st_size), into)
                return False
        finally:
            os.close(fd)
            self.evict()

    # --- what is in it -----------------------------------------------------------------

    def total_bytes(self) -> int:
        """The bytes of every entry (the figure the cap applies to)."""
        return sum(size for _mtime, size, _name in self._scan())

    def entry_names(self) -> list[str]:
        """Every entry's name, least recently used first."""
        return [name for _mtime, _size, name in sorted(self._scan())]

    # --- eviction ----------------------------------------------------------------------

    def evict(self, keep: str | None = None) -> None:
        """Delete the least recently used entries until the rest fit in `max_bytes`;
        never `keep` (just stored) nor an entry whose lock is held (in use)."""
        self._remove_orphans()
        if self.total_bytes() <= self.max_bytes:
            return
        # One evictor at a time, reading the folder once it has the lock: two that
        # read it at once would both delete for the same excess.
        with self._held(self._locks / "evict.lock"):
            entries = sorted(self._scan())
            total = sum(size for _mtime, size, _name in entries)
            for _mtime, size, name in entries:
                if total <= self.max_bytes:
                    break
                if name == keep:
                    continue
                fd = self._try_lock(name)
                if fd is None:
                    continue  # in use: it stays, and the cap is over for that long
                try:
                    removed = _remove_entry(self._entries, name)
                finally:
                    os.close(fd)
                if removed:
                    total -= size

    def _scan(self) -> list[tuple[float, int, str]]:
        found = []
        for data in self._entries.glob("*.data"):
            try:
                stat = data.stat()
            except FileNotFoundError:
                continue
            found.append((stat.st_mtime, stat.st_size, data.stem))
        return found

    def _remove_orphans(self) -> None:
        """Downloads left in tmp/ by a process that died mid-download."""
        old = time.time() - ORPHAN_SECONDS
        for temp in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if temp.stat().st_mtime < old:
                    temp.unlink()

    # --- locks -------------------------------------------------------------------------

    def _lock_path(self, name: str) -> Path:
        digest = name.split("-", 1)[1]
        return self._locks / f"{digest[:STRIPE_HEX_DIGITS]}.lock"

    def _try_lock(self, name: str) -> int | None:
        """The entry's lock if it is free now (a file descriptor to close), else None.

        flock locks belong to the open file: two opens conflict even in one thread,
        which is what makes one mechanism serve threads and processes alike."""
        fd = os.open(self._lock_path(name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    async def _lock_async(self, name: str) -> int:
        """Wait for the entry's lock without blocking the event loop (and so that a
        cancelled wait, a download timing out, leaves no thread behind holding it)."""
        delay, longest = LOCK_POLL_SECONDS
        while (fd := self._try_lock(name)) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
        return fd

    def _lock_blocking(self, name: str) -> int:
        fd = os.open(self._lock_path(name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextlib.contextmanager
    def _held(self, path: Path) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


class Slot:
    """One entry, held exclusively: read it, use it, replace it or drop it.

    `info` is the entry as found (None: nothing cached, or a leftover without its
    description). `joined` says it was downloaded or revalidated by someone else
    while this holder waited for it: fresh enough to use without asking again."""

    def __init__(self, cache: MediaCache, name: str, asked_at: float) -> None:
        self.cache = cache
        self.name = name
        self.data = cache._entries / f"{name}.data"
        self.description = cache._entries / f"{name}.json"
        self.info = self._read()
        self.joined = self.info is not None and self.info.validated_at >= asked_at
        self._temps: list[Path] = []

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exc: object) -> None:
        for temp in self._temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def _read(self) -> EntryInfo | None:
        try:
            info = EntryInfo(**json.loads(self.description.read_text()))
            if self.data.stat().st_size != info.size:
                return None
        except (OSError, ValueError, TypeError):
            return None
        return info

    def temp_path(self) -> Path:
        """A new file name in the cache's folder to download into (removed at the end
        unless stored)."""
        temp = self.cache._tmp / f"{self.name}.{uuid.uuid4().hex}"
        self._temps.append(temp)
        return temp

    def store(self, temp: Path, info: EntryInfo, into: Path) -> bool:
        """Make the file at `temp` this entry (if it fits in the cap) and put it at
        `into`; whether it was kept. Evicts what no longer fits."""
        if info.size > self.cache.max_bytes:
            _move(temp, into)
            self.drop()
            return False
        temp.chmod(0o444)
        # The description goes first and comes back last: a crash in between leaves
        # data without a description, which is no entry (the next download of it
        # replaces it; until then it counts and ages like any entry).
        self.description.unlink(missing_ok=True)
        os.replace(temp, self.data)
        _used_now(self.data)
        _write_atomically(self.description, json.dumps(asdict(info)))
        self.info = info
        self.link_into(into)
        self.cache.evict(keep=self.name)
        return True

    def touch(self, validated: bool = False) -> None:
        """Used now (recency for eviction); `validated`: the server confirmed it too."""
        _used_now(self.data)
        if validated and self.info is not None:
            self.info = EntryInfo(**{**asdict(self.info), "validated_at": time.time()})
            _write_atomically(self.description, json.dumps(asdict(self.info)))

    def link_into(self, target: Path) -> None:
        """The entry's bytes at `target`, which outlive the entry (see the module's doc)."""
        target.unlink(missing_ok=True)
        try:
            os.link(self.data, target)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copyfile(self.data, target)

    def drop(self) -> None:
        """Forget the entry (the server's copy changed into one we do not keep)."""
        _remove_entry(self.cache._entries, self.name)
        self.info = None


def _used_now(data: Path) -> None:
    """Set the entry's mtime (its recency) from the fine clock: the kernel's own file
    times tick in milliseconds, so two uses in a row could tie."""
    now = time.time_ns()
    os.utime(data, ns=(now, now))


def _remove_entry(entries: Path, name: str) -> bool:
    (entries / f"{name}.json").unlink(missing_ok=True)
    try:
        (entries / f"{name}.data").unlink()
    except FileNotFoundError:
        return False
    return True


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temp.write_text(text)
    os.replace(temp, path)


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.move(source, target)
