"""Event topics across the move to the `phantomflow` package.

A stored event names its class by topic, `module:qualname`. Events recorded before the
code was installed as one `phantomflow` package name theirs `domain.jobs:RenderJob.Submitted`;
events recorded since, `phantomflow.domain.jobs:RenderJob.Submitted`. Both must keep
working without rewriting history: old topics resolve to today's classes (registered
here), and a follower that filters the log by topic asks for both spellings.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

import phantomflow.domain

# Where the domain's classes lived before the move: the only package whose classes are
# named in stored events and snapshots.
LEGACY_DOMAIN_PACKAGE = "domain"
_PREFIX = "phantomflow."


def register_legacy_topics() -> None:
    """Make `domain.…` topics resolve to `phantomflow.domain.…` (safe to call again)."""
    register_topic(LEGACY_DOMAIN_PACKAGE, phantomflow.domain)


def topics_of(*classes: type) -> tuple[str, ...]:
    """Every topic under which events of these classes may be stored, old and new."""
    found: list[str] = []
    for cls in classes:
        topic = get_topic(cls)
        found.append(topic)
        if topic.startswith(_PREFIX + LEGACY_DOMAIN_PACKAGE + "."):
            found.append(topic.removeprefix(_PREFIX))
    return tuple(found)
