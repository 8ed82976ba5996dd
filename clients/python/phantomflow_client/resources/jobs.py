"""Jobs: list and page through them (by status, or by one key of their metadata), read
one, its history, cancel it, follow it live, wait for it, download its video, and delete
its files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from phantomflow_client._sse import Resume
from phantomflow_client._streams import drain_async, follow_async, follow_sync
from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.errors import PhantomFlowError
from phantomflow_client.models import (
    Cancellation,
    CompleteEvent,
    DeletedOutput,
    Job,
    JobEvent,
    JobHistory,
    JobPage,
)
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    sends,
)

JobRef = str | Job
OnEvent = Callable[[JobEvent], Any]
MAX_PAGE_SIZE = 100


def _id(job: JobRef) -> str:
    return job.job_id if isinstance(job, Job) else str(job)


MetadataFilter = Mapping[str, str | int | float | bool]


def _metadata_params(metadata: MetadataFilter | None) -> dict[str, str]:
    """`metadata.<key>=<value>`: a number or boolean as JSON writes it (`42`, `true`)."""
    if not metadata:
        return {}
    if len(metadata) > 1:
        raise ValueError("jobs are listed by one metadata key at a time")
    ((key, value),) = metadata.items()
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return {f"metadata.{key}": text}


def list_jobs(
    *,
    page: int = 1,
    limit: int = 20,
    status: str | None = None,
    metadata: MetadataFilter | None = None,
) -> Call[JobPage]:
    """One page of the account's jobs, newest first; `metadata={"order": 42}` lists
    only the jobs whose metadata has that key with that value (one key at most)."""
    params = {"page": page, "limit": limit, "status": status, **_metadata_params(metadata)}
    return Call("GET", "/api/jobs", model(JobPage), params=params)


def get(job: JobRef) -> Call[Job]:
    return Call("GET", f"/api/jobs/{_id(job)}", model(Job))


def history(job: JobRef) -> Call[JobHistory]:
    """Every event of the job as stored (the audit view)."""
    return Call("GET", f"/api/jobs/{_id(job)}/events", model(JobHistory))


def cancel(job: JobRef) -> Call[Cancellation]:
    """Cancel a queued job (refunded in full) or a processing one (charged for what was
    rendered)."""
    # Cancelling twice is harmless (the second answers 409), so a lost answer may be
    # retried.
    return Call("POST", f"/api/jobs/{_id(job)}/cancel", model(Cancellation), idempotent=True)


def delete_output(job: JobRef) -> Call[DeletedOutput]:
    """Delete a completed job's MP4 and poster; the job and its charge stay, and its
    output_uri then answers 410. Asking again answers the same."""
    return Call("DELETE", f"/api/jobs/{_id(job)}/output", model(DeletedOutput))


def progress_path(job: JobRef) -> str:
    return f"/api/jobs/{_id(job)}/progress"


def _output_of(job: Job) -> str:
    if job.status != "completed" or not job.output_uri:
        raise PhantomFlowError(f"job {job.job_id} has no video ({job.status})")
    return job.output_uri


def _known_output(job: JobRef | CompleteEvent) -> str | None:
    """The video's address if `job` already says it (a complete event, a completed Job)."""
    if isinstance(job, CompleteEvent):
        return job.output_uri
    return job.output_uri if isinstance(job, Job) else None


class _Seen:
    """Pages of a newest-first list shift when jobs are added while paging; a job
    already handed on is skipped instead of repeated."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def new(self, jobs: list[Job]) -> list[Job]:
        fresh = [job for job in jobs if job.job_id not in self.ids]
        self.ids.update(job.job_id for job in fresh)
        return fresh


class JobCalls(Resource[Transport]):
    """The calls, for both clients."""

    list = sends(list_jobs)
    get = sends(get)
    history = sends(history)
    cancel = sends(cancel)
    delete_output = sends(delete_output)


class Jobs(JobCalls[SyncTransport]):
    def iter(
        self,
        *,
        status: str | None = None,
        metadata: MetadataFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Job]:
        """Every job, newest first, fetching pages as it goes."""
        seen, page = _Seen(), 1
        while True:
            found = self.list(page=page, limit=page_size, status=status, metadata=metadata)
            yield from seen.new(found.jobs)
            if not found.jobs or page * page_size >= found.total:
                return
            page += 1

    def follow(
        self,
        job: JobRef,
        *,
        last_event_id: int | None = None,
        timeout: float | None = None,
        exports: bool = False,
    ) -> Iterator[JobEvent]:
        """The job's progress events as they happen, over SSE, until `complete` or
        `error`; with `exports`, on past `complete` with each `export` event until the
        last export has settled (the server then ends the stream). Reconnects after a
        dropped connection from the last event seen."""
        events = follow_sync(
            self._transport,
            progress_path(job),
            Resume(last_event_id),
            closes=not exports,
            timeout=timeout,
            job_id=_id(job),
        )
        return events  # type: ignore[return-value]  # a job stream has no webhook events

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        exports: bool = False,
    ) -> Job:
        """Follow the job to its end and return it as it ended (completed, failed or
        cancelled); with `exports`, until its exports have settled too. Raises
        WaitTimeoutError after `timeout` seconds."""
        for event in self.follow(job, timeout=timeout, exports=exports):
            if on_event is not None:
                on_event(event)
        return self.get(job)

    def download(self, job: JobRef | CompleteEvent, path: str | Path) -> Path:
        """Save the job's MP4 at `path` (written whole, then renamed into place). `job`
        may be its id, the Job, or its `complete` event."""
        known = _known_output(job)
        url = known if known is not None else _output_of(self.get(_id(job)))  # type: ignore[arg-type]
        return self._transport.download(url, Path(path))


class AsyncJobs(JobCalls[AsyncTransport]):
    async def iter(
        self,
        *,
        status: str | None = None,
        metadata: MetadataFilter | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Job]:
        seen, page = _Seen(), 1
        while True:
            found = await self.list(page=page, limit=page_size, status=status, metadata=metadata)
            for job in seen.new(found.jobs):
                yield job
            if not found.jobs or page * page_size >= found.total:
                return
            page += 1

    def follow(
        self, job: JobRef, *, last_event_id: int | None = None, exports: bool = False
    ) -> AsyncIterator[JobEvent]:
        """As `Jobs.follow`; bound it in time with `asyncio.timeout`."""
        events = follow_async(
            self._transport, progress_path(job), Resume(last_event_id), closes=not exports
        )
        return events  # type: ignore[return-value]

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        exports: bool = False,
    ) -> Job:
        await drain_async(self.follow(job, exports=exports), on_event, timeout, _id(job))
        return await self.get(job)

    async def download(self, job: JobRef | CompleteEvent, path: str | Path) -> Path:
        known = _known_output(job)
        url = known if known is not None else _output_of(await self.get(_id(job)))  # type: ignore[arg-type]
        return await self._transport.download(url, Path(path))
