"""Schemathesis hooks for the drill in tests/test_schemathesis.py (loaded through
SCHEMATHESIS_HOOKS by the `st` process, not by pytest).

- DELETE reaches only what the run itself created: the account's resources from before
  the run (its keys; the test lists their ids in PHANTOMFLOW_FUZZ_PROTECTED) are
  swapped for a fresh id in any request (which answers 404), so the run can never
  revoke the key it authenticates with. Schemathesis takes a swapped id for one a link
  gave, so a 404 for it after a POST looks to it like a created resource gone missing
  (ST302): those are dropped, being the swap's own doing.
- A few answers are right although Schemathesis cannot know it: each is listed in
  `DOCUMENTED` with the reason, and dropped; `KNOWN_DEFECTS` lists failures that are
  real and owned elsewhere, each naming its issue.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import EnsureResourceAvailability, RejectedPositiveData

# The ids of the account's resources from before the run.
PROTECTED = frozenset(filter(None, os.environ.get("PHANTOMFLOW_FUZZ_PROTECTED", "").split(",")))
# The fresh ids put in their place.
SWAPPED: set[str] = set()
# DELETE routes: the path parameter, and a fresh id of its form.
DELETING: dict[str, tuple[str, Callable[[], str]]] = {
    "/api/keys/{key_id}": ("key_id", lambda: str(uuid.uuid4())),
    "/api/templates/{template_id}": ("template_id", lambda: f"tpl_{uuid.uuid4().hex}"),
}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    rule = DELETING.get(case.path)
    if case.method.upper() != "DELETE" or rule is None:
        return
    name, fresh = rule
    if str(case.path_parameters.get(name)) in PROTECTED:
        case.path_parameters[name] = swapped = fresh()
        SWAPPED.add(swapped)


def _error(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


# What the render schema cannot say in JSON Schema and the server checks beyond it
# (CROSS_FIELD_RULES in api/schemas.py, published as x-phantomflow-cross-field-rules),
# and the address policy of webhook URLs (docs/webhooks.md): a schema-valid body can
# break them, and is refused with 400 SCHEMA_VALIDATION_ERROR naming the rule.
BEYOND_THE_SCHEMA = re.compile(
    "|".join(
        (
            r"no next scene to transition into",
            r"Must be shorter than this scene and the next one",
            r"Total duration .* is over the limit",
            r"Must be more than trim_start",
            r"different media URLs in one script",
            r"Webhook URL refused",
        )
    )
)


def _beyond_the_schema(failure: Failure, response: Any, case: Any) -> bool:
    error = _error(response)
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 400
        and error.get("code") == "SCHEMA_VALIDATION_ERROR"
        and BEYOND_THE_SCHEMA.search(str(error.get("message", ""))) is not None
    )


def _idempotency_key_reused(failure: Failure, response: Any, case: Any) -> bool:
    """The run sent an Idempotency-Key again with another body: 422, as documented
    (docs/api.md, "Idempotent submissions"); the document cannot know the key's past."""
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 422
        and _error(response).get("code") == "IDEMPOTENCY_KEY_REUSED"
    )


def _template_variables_missing(failure: Failure, response: Any, case: Any) -> bool:
    """A template render without values for the template's placeholders: 400
    VALIDATION_ERROR listing them in `missing`; which variables a template needs is
    the template's, not the document's."""
    error = _error(response)
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 400
        and error.get("code") == "VALIDATION_ERROR"
        and "missing" in error
    )


def _integration_not_usable(failure: Failure, response: Any, case: Any) -> bool:
    """An export naming an integration this account (in this key's mode) does not have,
    or one of another type: 400 SCHEMA_VALIDATION_ERROR at `exports.N.integration_id`;
    which integrations exist is the account's state, not the document's."""
    error = _error(response)
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 400
        and error.get("code") == "SCHEMA_VALIDATION_ERROR"
        and re.fullmatch(r"exports\.\d+\.integration_id", str(error.get("path", ""))) is not None
    )


