"""Credit routes: the balance, the account's plan and limits, the ledger (JSON pages, or
the whole period as CSV), and the balance at any instant.

The ledger and the balance history are the account's live financial record: a sandbox
key reads the balance and the account (which its submissions report as
`credits_remaining` anyway) but not them (403).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from aiohttp import web

from phantomflow.api.errors import forbidden, invalid_request
from phantomflow.api.requests import principal_of, query_choice, query_page
from phantomflow.api.services import services_of
from phantomflow.domain.application import Principal
from phantomflow.projections.ledger import COLUMNS, ENTRY_TYPES, LedgerFilter

routes = web.RouteTableDef()


@routes.get("/api/credits")
async def balance(request: web.Request) -> web.Response:
    services = services_of(request)
    account = await services.call(
        services.runtime.app.get_account, principal_of(request).account_id
    )
    return web.json_response({"credits": account.balance, "currency": "credits"})


@routes.get("/api/account")
async def account(request: web.Request) -> web.Response:
    """Who the key belongs to, its plan and the plan's limits, read from the account
    itself (exact at once, like the balance)."""
    principal = principal_of(request)
    services = services_of(request)
    found = await services.call(services.runtime.app.get_account, principal.account_id)
    limits = found.limits
    return web.json_response(
        {
            "account_id": str(principal.account_id),
            "plan": found.plan,
            "limits": {
                "requests_per_minute": limits.requests_per_minute,
                "concurrent_jobs": limits.concurrent_jobs,
                "previews_per_minute": limits.previews_per_minute,
            },
            "active_jobs": len(found.active_jobs),
            "credits": found.balance,
            "key": {"prefix": principal.key_prefix, "mode": principal.mode},
        }
    )


def live_only(principal: Principal) -> None:
    if principal.is_sandbox:
        raise forbidden(
            "The ledger is the account's live financial record: read it with a live key. "
            "Sandbox jobs move no credits."
        )


@routes.get("/api/credits/balance")
async def balance_at(request: web.Request) -> web.Response:
    live_only(principal_of(request))
    raw = request.query.get("at")
    if raw is None:
        raise invalid_request(
            "at is required: an ISO 8601 instant, e.g. 2026-01-15T10:30:00Z", "at"
        )
    at = parse_instant(raw, "at")
    services = services_of(request)
    credits, version = await services.call(
        services.runtime.app.balance_at, principal_of(request).account_id, at
    )
    return web.json_response(
        {"at": raw, "credits": credits, "currency": "credits", "account_version": version}
    )


def ledger_filter(request: web.Request) -> LedgerFilter:
    """The entries the query selects: from, to, job_id, type (with a live key only)."""
    live_only(principal_of(request))
    entry_type = query_choice(request, "type", ENTRY_TYPES)
    return LedgerFilter(
        account_id=str(principal_of(request).account_id),
        start=parse_instant(request.query["from"], "from") if "from" in request.query else None,
        end=parse_instant(request.query["to"], "to") if "to" in request.query else None,
        job_id=request.query.get("job_id"),
        entry_type=entry_type,
    )


@routes.get("/api/credits/ledger.csv")
async def ledger_csv(request: web.Request) -> web.Response:
    return await download(request, ledger_filter(request))


async def download(request: web.Request, selection: LedgerFilter) -> web.Response:
    """The whole selected period as CSV: a download is not a page."""
    services = services_of(request)
    found = await services.call(services.runtime.ledger.page, selection, 1, None)
    return csv_response(found.entries)


@routes.get("/api/credits/ledger")
async def ledger(request: web.Request) -> web.StreamResponse:
    selection = ledger_filter(request)
    output = request.query.get("format", "json")
    if output not in ("json", "csv"):
        raise invalid_request("format must be json or csv", "format")
    # Checked even for a download, which ignores them: a malformed value is an error.
    page, limit = query_page(request, default_limit=50, max_limit=1000)
    if output == "csv":  # kept for clients from before GET /api/credits/ledger.csv
        return await download(request, selection)
    services = services_of(request)
    found = await services.call(services.runtime.ledger.page, selection, page, limit)
    return web.json_response(
        {
            "entries": found.entries,
            "totals": found.totals,
            "total": found.total,
            "page": page,
            "limit": limit,
        }
    )


def parse_instant(raw: str, name: str) -> datetime:
    """An ISO 8601 instant; one without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid_request(
            f"{name} must be an ISO 8601 instant, e.g. 2026-01-15T10:30:00Z", name
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Before the year 1 or after 9999 in UTC (0001-01-01T00:00:00+01:00): before
        # or after every event, like the first or last instant Python can hold.
        offset = moment.utcoffset()
        early = offset is not None and offset > timedelta(0)
        return (datetime.min if early else datetime.max).replace(tzinfo=UTC)


def csv_response(entries: list[dict[str, object]]) -> web.Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(entries)
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
    )
