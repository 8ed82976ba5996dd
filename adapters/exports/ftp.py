"""FTP and FTPS exports (Python's ftplib).

Integration settings: `host`, `port` (21), `username`, `tls` (`false`: plain FTP;
`true`: explicit FTPS, `AUTH TLS` then a protected data channel), `ca_certificate`
(PEM: trust this certificate or CA instead of the system's, for a self-signed
server); secret: `password`. Target: `path` (a directory, made if missing) and
`filename`.

The file goes up as `filename.part` and is renamed when complete, so whatever watches
the folder never picks up half a video. Passive mode; ftplib uses the control
connection's address for data connections, never the one the server names, so a
server cannot point the upload at another host.
"""

from __future__ import annotations

import ftplib
import ssl
from pathlib import PurePosixPath

from phantomflow.adapters.exports import (
    AUTH_FAILED,
    CONNECTION_FAILED,
    REMOTE_REJECTED,
    UPLOAD_FAILED,
    ExportError,
    ExportRequest,
)
from phantomflow.adapters.exports.hosts import checked_address
from phantomflow.domain.exports import ExportOutcome

BLOCK_BYTES = 1024 * 1024


def tls_context(ca_certificate: str | None) -> ssl.SSLContext:
    if ca_certificate:
        return ssl.create_default_context(cadata=ca_certificate)
    return ssl.create_default_context()


def remote_dir(path: str | None) -> PurePosixPath:
    return PurePosixPath("/") / (path or "").strip("/")


def deliver(request: ExportRequest) -> ExportOutcome:
    settings = request.settings
    host = settings["host"]
    port = int(settings.get("port") or 21)
    tls = bool(settings.get("tls"))
    address = checked_address(host, port, request.options.allow_private)
    ftp: ftplib.FTP
    if tls:
        # TLS verifies the server's name: connect by name (see hosts.py).
        ftp = ftplib.FTP_TLS(
            context=tls_context(settings.get("ca_certificate")), timeout=request.options.timeout
        )
        target_host = host
    else:
        ftp = ftplib.FTP(timeout=request.options.timeout)
        target_host = address
    directory = remote_dir(request.target.get("path"))
    try:
        ftp.connect(target_host, port)
        try:
            ftp.login(settings["username"], request.secrets.get("password", ""))
        except ftplib.error_perm as refused:
            raise ExportError(AUTH_FAILED, f"login refused: {refused}", permanent=True) from None
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        _make_dirs(ftp, directory)
        partial = f"{request.filename}.part"
        with open(request.file, "rb") as source:
            ftp.storbinary(f"STOR {partial}", source, blocksize=BLOCK_BYTES)
        ftp.rename(partial, request.filename)
        ftp.quit()
    except ExportError:
        raise
    except ftplib.error_perm as refused:  # 5xx: the server will refuse it again
        raise ExportError(
            REMOTE_REJECTED, f"the server refused: {refused}", permanent=True
        ) from None
    except ftplib.error_temp as busy:  # 4xx: try again later
        raise ExportError(UPLOAD_FAILED, f"the server answered: {busy}") from None
    except ssl.SSLCertVerificationError as error:
        raise ExportError(
            AUTH_FAILED, f"TLS certificate refused: {error}", permanent=True
        ) from None
    except (ftplib.Error, EOFError) as error:
        raise ExportError(UPLOAD_FAILED, f"{type(error).__name__}: {error}") from None
    except OSError as error:
        raise ExportError(CONNECTION_FAILED, f"{type(error).__name__}: {error}") from None
    finally:
        ftp.close()
    scheme = "ftps" if tls else "ftp"
    return ExportOutcome(
        location=f"{scheme}://{host}:{port}{directory / request.filename}", bytes=request.size
    )


def _make_dirs(ftp: ftplib.FTP, directory: PurePosixPath) -> None:
    ftp.cwd("/")
    for part in directory.parts[1:]:
        try:
            ftp.cwd(part)
        except ftplib.error_perm:
            ftp.mkd(part)
            ftp.cwd(part)