def _asset_not_usable(failure: Failure, response: Any, case: Any) -> bool:
    """A script naming an asset (`asset_…`) this account (in this key's mode) does not
    have, or one of another type: 400 SCHEMA_VALIDATION_ERROR at that `src` or
    `font_family`; which assets exist is the account's state, not the document's."""
    error = _error(response)
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 400
        and error.get("code") == "SCHEMA_VALIDATION_ERROR"
        and re.search(r"\.(src|font_family)$", str(error.get("path", ""))) is not None
        and "asset_" in str(error.get("message", ""))
    )


def _upload_not_media(failure: Failure, response: Any, case: Any) -> bool:
    """An upload whose bytes are not an image, video, audio or font file, or no bytes at
    all: 400 UNSUPPORTED_FILE_TYPE or EMPTY_FILE (docs/api.md, "Assets"); a file is
    judged by its content, which JSON Schema cannot describe."""
    return (
        isinstance(failure, RejectedPositiveData)
        and case.path == "/api/assets"
        and response.status_code == 400
        and _error(response).get("code") in ("UNSUPPORTED_FILE_TYPE", "EMPTY_FILE")
    )


# Integration settings and secrets the server checks by loading them (an SSH host key, a
# PEM certificate, a private key), by relating them (SFTP takes a password or a key; an
# email username needs a password), or by the address policy (a host or endpoint that is
# a private address): 400 VALIDATION_ERROR at that field (docs/api.md, "Integrations").
CHECKED_BEYOND_THE_SCHEMA = {
    "settings.host_key",
    "settings.ca_certificate",
    "settings.host",
    "settings.endpoint_url",
    "secrets.private_key",
    "secrets.password",
}


def _integration_checked_beyond_the_schema(failure: Failure, response: Any, case: Any) -> bool:
    error = _error(response)
    return (
        isinstance(failure, RejectedPositiveData)
        and response.status_code == 400
        and error.get("code") == "VALIDATION_ERROR"
        and error.get("path") in CHECKED_BEYOND_THE_SCHEMA
    )


def _swapped_id(failure: Failure, response: Any, case: Any) -> bool:
    """A 404 for an id the DELETE guard swapped in (see above), which Schemathesis takes
    for a resource the run created."""
    return isinstance(failure, EnsureResourceAvailability) and any(
        str(value) in SWAPPED for value in (case.path_parameters or {}).values()
    )


Rule = Callable[[Failure, Any, Any], bool]  # (failure, response, case) -> drop it?
DOCUMENTED: list[Rule] = [
    _beyond_the_schema,
    _idempotency_key_reused,
    _template_variables_missing,
    _integration_not_usable,
    _integration_checked_beyond_the_schema,
    _asset_not_usable,
    _upload_not_media,
    _swapped_id,
]


# Real defects owned elsewhere, each naming its issue, until they are fixed. (The 405
# answers without `Allow` of issue 11, defect 7, were the one entry; fixed.)
KNOWN_DEFECTS: list[Rule] = []


# Failures dropped, by rule: written to PHANTOMFLOW_FUZZ_REPORT (JSON) when the run ends.
FILTERED: Counter[str] = Counter()


@schemathesis.hook
def filter_failure(context: Any, failure: Failure, case: Any, response: Any) -> bool:
    """Keep a failure unless it is documented or a known defect owned elsewhere."""
    for rule in (*DOCUMENTED, *KNOWN_DEFECTS):
        if rule(failure, response, case):
            FILTERED[f"{rule.__name__.lstrip('_')} ({failure.code})"] += 1
            return False
    return True


@atexit.register
def _report() -> None:
    target = os.environ.get("PHANTOMFLOW_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps(dict(FILTERED), indent=1, sort_keys=True))


LEDGER_HEADER = ["seq", "at", "type", "amount", "balance_after", "job_id", "reason"]


@schemathesis.deserializer("text/csv")
def read_csv(context: Any, response: Any) -> str:
    """The CSV download: well-formed, with the documented header; as text, which is
    what its schema (LedgerCsv, a string) describes."""
    text = response.content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != LEDGER_HEADER:
        raise ValueError(f"the CSV does not start with the ledger's header: {rows[:1]}")
    if any(len(row) != len(LEDGER_HEADER) for row in rows):
        raise ValueError("a CSV line has not as many fields as the header")
    return text
