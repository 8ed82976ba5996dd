"""What every client command shares: the server options, the client, output, errors."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from phantomflow_client import Client
from phantomflow_client._client import settings
from phantomflow_client.errors import APIConnectionError, APIError, PhantomFlowError
from phantomflow_client.models import Model

Run = Callable[..., int]

# Exit codes: 0 done, 1 the API (or the job) said no, 2 a usage or input error, 3 the
# server could not be reached.
FAILED, USAGE, UNREACHABLE = 1, 2, 3


def server_options() -> argparse.ArgumentParser:
    """The options of every command that calls a server (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("server")
    group.add_argument(
        "--url",
        metavar="URL",
        help="the API's address (default: $PHANTOMFLOW_URL, else http://127.0.0.1:8080)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key (default: $PHANTOMFLOW_API_KEY; the variable is safer, "
        "as arguments show in process lists)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print the API's JSON instead of a table, for scripts",
    )
    return options


def add_action(
    actions: argparse._SubParsersAction,
    name: str,
    run: Run,
    help: str,
    *positionals: tuple[str, str],
    **parser_options: Any,
) -> argparse.ArgumentParser:
    """An action that calls a server: the server options, its positional arguments
    (name, help) and the function that runs it."""
    action = actions.add_parser(name, parents=[server_options()], help=help, **parser_options)
    for argument, text in positionals:
        action.add_argument(argument, help=text)
    action.set_defaults(run=run)
    return action


def client_of(args: argparse.Namespace) -> Client:
    key, url = settings(args.api_key, args.url)
    if not key:
        raise UsageError("no API key: set PHANTOMFLOW_API_KEY (or pass --api-key)")
    return Client(key, base_url=url)


class UsageError(Exception):
    """A mistake in the command line or its input files."""


def handles_errors(run: Run) -> Run:
    """Errors as one clear line on stderr and an exit code, not a stack trace."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace, **options: Any) -> int:
        # One line per HTTP request (httpx logs at INFO) would bury the output.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        errors = Console(stderr=True, highlight=False)
        try:
            return run(args, **options)
        except UsageError as error:
            errors.print(f"[red]error:[/] {error}")
            return USAGE
        except APIConnectionError as error:
            errors.print(f"[red]error:[/] cannot reach the server: {error}")
            return UNREACHABLE
        except APIError as error:
            where = f" (at {error.path})" if error.path else ""
            errors.print(f"[red]error:[/] {error.code}{where}: {error.message}", markup=True)
            return FAILED
        except PhantomFlowError as error:
            errors.print(f"[red]error:[/] {error}")
            return FAILED

    return guarded


def load_json_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"{path} is not JSON: {error}") from None


# --- output -------------------------------------------------------------------------------


def answer(args: argparse.Namespace, data: Any, message: str) -> int:
    """The API's answer as JSON with --json, else one line saying what happened."""
    if args.json:
        print_json(data)
    else:
        print(message)
    return 0


def print_json(data: Any) -> None:
    json.dump(_plain(data), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _plain(data: Any) -> Any:
    if isinstance(data, Model):
        return data.to_dict()
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    return data


def console() -> Console:
    return Console(highlight=False)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    shown = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        # The first column is an id: whole on one line, to be copied.
        shown.add_column(column, no_wrap=index == 0)
    for row in rows:
        shown.add_row(*(cell(value) for value in row))
    console().print(shown)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """One record as `name  value` lines."""
    shown = Table.grid(padding=(0, 2))
    shown.add_column(style="bold")
    shown.add_column()
    for name, value in pairs:
        shown.add_row(name, cell(value))
    console().print(shown)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def percent(progress: float | None) -> str:
    """0.12565326999999998 -> "13%": progress is a fraction, shown without float noise."""
    return f"{(progress or 0):.0%}"


def stage_name(stage: str | None) -> str:
    return (stage or "-").replace("_", " ")
