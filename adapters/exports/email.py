"""Email exports: a message with the video's link and its poster, through the user's
own mail server (Python's smtplib).

Integration settings: `host`, `port` (587), `security` (`starttls`, `tls` or `none`),
`username` (none: no login), `from_address`, `ca_certificate` (PEM, for a server with a
private CA); secret: `password`. Target: `to` (1–10 addresses), `subject`, `message`,
`attach` (default true).

The mail is HTML with a plain-text alternative: the video's link (`output_uri`, so the
worker needs `PHANTOMFLOW_PUBLIC_URL`), the poster inline, and the MP4 attached only
when it is at most `PHANTOMFLOW_EMAIL_ATTACH_MAX_BYTES` (10 MiB by default): the one
export that holds its file in memory, hence the cap.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from phantomflow.adapters.exports import (
    AUTH_FAILED,
    CONNECTION_FAILED,
    NO_PUBLIC_URL,
    REMOTE_REJECTED,
    UPLOAD_FAILED,
    ExportError,
    ExportRequest,
)
from phantomflow.adapters.exports.ftp import tls_context
from phantomflow.adapters.exports.hosts import checked_address
from phantomflow.domain.exports import ExportOutcome

DEFAULT_SUBJECT = "Your video is ready"


def build_message(request: ExportRequest) -> tuple[EmailMessage, bool]:
    """The mail, and whether the MP4 is attached."""
    if not request.output_uri:
        raise ExportError(
            NO_PUBLIC_URL,
            "the worker does not know the API's public address (PHANTOMFLOW_PUBLIC_URL), "
            "so the mail would carry no link",
            permanent=True,
        )
    target = request.target
    message = EmailMessage()
    message["From"] = request.settings["from_address"]
    message["To"] = ", ".join(target["to"])
    message["Subject"] = target.get("subject") or DEFAULT_SUBJECT
    note = target.get("message") or ""
    attach = bool(target.get("attach", True)) and (
        request.size <= request.options.email_attach_max_bytes
    )
    attached_line = f"The video is attached ({request.filename})." if attach else ""
    message.set_content(
        "\n\n".join(
            part
            for part in (note, f"Watch or download it: {request.output_uri}", attached_line)
            if part
        )
        + "\n"
    )
    poster_cid = make_msgid(domain="phantomflow")
    poster_html = (
        f'<p><a href="{html.escape(request.output_uri)}">'
        f'<img src="cid:{poster_cid[1:-1]}" alt="Poster frame of the video" width="480"></a></p>'
        if request.poster is not None
        else ""
    )
    message.add_alternative(
        "<html><body>"
        + (f"<p>{html.escape(note)}</p>" if note else "")
        + poster_html
        + f'<p><a href="{html.escape(request.output_uri)}">Watch or download the video</a></p>'
        + (f"<p>{html.escape(attached_line)}</p>" if attached_line else "")
        + "</body></html>",
        subtype="html",
    )
    if request.poster is not None:
        html_part = message.get_payload()[1]
        html_part.add_related(
            request.poster.read_bytes(), "image", "jpeg", cid=poster_cid, filename="poster.jpg"
        )
    if attach:
        message.add_attachment(request.file.read_bytes(), "video", "mp4", filename=request.filename)
    return message, attach


def deliver(request: ExportRequest) -> ExportOutcome:
    settings = request.settings
    host = settings["host"]
    port = int(settings.get("port") or 587)
    security = settings.get("security") or "starttls"
    message, _ = build_message(request)
    address = checked_address(host, port, request.options.allow_private)
    context = tls_context(settings.get("ca_certificate"))
    timeout = request.options.timeout
    try:
        server: smtplib.SMTP
        if security == "tls":
            server = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        elif security == "starttls":
            server = smtplib.SMTP(host, port, timeout=timeout)
        else:  # no TLS: nothing verifies the name, so connect to the checked address
            server = smtplib.SMTP(address, port, timeout=timeout)
        with server:
            if security == "starttls":
                server.starttls(context=context)
            if settings.get("username"):
                server.login(settings["username"], request.secrets.get("password", ""))
            refused = server.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        raise ExportError(AUTH_FAILED, f"login refused: {_reply(error)}", permanent=True) from None
    except smtplib.SMTPNotSupportedError as error:
        raise ExportError(REMOTE_REJECTED, f"the server cannot: {error}", permanent=True) from None
    except smtplib.SMTPRecipientsRefused as error:
        refused_all = "; ".join(f"{who}: {_reply(code)}" for who, code in error.recipients.items())
        raise ExportError(REMOTE_REJECTED, f"recipients refused: {refused_all}", True) from None
    except smtplib.SMTPResponseException as error:
        permanent = 500 <= error.smtp_code < 600
        code = REMOTE_REJECTED if permanent else UPLOAD_FAILED
        raise ExportError(code, f"the server answered {_reply(error)}", permanent) from None
    except ssl.SSLCertVerificationError as error:
        message_text = f"TLS certificate refused: {error}"
        raise ExportError(AUTH_FAILED, message_text, permanent=True) from None
    except smtplib.SMTPException as error:
        raise ExportError(UPLOAD_FAILED, f"{type(error).__name__}: {error}") from None
    except OSError as error:
        raise ExportError(CONNECTION_FAILED, f"{type(error).__name__}: {error}") from None
    delivered_to = [who for who in request.target["to"] if who not in refused]
    return ExportOutcome(location="mailto:" + ",".join(delivered_to), bytes=len(message.as_bytes()))


def _reply(error: object) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    if isinstance(error, tuple) and len(error) == 2:
        code, text = error
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return str(error)
