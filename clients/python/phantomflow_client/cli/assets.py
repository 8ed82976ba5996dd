"""`assets upload|list|get|delete`: your media library, uploaded with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from phantomflow_client.cli._common import (
    UsageError,
    add_action,
    answer,
    client_of,
    console,
    handles_errors,
    print_json,
    table,
)
from phantomflow_client.models import Asset

TYPES = ("image", "video", "audio", "font")
ASSET_ID = ("asset_id", "the asset's id (asset_...)")
MAX_FILES = 20


def add_assets(commands: argparse._SubParsersAction) -> None:
    assets = commands.add_parser(
        "assets", help="upload, list and delete your media (images, videos, audio, fonts)"
    )
    actions = assets.add_subparsers(required=True, metavar="ACTION")
    upload = add_action(
        actions,
        "upload",
        run_assets_upload,
        "upload files (at most 20 at once) with a progress bar; scripts name them by id",
    )
    upload.add_argument("files", nargs="+", type=Path, help="the files to upload")
    listing = add_action(
        actions, "list", run_assets_list, "your assets, newest first, and your storage use"
    )
    listing.add_argument("--type", choices=TYPES, help="only assets of this type")
    listing.add_argument(
        "--limit", type=int, default=20, help="assets per page, 1-100 (default 20)"
    )
    listing.add_argument("--page", type=int, default=1, help="which page (default 1)")
    add_action(actions, "get", run_assets_get, "one asset", ASSET_ID)
    add_action(
        actions,
        "delete",
        run_assets_delete,
        "delete an asset and its file (refused while a running job uses it)",
        ASSET_ID,
    )


def sizes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:g} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def asset_row(asset: Asset) -> list[object]:
    shape = f"{asset.width}x{asset.height}" if asset.width and asset.height else ""
    length = f"{asset.duration_seconds:g} s" if asset.duration_seconds else ""
    return [asset.id, asset.type, sizes(asset.size), shape or length, asset.name]


# The name last: the column a narrow terminal may wrap.
COLUMNS = ["asset", "type", "size", "shape", "name"]


@handles_errors
def run_assets_upload(args: argparse.Namespace) -> int:
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise UsageError(f"cannot read {', '.join(missing)}")
    if len(args.files) > MAX_FILES:
        raise UsageError(f"at most {MAX_FILES} files at once")
    # The bar goes to stderr, so that --json output stays clean.
    bar = Progress(
        TextColumn("[bold]uploading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, highlight=False),
        transient=True,
    )
    with client_of(args) as client, bar:
        task = bar.add_task("upload", total=None)
        uploaded = client.assets.upload(
            *args.files,
            on_progress=lambda sent, total: bar.update(task, completed=sent, total=total),
        )
    if args.json:
        print_json(uploaded)
    else:
        table(f"{len(uploaded)} uploaded", COLUMNS, map(asset_row, uploaded))
    return 0


@handles_errors
def run_assets_list(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        page = client.assets.list(page=args.page, limit=args.limit, type=args.type)
    if args.json:
        print_json(page)
        return 0
    title = f"page {page.page}: {len(page.assets)} of {page.total} assets"
    table(title, COLUMNS, map(asset_row, page.assets))
    used, limit = page.storage.used_bytes, page.storage.limit_bytes
    console().print(f"storage: {sizes(used)} of {sizes(limit)} used")
    return 0


@handles_errors
def run_assets_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        asset = client.assets.get(args.asset_id)
    if args.json:
        print_json(asset)
    else:
        table(None, COLUMNS, [asset_row(asset)])
    return 0


@handles_errors
def run_assets_delete(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        deleted = client.assets.delete(args.asset_id)
    return answer(args, deleted, f"asset {deleted.id} deleted")
