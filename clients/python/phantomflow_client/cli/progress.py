"""A job's (or a preview's) progress as the terminal shows it: one live bar with the
stage, redrawn in place; or, when the output is not a terminal (CI logs, pipes), one
line per stage."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from phantomflow_client.cli._common import percent, stage_name
from phantomflow_client.models import ErrorEvent, Event, ProgressEvent, StoryboardEvent


class ProgressDisplay:
    def __init__(self, job_id: str, console: Console | None = None, kind: str = "job") -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.job_id = job_id
        self.label = f"{kind} {job_id[:8]}"
        self.live = self.console.is_terminal
        self.last_stage: str | None = None
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[stage]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=1.0, stage=stage_name("queued"))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.live:
            self.progress.stop()

    def update(self, event: Event) -> None:
        fraction: float | None
        if isinstance(event, ErrorEvent):
            stage, fraction = "cancelled" if event.code == "CANCELLED" else "failed", None
        elif event.final:
            stage, fraction = "complete", 1.0
        elif isinstance(event, ProgressEvent):
            stage, fraction = event.stage, event.progress
        elif isinstance(event, StoryboardEvent):
            stage, fraction = "storyboard_ready", None
        else:
            return  # an export's change: not the render's stage
        if self.live and self.task is not None:
            changes = {"stage": stage_name(stage)}
            if fraction is not None:
                self.progress.update(self.task, completed=fraction, **changes)
            else:
                self.progress.update(self.task, **changes)
        elif stage != self.last_stage:
            # One line per stage: a log reader wants the story, not every percent.
            shown = f" {percent(fraction)}" if fraction is not None else ""
            self.console.print(f"{self.label}: {stage_name(stage)}{shown}")
        self.last_stage = stage
