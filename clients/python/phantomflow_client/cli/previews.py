"""`previews create|get|render|delete`: a free look at a script (a storyboard, then a
watermarked proxy and a page to watch it on) before paying for its render."""

from __future__ import annotations

import argparse
from typing import Any

from phantomflow_client.cli._common import (
    FAILED,
    UsageError,
    add_action,
    answer,
    client_of,
    fields,
    handles_errors,
    load_json_file,
    percent,
    print_json,
    stage_name,
)
from phantomflow_client.cli.extras import (
    add_render_extras,
    add_variables,
    extras_of,
    variables_of,
)
from phantomflow_client.cli.progress import ProgressDisplay
from phantomflow_client.cli.render import add_wait, print_quote, submitted
from phantomflow_client.models import Preview

PREVIEW_ID = ("preview_id", "the preview's id (prv_...)")


def add_previews(commands: argparse._SubParsersAction) -> None:
    previews = commands.add_parser(
        "previews",
        help="preview a script for free (storyboard, proxy video, viewer page), then render it",
    )
    actions = previews.add_subparsers(required=True, metavar="ACTION")

    create = add_action(
        actions,
        "create",
        run_previews_create,
        "preview a script file, or a template with --template (nothing is charged)",
    )
    create.add_argument("script", nargs="?", help="the movie script, a JSON file")
    create.add_argument(
        "--template", metavar="TEMPLATE_ID", help="preview this template instead of a script"
    )
    add_variables(create, only="with --template: ")
    create.add_argument(
        "--wait",
        action="store_true",
        help="follow the preview until its proxy is drawn, with progress",
    )
    create.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="with --wait: stop waiting after this many seconds (default 300)",
    )
    add_render_extras(create)

    add_action(
        actions,
        "get",
        run_previews_get,
        "a preview's status, storyboard, proxy and viewer link",
        PREVIEW_ID,
    )
    render = add_action(
        actions,
        "render",
        run_previews_render,
        "render a preview's script for real (charged as a render)",
        PREVIEW_ID,
    )
    add_wait(render)
    add_render_extras(render)
    add_action(actions, "delete", run_previews_delete, "delete a preview and its files", PREVIEW_ID)


def show(preview: Preview) -> None:
    proxy = preview.proxy
    fields(
        [
            ("preview", preview.preview_id),
            ("status", preview.status),
            ("stage", stage_name(preview.stage)),
            ("progress", percent(preview.progress)),
            ("duration", f"{preview.duration_seconds:g} s"),
            ("render would cost", preview.estimated_credits),
            ("storyboard", f"{len(preview.storyboard)} frames" if preview.storyboard else None),
            ("proxy size", f"{proxy.width}x{proxy.height} at {proxy.fps:g} fps" if proxy else None),
            ("error", f"{preview.error.code}: {preview.error.message}" if preview.error else None),
            ("expires", preview.expires_at),
        ]
    )
    # Links on lines of their own, never wrapped by the table, so they can be copied.
    if preview.proxy_uri:
        print(f"proxy: {preview.proxy_uri}")
    print(f"watch at: {preview.viewer_url}")


@handles_errors
def run_previews_create(args: argparse.Namespace) -> int:
    extras = extras_of(args)
    with client_of(args) as client:
        if args.template:
            if args.script or extras.get("exports"):
                raise UsageError("--template previews a template: no script file or exports")
            preview = client.previews.create_from_template(
                args.template,
                variables_of(args),
                version=args.version,
                metadata=extras["metadata"],
            )
        elif args.script:
            script: Any = load_json_file(args.script)
            if not isinstance(script, dict):
                raise UsageError(f"{args.script} must hold a JSON object (a movie script)")
            preview = client.previews.create(script, **extras)
        else:
            raise UsageError("give a script file, or --template TEMPLATE_ID")
        if args.wait:
            with ProgressDisplay(preview.preview_id, kind="preview") as display:
                preview = client.previews.wait(
                    preview, timeout=args.timeout, on_event=display.update
                )
    return shown(args, preview)


@handles_errors
def run_previews_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        preview = client.previews.get(args.preview_id)
    return shown(args, preview)


def shown(args: argparse.Namespace, preview: Preview) -> int:
    """The preview, as JSON or fields; exit status 1 when it failed to be drawn."""
    if args.json:
        print_json(preview)
    else:
        show(preview)
    return FAILED if preview.status == "failed" else 0


@handles_errors
def run_previews_render(args: argparse.Namespace) -> int:
    extras = extras_of(args)
    with client_of(args) as client:
        if args.dry_run:
            print_quote(client.previews.quote(args.preview_id, **extras), args.json)
            return 0
        submission = client.previews.render(args.preview_id, **extras)
    return submitted(args, submission)


@handles_errors
def run_previews_delete(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        deleted = client.previews.delete(args.preview_id)
    return answer(args, deleted, f"preview {deleted.preview_id} deleted")
