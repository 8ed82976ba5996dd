"""The options a render carries besides its script, shared by `render`, `templates
render`, `previews create` and `previews render`: `--metadata KEY=VALUE` and exports;
and a template's variables, shared by `templates render` and `previews create`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from phantomflow_client.cli._common import UsageError, load_json_file


def add_render_extras(command: argparse.ArgumentParser, exports: bool = True) -> None:
    command.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of the job's metadata, your own data kept with the job and sent back "
        "with it (repeatable); JSON numbers and booleans keep their type, anything else "
        "is text. Find the jobs with `jobs list --metadata KEY=VALUE`",
    )
    if not exports:
        return
    command.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="JSON",
        help="deliver the video once rendered to this target, a JSON object naming one of "
        'your integrations, e.g. \'{"type": "s3", "integration_id": "int_...", "prefix": '
        '"videos/"}\' (repeatable; see docs/api.md, Exports)',
    )
    command.add_argument(
        "--exports",
        metavar="FILE",
        help="export targets as a JSON list in a file (added to any --export)",
    )


def add_variables(command: argparse.ArgumentParser, only: str = "") -> None:
    """--var, --vars and --version of a template render (`only`: when they apply)."""
    command.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{only}a variable's value (repeatable); JSON numbers and booleans keep their "
        "type, anything else is text",
    )
    command.add_argument(
        "--vars", metavar="FILE", help=f"{only}the variables as a JSON object in a file"
    )
    command.add_argument(
        "--version", type=int, help=f"{only}render this version of the template, not the latest"
    )


def variables_of(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if args.vars:
        loaded = load_json_file(args.vars)
        if not isinstance(loaded, dict):
            raise UsageError(f"{args.vars} must hold a JSON object of variables")
        values.update(loaded)
    values.update(pairs(args.var, "--var"))
    return values


def pairs(values: list[str], option: str) -> dict[str, Any]:
    """NAME=VALUE pairs; a value that is a JSON number or boolean keeps its type."""
    found: dict[str, Any] = {}
    for pair in values:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} takes NAME=VALUE, not {pair!r}")
        found[name] = typed(raw)
    return found


def typed(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, int | float | bool) else raw


def extras_of(args: argparse.Namespace) -> dict[str, Any]:
    """`metadata` and `exports` for the SDK call (None where not given)."""
    metadata = pairs(args.metadata, "--metadata") or None
    targets = [_target(raw) for raw in getattr(args, "export", [])]
    if getattr(args, "exports", None):
        listed = load_json_file(args.exports)
        if not isinstance(listed, list):
            raise UsageError(f"{args.exports} must hold a JSON list of export targets")
        targets.extend(listed)
    extras: dict[str, Any] = {"metadata": metadata}
    if hasattr(args, "export"):
        extras["exports"] = targets or None
    return extras


def _target(raw: str) -> Any:
    try:
        target = json.loads(raw)
    except ValueError as error:
        raise UsageError(f"--export takes a JSON object: {error}") from None
    if not isinstance(target, dict):
        raise UsageError('--export takes a JSON object, e.g. \'{"type": "s3", ...}\'')
    return target
