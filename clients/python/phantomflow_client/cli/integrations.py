"""`integrations list|get|create|delete`: the stored credentials exports deliver with."""

from __future__ import annotations

import argparse
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
    print_json,
    table,
)
from phantomflow_client.cli.extras import pairs
from phantomflow_client.models import Integration

TYPES = ("s3", "ftp", "sftp", "email", "youtube")
INTEGRATION_ID = ("integration_id", "the integration's id (int_...)")


def add_integrations(commands: argparse._SubParsersAction) -> None:
    integrations = commands.add_parser(
        "integrations",
        help="store, list and delete the credentials exports deliver with (S3, FTP, ...)",
    )
    actions = integrations.add_subparsers(required=True, metavar="ACTION")
    add_action(
        actions,
        "list",
        run_integrations_list,
        "the integrations of this key's mode, newest first",
    )
    add_action(actions, "get", run_integrations_get, "one integration", INTEGRATION_ID)
    create = add_action(
        actions,
        "create",
        run_integrations_create,
        "store an integration; its secrets are sealed and never shown again",
        description="What each type takes is in docs/api.md, Integrations. Example: "
        "integrations create --type s3 --name Archive --setting bucket=videos "
        "--setting access_key_id=AKIA... --secrets secrets.json",
    )
    create.add_argument("--type", required=True, choices=TYPES, help="the destination's kind")
    create.add_argument("--name", required=True, help="a name to know it by")
    create.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting (repeatable; kept and shown): host, bucket, username, port, ...",
    )
    create.add_argument(
        "--settings", metavar="FILE", help="the settings as a JSON object in a file"
    )
    create.add_argument(
        "--secrets",
        metavar="FILE",
        help='the secrets as a JSON object in a file, e.g. {"password": "..."} '
        "(a file keeps them out of the shell history and process lists)",
    )
    create.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a secret (repeatable); prefer --secrets FILE, as arguments show in process lists",
    )
    add_action(
        actions,
        "delete",
        run_integrations_delete,
        "delete an integration; its secret can never be recovered",
        INTEGRATION_ID,
    )


def _object_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded = load_json_file(path)
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return loaded


def secrets_shown(integration: Integration) -> str:
    shown = (
        f"{name} (…{secret['last4']})" if secret.get("last4") else name
        for name, secret in integration.secrets.items()
        if secret.get("set")
    )
    return ", ".join(shown) or "-"


@handles_errors
def run_integrations_list(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        found = client.integrations.list()
    if args.json:
        print_json(found)
        return 0
    rows = ([i.id, i.type, i.name, secrets_shown(i), i.created_at] for i in found)
    table(f"{len(found)} integrations", ["integration", "type", "name", "secrets", "created"], rows)
    return 0


@handles_errors
def run_integrations_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        integration = client.integrations.get(args.integration_id)
    show(integration, args.json)
    return 0


def show(integration: Integration, as_json: bool) -> None:
    if as_json:
        print_json(integration)
        return
    fields(
        [
            ("integration", integration.id),
            ("type", integration.type),
            ("name", integration.name),
            *((f"  {name}", cell(value)) for name, value in integration.settings.items()),
            ("secrets", secrets_shown(integration)),
            ("created", integration.created_at),
        ]
    )


@handles_errors
def run_integrations_create(args: argparse.Namespace) -> int:
    settings = {**_object_file(args.settings), **pairs(args.setting, "--setting")}
    # Secrets stay text: a numeric password is still a password.
    secrets = {**_object_file(args.secrets), **_texts(args.secret)}
    with client_of(args) as client:
        created = client.integrations.create(args.type, args.name, settings, secrets)
    return answer(
        args, created, f"integration {created.id} stored ({created.type}, {created.name})"
    )


def _texts(values: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in values:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--secret takes NAME=VALUE, not {pair!r}")
        found[name] = value
    return found


@handles_errors
def run_integrations_delete(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        deleted = client.integrations.delete(args.integration_id)
    return answer(args, deleted, f"integration {deleted.id} deleted")
