"""The client commands, on the SDK: `render`, `jobs`, `templates`, `previews`,
`integrations`, `assets`, `credits`, `ledger`, `account`, `mcp`.

`register` adds them to a command line: the server's `phantomflow` (api/cli.py), which
passes an embedded server for `render` to use when no URL is given, and this
distribution's own `phantomflow-client` (`main`). Needs `rich` (the `cli` extra).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from phantomflow_client._version import __version__
from phantomflow_client.cli.assets import add_assets
from phantomflow_client.cli.commands import (
    add_account,
    add_credits,
    add_jobs,
    add_ledger,
    add_templates,
)
from phantomflow_client.cli.integrations import add_integrations
from phantomflow_client.cli.previews import add_previews
from phantomflow_client.cli.render import LocalServer, add_render


@dataclass(frozen=True)
class Registered:
    credit_actions: argparse._SubParsersAction  # where an operator's `credits grant` goes


def register(
    commands: argparse._SubParsersAction, local_server: LocalServer | None = None
) -> Registered:
    add_render(commands, local_server)
    add_jobs(commands)
    add_templates(commands)
    add_previews(commands)
    add_integrations(commands)
    add_assets(commands)
    credit_actions = add_credits(commands)
    add_ledger(commands)
    add_account(commands)
    add_mcp(commands)
    return Registered(credit_actions=credit_actions)


def add_mcp(commands: argparse._SubParsersAction) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="the MCP server (stdio) that lets an agent render, follow jobs and read credits",
        description="A Model Context Protocol server on stdin/stdout. It calls the API at "
        "$PHANTOMFLOW_URL (default http://127.0.0.1:8080) with $PHANTOMFLOW_API_KEY.",
    )
    mcp.set_defaults(run=run_mcp)


def run_mcp(args: argparse.Namespace) -> int:
    from phantomflow_client.mcp_server import serve_stdio

    return serve_stdio()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="phantomflow-client", description="Call a PhantomFlow server from the shell."
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    register(root.add_subparsers(required=True, metavar="COMMAND"))
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)
