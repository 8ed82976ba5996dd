"""SFTP exports (asyncssh), to a server whose host key is pinned in the integration.

Integration settings: `host`, `port` (22), `username`, `host_key` (the server's
public key, one OpenSSH line such as `ssh-ed25519 AAAA…`: the connection is refused
unless the server proves it holds that key); secrets: `password` and/or `private_key`
(OpenSSH or PEM) with its `passphrase`. Target: `path` (a directory, made if missing)
and `filename`.

asyncssh's `put` pipelines its writes (many requests in flight), so a long fat link is
filled; the file goes up as `filename.part` and is renamed when complete.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

import asyncssh

from phantomflow.adapters.exports import (
    AUTH_FAILED,
    CONNECTION_FAILED,
    HOST_KEY_MISMATCH,
    REMOTE_REJECTED,
    UPLOAD_FAILED,
    ExportError,
    ExportRequest,
)
from phantomflow.adapters.exports.hosts import checked_address
from phantomflow.domain.exports import ExportOutcome

BLOCK_BYTES = 256 * 1024


def parse_host_key(text: str) -> asyncssh.SSHKey:
    """The pinned host key; ValueError when it is not one OpenSSH public key line."""
    try:
        return asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as error:
        raise ValueError(f"not an OpenSSH public key: {error}") from None


def deliver(request: ExportRequest) -> ExportOutcome:
    return asyncio.run(_deliver(request))


async def _deliver(request: ExportRequest) -> ExportOutcome:
    settings = request.settings
    host = settings["host"]
    port = int(settings.get("port") or 22)
    address = checked_address(host, port, request.options.allow_private)
    client_keys = None
    if request.secrets.get("private_key"):
        try:
            client_keys = [
                asyncssh.import_private_key(
                    request.secrets["private_key"], request.secrets.get("passphrase") or None
                )
            ]
        except (asyncssh.KeyImportError, ValueError) as error:
            raise ExportError(
                AUTH_FAILED, f"the private key does not load: {error}", True
            ) from None
    directory = PurePosixPath("/") / (request.target.get("path") or "").strip("/")
    final = directory / request.filename
    partial = directory / f"{request.filename}.part"
    try:
        async with (
            asyncssh.connect(
                address,
                port,
                username=settings["username"],
                password=request.secrets.get("password") or None,
                client_keys=client_keys,
                known_hosts=([parse_host_key(settings["host_key"])], [], []),
                connect_timeout=request.options.timeout,
                login_timeout=request.options.timeout,
                # Only what the integration holds: never the worker's own ~/.ssh keys.
                agent_path=None,
                config=None,
                preferred_auth="publickey,password" if client_keys else "password",
            ) as connection,
            connection.start_sftp_client() as sftp,
        ):
            await sftp.makedirs(str(directory), exist_ok=True)
            await sftp.put(str(request.file), str(partial), block_size=BLOCK_BYTES)
            if await sftp.exists(str(final)):
                await sftp.remove(str(final))
            await sftp.rename(str(partial), str(final))
    except asyncssh.HostKeyNotVerifiable as error:
        raise ExportError(
            HOST_KEY_MISMATCH,
            f"the server's host key is not the one pinned in the integration: {error}",
            permanent=True,
        ) from None
    except asyncssh.PermissionDenied as error:
        raise ExportError(AUTH_FAILED, f"login refused: {error}", permanent=True) from None
    except asyncssh.SFTPError as error:
        permanent = isinstance(
            error, asyncssh.SFTPPermissionDenied | asyncssh.SFTPNoSuchFile | asyncssh.SFTPFailure
        )
        raise ExportError(REMOTE_REJECTED, f"SFTP: {error.reason}", permanent) from None
    except (asyncssh.Error, asyncssh.misc.ChannelOpenError) as error:
        raise ExportError(UPLOAD_FAILED, f"{type(error).__name__}: {error}") from None
    except OSError as error:
        raise ExportError(CONNECTION_FAILED, f"{type(error).__name__}: {error}") from None
    return ExportOutcome(location=f"sftp://{host}:{port}{final}", bytes=request.size)
