"""`phantomflow`: run the service (embedded or as production processes) and administer it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn
from uuid import UUID

from phantomflow.api import local_server
from phantomflow.api.local_server import embedded_server
from phantomflow.domain.plans import PLANS
from phantomflow_client.cli import register as register_client_commands

# The server's modules (api/bootstrap.py and all it builds on) are imported by the commands
# that run them, not here: a client command (`phantomflow jobs list`) starts in half the
# time without them.


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("PHANTOMFLOW_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="phantomflow", description=__doc__)
    root.add_argument("--version", action="version", version=version(), help="show the version")
    commands = root.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="API, worker and projections in one process")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.set_defaults(run=run_serve)

    api = commands.add_parser("api", help="the API process (production)")
    api.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    api.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    api.set_defaults(run=run_api)

    worker = commands.add_parser("worker", help="render worker processes (production)")
    worker.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument(
        "--threads", type=int, default=2, help="renders at once in each process (default 2)"
    )
    worker.add_argument(
        "--queues",
        nargs="+",
        metavar="QUEUE",
        help="only these queues (renders, previews, webhooks); default: all. A worker"
        " with --queues previews keeps previews quick while the others render",
    )
    worker.set_defaults(run=run_worker)

    projections = commands.add_parser(
        "projections", help="read models and the job dispatcher (production)"
    )
    projections.add_argument(
        "action",
        nargs="?",
        choices=("run", "rebuild"),
        default="run",
        help="run: follow the event store (default); rebuild: drop every read model "
        "and rebuild it from zero",
    )
    projections.set_defaults(run=run_projections)

    audit = commands.add_parser("audit", help="check that every credit adds up")
    audit_commands = audit.add_subparsers(required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="replay every account and reconcile it with the ledger and its jobs"
    )
    verify.set_defaults(run=run_audit_verify)

    accounts = commands.add_parser("accounts", help="manage accounts")
    account_commands = accounts.add_subparsers(required=True, metavar="ACTION")
    create = account_commands.add_parser("create", help="open an account and mint its keys")
    create.add_argument("--plan", default="free", choices=PLANS, help="the plan (default free)")
    create.add_argument("--credits", type=int, default=0, help="opening balance (default 0)")
    create.set_defaults(run=run_accounts_create)

    plan = account_commands.add_parser("plan", help="move an account to a plan")
    plan.add_argument("account_id", type=UUID, help="the account's id")
    plan.add_argument("plan", choices=PLANS, help="the new plan")
    plan.add_argument("--requests-per-minute", type=int, help="enterprise only")
    plan.add_argument("--concurrent-jobs", type=int, help="enterprise only")
    plan.add_argument(
        "--storage-bytes", type=int, help="enterprise only: the account's asset storage"
    )
    plan.set_defaults(run=run_accounts_plan)

    keys = commands.add_parser("keys", help="mint and revoke an account's API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    mint_key = key_commands.add_parser("create", help="mint a key (the secret is shown once)")
    mint_key.add_argument("account_id", type=UUID, help="the account's id")
    mint_key.add_argument(
        "--mode",
        choices=("live", "test"),
        default="live",
        help="live or sandbox (test) key",
    )
    mint_key.set_defaults(run=run_keys_create)
    revoke_key = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke_key.add_argument("account_id", type=UUID, help="the account's id")
    revoke_key.add_argument("key_id", type=UUID, help="the key's id (phantomflow keys create)")
    revoke_key.set_defaults(run=run_keys_revoke)

    # The client commands (phantomflow_client.cli): render, jobs, templates, credits,
    # ledger, mcp. `render` without a URL runs on an embedded server of its own.
    client = register_client_commands(commands, local_server=embedded_server)
    grant = client.credit_actions.add_parser(
        "grant", help="grant credits to an account (operators: writes to the event store)"
    )
    grant.add_argument("account_id", type=UUID, help="the account's id")
    grant.add_argument("amount", type=int, help="how many credits")
    grant.add_argument(
        "--reason", default="granted by an operator", help="shown in the account's ledger"
    )
    grant.set_defaults(run=run_credits_grant)
    return root


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from phantomflow_client import __version__ as client_version

    try:
        server = installed("phantomflow")
    except PackageNotFoundError:  # run from a source tree that is not installed
        server = "unknown"
    return f"phantomflow {server} (client {client_version})"


# --- running ----------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    return bootstrap.serve_embedded(args.host, args.port)


def run_api(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    return bootstrap.serve_api(args.host, args.port)


def run_worker(args: argparse.Namespace) -> int:
    import dramatiq.worker
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from phantomflow.api import bootstrap

    bootstrap.production_settings()  # refuse at once, not in each worker process
    # A worker thread takes one message at a time (Dramatiq's default prefetches two per
    # thread): a render never waits behind another while a worker is idle, and a worker
    # that dies strands only the jobs it was rendering. (Dramatiq's setting for it is
    # this module value, read from `dramatiq_queue_prefetch` when it is imported; its
    # worker processes are forked from this one.)
    dramatiq.worker.QUEUE_PREFETCH = args.threads
    dramatiq_args = make_argument_parser().parse_args(
        [
            "phantomflow.api.worker",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            *(["--queues", *args.queues] if args.queues else []),
        ]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


def run_projections(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    if args.action == "rebuild":
        for name, handled in bootstrap.rebuild():
            print(json.dumps({"read_model": name, "events": handled}))
        return 0
    bootstrap.follow_until(bootstrap.stop_on_signals())
    return 0


def run_audit_verify(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap
    from phantomflow.projections.audit import reconcile, report

    with bootstrap.one_off() as runtime:
        runtime.ledger_runner.catch_up()
        checks = reconcile(runtime.app, runtime.ledger)
    print(report(checks))
    return 0 if all(check.agrees for check in checks) else 1


# --- administration ---------------------------------------------------------------


def run_accounts_create(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    with bootstrap.one_off() as runtime:
        opened = runtime.app.open_account(plan=args.plan, credits=args.credits)
    print(
        json.dumps(
            {
                "account_id": str(opened.account_id),
                "api_key": opened.api_key,
                "test_api_key": opened.test_api_key,
            }
        )
    )
    return 0


def run_accounts_plan(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    with bootstrap.one_off() as runtime:
        account = runtime.app.change_plan(
            args.account_id,
            args.plan,
            args.requests_per_minute,
            args.concurrent_jobs,
            args.storage_bytes,
        )
    limits = account.limits
    print(
        json.dumps(
            {
                "account_id": str(args.account_id),
                "plan": account.plan,
                "requests_per_minute": limits.requests_per_minute,
                "concurrent_jobs": limits.concurrent_jobs,
                "storage_bytes": account.storage_limit_bytes,
            }
        )
    )
    return 0


def run_keys_create(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    with bootstrap.one_off() as runtime:
        key_id, secret, prefix = runtime.app.mint_key(args.account_id, args.mode)
    print(json.dumps({"id": str(key_id), "api_key": secret, "prefix": prefix, "mode": args.mode}))
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    with bootstrap.one_off() as runtime:
        runtime.app.revoke_key(args.account_id, args.key_id)
    print(json.dumps({"id": str(args.key_id), "revoked": True}))
    return 0


def run_credits_grant(args: argparse.Namespace) -> int:
    from phantomflow.api import bootstrap

    with bootstrap.one_off() as runtime:
        balance = runtime.app.grant_credits(args.account_id, args.amount, reason=args.reason)
    print(json.dumps({"account_id": str(args.account_id), "credits": balance}))
    return 0


def entry() -> NoReturn:
    """The `phantomflow` command. After a render on an embedded server of its own, the
    process ends at once: the system has stopped and closed everything it opened, and
    the interpreter's own teardown of some 800 modules would add 0.2 to 0.5 s to every
    render (docs/performance.md)."""
    code = main()
    if local_server.embedded_stopped.is_set():
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
