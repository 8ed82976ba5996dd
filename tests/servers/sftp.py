"""A real SFTP server on loopback (asyncssh), one per session, in a thread of its own.

Its host key is made fresh; an integration pins its public half. Logins: a password,
or the client key made here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

USER = "exporter"
PASSWORD = "sftp-password-0123456789"


@dataclass(frozen=True)
class SftpServer:
    host: str
    port: int
    root: Path
    host_key: str  # the public key, as an integration pins it
    client_key: str  # a private key the server accepts for USER

    def settings(self, host_key: str | None = None) -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "username": USER,
            "host_key": host_key or self.host_key,
        }


class _Server(asyncssh.SSHServer):
    def __init__(self, client_public: asyncssh.SSHKey) -> None:
        self.client_public = client_public

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == USER and key.public_data == self.client_public.public_data


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    root = tmp_path_factory.mktemp("sftp-root")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def chrooted(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(root).encode())

    async def start() -> None:
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=lambda: _Server(client_key.convert_to_public()),
            sftp_factory=chrooted,
            allow_scp=False,
        )
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    server = holder["server"]
    port = server.sockets[0].getsockname()[1]
    yield SftpServer(
        "127.0.0.1",
        port,
        root,
        host_key.export_public_key().decode().strip(),
        client_key.export_private_key().decode(),
    )
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
