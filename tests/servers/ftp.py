"""Real FTP and FTPS servers on loopback (pyftpdlib), one of each per session."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from tests.servers.tls import Certificate, self_signed

USER = "exporter"
PASSWORD = "ftp-password-0123456789"


@dataclass(frozen=True)
class FtpServer:
    host: str
    port: int
    root: Path
    tls: bool
    certificate: Certificate | None

    def settings(self) -> dict:
        found = {"host": self.host, "port": self.port, "username": USER, "tls": self.tls}
        if self.certificate is not None:
            found["ca_certificate"] = self.certificate.pem
        return found


def _serve(root: Path, handler_class: type[FTPHandler]) -> tuple[ThreadedFTPServer, int]:
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
    handler = type("Handler", (handler_class,), {"authorizer": authorizer, "banner": "test"})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    serve = threading.Thread(
        target=server.serve_forever, kwargs={"handle_exit": False}, daemon=True
    )
    serve.start()
    return server, server.socket.getsockname()[1]


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("ftp-root")
    server, port = _serve(root, FTPHandler)
    yield FtpServer("127.0.0.1", port, root, tls=False, certificate=None)
    server.close_all()


@pytest.fixture(scope="session")
def ftps_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("ftps-root")
    certificate = self_signed(tmp_path_factory.mktemp("ftps-cert"))
    handler = type(
        "TlsHandler",
        (TLS_FTPHandler,),
        {
            "certfile": str(certificate.cert_file),
            "keyfile": str(certificate.key_file),
            "tls_control_required": True,
            "tls_data_required": True,
        },
    )
    server, port = _serve(root, handler)
    yield FtpServer("127.0.0.1", port, root, tls=True, certificate=certificate)
    server.close_all()
