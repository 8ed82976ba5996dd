"""`phantomflow`: run the service (embedded or as production processes) and administer it."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from aiohttp import web

from phantomflow.adapters.bootstrap import Runtime, build_runtime
from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.api.sse import RedactingAccessLogger
from phantomflow.domain.plans import PLANS

log = logging.getLogger("phantomflow")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("PHANTOMFLOW_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="phantomflow", description=__doc__)
    commands = root.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="API, worker and projections in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(run=run_serve)

    api = commands.add_parser("api", help="the API process (production)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8080)
    api.set_defaults(run=run_api)

    worker = commands.add_parser("worker", help="render worker processes (production)")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=2)
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
    create.add_argument("--plan", default="free", choices=PLANS)
    create.add_argument("--credits", type=int, default=0)
    create.set_defaults(run=run_accounts_create)

    plan = account_commands.add_parser("plan", help="move an account to a plan")
    plan.add_argument("account_id", type=UUID)
    plan.add_argument("plan", choices=PLANS)
    plan.add_argument("--requests-per-minute", type=int, help="enterprise only")
    plan.add_argument("--concurrent-jobs", type=int, help="enterprise only")
    plan.set_defaults(run=run_accounts_plan)

    keys = commands.add_parser("keys", help="mint and revoke an account's API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    mint_key = key_commands.add_parser("create", help="mint a key (the secret is shown once)")
    mint_key.add_argument("account_id", type=UUID)
    mint_key.add_argument("--mode", choices=("live", "test"), default="live")
    mint_key.set_defaults(run=run_keys_create)
    revoke_key = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke_key.add_argument("account_id", type=UUID)
    revoke_key.add_argument("key_id", type=UUID)
    revoke_key.set_defaults(run=run_keys_revoke)

    credits = commands.add_parser("credits", help="manage credits")
    credit_commands = credits.add_subparsers(required=True, metavar="ACTION")
    grant = credit_commands.add_parser("grant", help="grant credits to an account")
    grant.add_argument("account_id", type=UUID)
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", default="granted by an operator")
    grant.set_defaults(run=run_credits_grant)

    render = commands.add_parser(
        "render", help="render one script file to an MP4 through the embedded server"
    )
    render.add_argument("script", type=Path)
    render.add_argument("--out", type=Path, default=Path("out.mp4"))
    render.add_argument("--timeout", type=float, default=600)
    render.set_defaults(run=run_render)
    return root


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# --- running ----------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    from phantomflow.api.embedded import EmbeddedSystem

    settings = Settings.from_env()
    if not settings.embedded:
        log.error(
            "serve runs the embedded default; unset DATABASE_URL or use api/worker/projections"
        )
        return 2
    # Webhook payloads need the server's public address: PHANTOMFLOW_PUBLIC_URL, or else
    # the address this server listens on (right for clients on this machine only).
    host = "127.0.0.1" if args.host in ("", "0.0.0.0", "::") else args.host
    system = EmbeddedSystem(settings, public_url=f"http://{host}:{args.port}")
    app = create_app(Services(system.runtime))

    async def start(_: web.Application) -> None:
        system.start()

    async def stop(_: web.Application) -> None:
        system.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    log.info(
        "embedded PhantomFlow on http://%s:%d (data in %s)", args.host, args.port, settings.data_dir
    )
    # handler_cancellation: a client that disconnects cancels its handler at once, so an
    # event stream (api/sse.py) frees its resources without waiting for a write to fail.
    # The access log leaves out keys passed as `apiKey` (event streams).
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        handler_cancellation=True,
        access_log_class=RedactingAccessLogger,
    )
    return 0


def _production_settings() -> Settings:
    settings = Settings.from_env()
    if settings.embedded or not settings.redis_url:
        raise SystemExit(
            "this command needs DATABASE_URL and REDIS_URL (or use `phantomflow serve`)"
        )
    return settings


def run_api(args: argparse.Namespace) -> int:
    runtime = build_runtime(_production_settings())
    app = create_app(Services(runtime))

    async def close(_: web.Application) -> None:
        runtime.close()

    app.on_cleanup.append(close)
    # handler_cancellation: a client that disconnects cancels its handler at once, so an
    # event stream (api/sse.py) frees its resources without waiting for a write to fail.
    # The access log leaves out keys passed as `apiKey` (event streams). reuse_port:
    # API processes are stateless, so several can listen on one port of one host and
    # the kernel spreads connections over them (one process uses one core).
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        handler_cancellation=True,
        access_log_class=RedactingAccessLogger,
        reuse_port=True,
    )
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    _production_settings()
    dramatiq_args = make_argument_parser().parse_args(
        [
            "phantomflow.workers.main",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
        ]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


def run_projections(args: argparse.Namespace) -> int:
    if args.action == "rebuild":
        return run_rebuild()
    from dramatiq.brokers.redis import RedisBroker

    from phantomflow.projections.runner import FollowerRunner, FollowerThreads
    from phantomflow.workers.actors import declare_render_actor
    from phantomflow.workers.dispatch import Dispatcher
    from phantomflow.workers.exports import ExportScheduler, declare_export_actor, export_sender
    from phantomflow.workers.webhooks import WebhookScheduler, declare_webhook_actor, sender

    settings = _production_settings()
    runtime = build_runtime(settings)
    broker = RedisBroker(url=settings.redis_url, namespace=settings.queue_namespace)

    def no_local_rendering() -> None:
        raise RuntimeError("the projections process only sends render messages")

    render_actor = declare_render_actor(broker, no_local_rendering)  # type: ignore[arg-type]
    dispatcher = FollowerRunner(runtime.app, runtime.views, Dispatcher(send=render_actor.send))
    # Declared here only to send to: `phantomflow worker` delivers.
    webhook_actor = declare_webhook_actor(broker, no_local_rendering)  # type: ignore[arg-type]
    webhooks = FollowerRunner(
        runtime.app, runtime.views, WebhookScheduler(runtime.app, send=sender(webhook_actor))
    )
    export_actor = declare_export_actor(broker, no_local_rendering)  # type: ignore[arg-type]
    exports = FollowerRunner(
        runtime.app,
        runtime.views,
        ExportScheduler(runtime.app, send=export_sender(export_actor)),
    )
    followers = FollowerThreads([*runtime.read_models, dispatcher, webhooks, exports])
    stop = _stop_on_signals()
    followers.start()
    log.info("following the event store: read models, dispatcher, webhooks and exports")
    stop.wait()
    followers.stop()
    runtime.close()
    return 0


def _runtime() -> contextlib.closing[Runtime]:
    """The runtime of a one-off command, closed when the command is done."""
    return contextlib.closing(build_runtime(Settings.from_env()))


def run_rebuild() -> int:
    with _runtime() as runtime:
        for runner in runtime.read_models:
            handled = runner.rebuild()
            print(json.dumps({"read_model": runner.follower.name, "events": handled}))
    return 0


def run_audit_verify(args: argparse.Namespace) -> int:
    from phantomflow.projections.audit import reconcile, report

    with _runtime() as runtime:
        runtime.ledger_runner.catch_up()
        checks = reconcile(runtime.app, runtime.ledger)
    print(report(checks))
    return 0 if all(check.agrees for check in checks) else 1


# --- administration ---------------------------------------------------------------


def run_accounts_create(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
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
    with _runtime() as runtime:
        account = runtime.app.change_plan(
            args.account_id, args.plan, args.requests_per_minute, args.concurrent_jobs
        )
    limits = account.limits
    print(
        json.dumps(
            {
                "account_id": str(args.account_id),
                "plan": account.plan,
                "requests_per_minute": limits.requests_per_minute,
                "concurrent_jobs": limits.concurrent_jobs,
            }
        )
    )
    return 0


def run_keys_create(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        key_id, secret, prefix = runtime.app.mint_key(args.account_id, args.mode)
    print(json.dumps({"id": str(key_id), "api_key": secret, "prefix": prefix, "mode": args.mode}))
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        runtime.app.revoke_key(args.account_id, args.key_id)
    print(json.dumps({"id": str(args.key_id), "revoked": True}))
    return 0


def run_credits_grant(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        balance = runtime.app.grant_credits(args.account_id, args.amount, reason=args.reason)
    print(json.dumps({"account_id": str(args.account_id), "credits": balance}))
    return 0


def run_render(args: argparse.Namespace) -> int:
    from phantomflow.api.oneshot import render_file

    return render_file(args.script, args.out, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
