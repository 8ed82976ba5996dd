"""Client commands against any server: jobs, templates, credits and the ledger."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from phantomflow_client.cli._common import (
    UsageError,
    add_action,
    answer,
    cell,
    client_of,
    fields,
    handles_errors,
    load_json_file,
    percent,
    print_json,
    server_options,
    stage_name,
    table,
)
from phantomflow_client.cli.extras import (
    add_render_extras,
    add_variables,
    extras_of,
    pairs,
    variables_of,
)
from phantomflow_client.cli.render import add_wait, print_quote, run_watch, submitted
from phantomflow_client.models import Job

STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
JOB_ID = ("job_id", "the job's id")
TEMPLATE_ID = ("template_id", "the template's id (tpl_...)")
LEDGER_TYPES = ("grant", "charge", "settlement_refund", "failure_refund", "cancellation_refund")


# --- jobs ------------------------------------------------------------------------------


def add_jobs(commands: argparse._SubParsersAction) -> None:
    jobs = commands.add_parser(
        "jobs", help="list, read, watch and cancel render jobs, and delete their files"
    )
    actions = jobs.add_subparsers(required=True, metavar="ACTION")
    options = server_options()

    listing = actions.add_parser("list", parents=[options], help="the account's jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default 20)")
    listing.add_argument("--page", type=int, default=1, help="which page (default 1)")
    listing.add_argument("--all", action="store_true", help="every job, fetching page after page")
    listing.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only the jobs whose metadata has this top-level key with this value (one)",
    )
    listing.set_defaults(run=run_jobs_list)

    add_action(actions, "get", run_jobs_get, "one job's status and result", JOB_ID)

    watch = add_action(
        actions,
        "watch",
        run_watch,
        "follow a job live (SSE) until it ends; exit status 0 only if it completed",
        JOB_ID,
    )
    watch.add_argument(
        "--timeout", type=float, default=None, help="stop waiting after this many seconds"
    )
    add_action(
        actions, "cancel", run_jobs_cancel, "cancel a queued or processing job (refunded)", JOB_ID
    )
    add_action(
        actions,
        "delete-output",
        run_jobs_delete_output,
        "delete a completed job's MP4 and poster; the job and its charge stay",
        JOB_ID,
    )


def job_row(job: Job) -> list[Any]:
    credits = job.credits_used if job.credits_used is not None else job.estimated_credits
    return [
        job.job_id,
        job.status,
        stage_name(job.stage),
        percent(job.progress),
        credits,
        job.created_at,
    ]


def metadata_filter(args: argparse.Namespace) -> dict[str, Any] | None:
    found = pairs(args.metadata, "--metadata")
    if len(found) > 1:
        raise UsageError("jobs are listed by one --metadata KEY=VALUE at a time")
    return found or None


@handles_errors
def run_jobs_list(args: argparse.Namespace) -> int:
    metadata = metadata_filter(args)
    with client_of(args) as client:
        if args.all:
            jobs = list(client.jobs.iter(status=args.status, metadata=metadata))
            if args.json:
                print_json(jobs)
                return 0
            title = f"{len(jobs)} jobs"
        else:
            page = client.jobs.list(
                page=args.page, limit=args.limit, status=args.status, metadata=metadata
            )
            if args.json:
                print_json(page)
                return 0
            jobs = page.jobs
            title = f"page {page.page}: {len(jobs)} of {page.total} jobs"
    table(title, ["job", "status", "stage", "progress", "credits", "created"], map(job_row, jobs))
    return 0


@handles_errors
def run_jobs_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        job = client.jobs.get(args.job_id)
    if args.json:
        print_json(job)
        return 0
    error = f"{job.error.code}: {job.error.message}" if job.error else None
    fields(
        [
            ("job", job.job_id),
            ("status", job.status),
            ("stage", stage_name(job.stage)),
            ("progress", percent(job.progress)),
            ("estimated credits", job.estimated_credits),
            ("credits used", job.credits_used),
            ("duration", f"{job.duration_seconds:.2f} s" if job.duration_seconds else None),
            ("output", job.output_uri),
            ("output deleted", job.output_deleted_at),
            ("metadata", job.metadata or None),
            ("exports", ", ".join(f"{e.type} {e.status}" for e in job.exports) or None),
            ("error", error),
            ("created", job.created_at),
            ("completed", job.completed_at),
        ]
    )
    return 0


@handles_errors
def run_jobs_cancel(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        cancelled = client.jobs.cancel(args.job_id)
    return answer(
        args,
        cancelled,
        f"job {cancelled.job_id} cancelled: {cancelled.credits_used or 0} credits used, "
        f"{cancelled.credits_refunded} refunded",
    )


@handles_errors
def run_jobs_delete_output(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        deleted = client.jobs.delete_output(args.job_id)
    return answer(args, deleted, f"job {deleted.job_id}: its video and poster are deleted")


# --- templates -----------------------------------------------------------------------


def add_templates(commands: argparse._SubParsersAction) -> None:
    templates = commands.add_parser("templates", help="list, read, create and render templates")
    actions = templates.add_subparsers(required=True, metavar="ACTION")
    options = server_options()

    listing = actions.add_parser("list", parents=[options], help="the account's templates")
    listing.set_defaults(run=run_templates_list)

    get = actions.add_parser(
        "get", parents=[options], help="a template with its script and variables"
    )
    get.add_argument("template_id", help="the template's id (tpl_...)")
    get.add_argument("--version", type=int, help="this version instead of the latest")
    get.set_defaults(run=run_templates_get)

    create = actions.add_parser(
        "create", parents=[options], help="save a script with {{variables}} as a template"
    )
    create.add_argument("script", help="the script, a JSON file")
    create.add_argument("--name", required=True, help="the template's name")
    create.add_argument(
        "--public", action="store_true", help="let every account read and render it"
    )
    create.set_defaults(run=run_templates_create)

    render = add_action(
        actions,
        "render",
        run_templates_render,
        "render a template with values for its variables",
        TEMPLATE_ID,
    )
    add_variables(render)
    add_wait(render)
    add_render_extras(render)


@handles_errors
def run_templates_list(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        found = client.templates.list()
    if args.json:
        print_json(found)
        return 0
    rows = ([t.id, t.name, t.version, t.is_public, t.updated_at] for t in found)
    table(f"{len(found)} templates", ["template", "name", "version", "public", "updated"], rows)
    return 0


@handles_errors
def run_templates_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        template = client.templates.get(args.template_id, version=args.version)
    if args.json:
        print_json(template)
        return 0
    fields(
        [
            ("template", template.id),
            ("name", template.name),
            ("version", template.version),
            ("public", template.is_public),
            ("variables", ", ".join(template.variables) or None),
            ("updated", template.updated_at),
        ]
    )
    print(json.dumps(template.script, indent=2))
    return 0


@handles_errors
def run_templates_create(args: argparse.Namespace) -> int:
    script = load_json_file(args.script)
    with client_of(args) as client:
        created = client.templates.create(args.name, script, is_public=args.public)
    if args.json:
        print_json(created)
    else:
        print(f"template {created.id} created (version {created.version})")
    return 0


@handles_errors
def run_templates_render(args: argparse.Namespace) -> int:
    variables = variables_of(args)
    extras = extras_of(args)
    with client_of(args) as client:
        if args.dry_run:
            quote = client.templates.quote(
                args.template_id, variables, version=args.version, **extras
            )
            print_quote(quote, args.json)
            return 0
        submission = client.templates.render(
            args.template_id, variables, version=args.version, **extras
        )
    return submitted(args, submission)


# --- credits and the ledger ---------------------------------------------------------------


def add_account(commands: argparse._SubParsersAction) -> None:
    account = commands.add_parser(
        "account",
        parents=[server_options()],
        help="whose key it is: the account, its plan, limits, active jobs and credits",
    )
    account.set_defaults(run=run_account)


@handles_errors
def run_account(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        found = client.account.get()
    if args.json:
        print_json(found)
        return 0
    fields(
        [
            ("account", found.account_id),
            ("plan", found.plan),
            ("requests a minute", found.limits.requests_per_minute),
            ("concurrent jobs", f"{found.active_jobs} of {found.limits.concurrent_jobs}"),
            ("credits", found.credits),
            ("key", f"{found.key.prefix}… ({found.key.mode})"),
        ]
    )
    return 0


def add_credits(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """`credits`: the balance. Returns its actions, where the server adds `grant`."""
    credits = commands.add_parser(
        "credits", parents=[server_options()], help="the credit balance (now, or at --at)"
    )
    credits.add_argument(
        "--at",
        metavar="INSTANT",
        help="the balance at this ISO 8601 instant, replayed from the account's events",
    )
    credits.set_defaults(run=run_credits)
    return credits.add_subparsers(required=False, metavar="ACTION")


@handles_errors
def run_credits(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        balance = client.credits.balance_at(args.at) if args.at else client.credits.balance()
    if args.json:
        print_json(balance)
    else:
        when = f" at {args.at}" if args.at else ""
        print(f"{balance.credits} credits{when}")
    return 0


def add_ledger(commands: argparse._SubParsersAction) -> None:
    ledger = commands.add_parser(
        "ledger", parents=[server_options()], help="every credit movement, oldest first"
    )
    ledger.add_argument("--from", dest="start", metavar="INSTANT", help="from this instant on")
    ledger.add_argument("--to", dest="end", metavar="INSTANT", help="before this instant")
    ledger.add_argument("--job", dest="job_id", metavar="JOB_ID", help="one job's entries")
    ledger.add_argument("--type", choices=LEDGER_TYPES, help="entries of this type only")
    ledger.add_argument(
        "--csv", action="store_true", help="the whole period as CSV (for a spreadsheet)"
    )
    ledger.set_defaults(run=run_ledger)


@handles_errors
def run_ledger(args: argparse.Namespace) -> int:
    query = {"start": args.start, "end": args.end, "job_id": args.job_id, "type": args.type}
    with client_of(args) as client:
        if args.csv:
            sys.stdout.write(client.credits.ledger_csv(**query))
            return 0
        entries = list(client.credits.iter_ledger(**query))
        totals = client.credits.ledger(limit=1, **query).totals
    if args.json:
        print_json(entries)
        return 0
    rows = (
        [e.seq, e.at, e.type, f"{e.amount:+d}", e.balance_after, e.job_id, e.reason]
        for e in entries
    )
    table(
        f"{len(entries)} entries",
        ["seq", "at", "type", "amount", "balance", "job", "reason"],
        rows,
    )
    print(
        "totals: " + ", ".join(f"{name} {cell(value)}" for name, value in totals.items() if value)
    )
    return 0
