"""The body of POST /api/integrations: `{type, name, settings, secrets}`.

Each type has its own settings (kept and shown in the clear) and secrets (sealed at
once, never shown again: a listing says only that each is set and, for long ones, its
last four characters). A missing, unknown or mistyped field answers 400
INVALID_REQUEST, a refused value 400 VALIDATION_ERROR, each at its dotted path
(`settings.host`, `secrets.password`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, validate, validates, validates_schema

from phantomflow.adapters.addresses import AddressRefused, check_url
from phantomflow.adapters.exports.sftp import parse_host_key
from phantomflow.api.export_schemas import EMAIL_PATTERN
from phantomflow.api.schemas import (
    END,
    HTTP_URL_MESSAGE,
    HTTP_URL_PATTERN,
    Boolean,
    Integer,
    StrictSchema,
    String,
    _one_of,
)
from phantomflow.api.template_schemas import JsonObject, load_body, validation_error
from phantomflow.domain.integrations import TYPES

HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?" + END
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]" + END


def _host() -> String:
    return String(
        required=True, validate=validate.Regexp(HOST_PATTERN, error="Expected a host name or IP")
    )


def _port(default: int) -> Integer:
    return Integer(load_default=default, validate=validate.Range(1, 65535))


def _secret(required: bool = True) -> String:
    return String(required=required, validate=validate.Length(1, 8192))


def _pem() -> String:
    return String(load_default=None, allow_none=True, validate=validate.Length(1, 65536))


class _Checked(StrictSchema):
    """Settings with a certificate to trust, checked before it is stored."""

    @validates("ca_certificate")
    def _loads(self, value: str | None, **kwargs: Any) -> None:
        if value is None:
            return
        try:
            ssl.create_default_context(cadata=value)
        except (ssl.SSLError, ValueError, TypeError):  # TypeError: not ASCII
            raise ValidationError("Expected a PEM certificate") from None


class S3Settings(StrictSchema):
    bucket = String(
        required=True,
        validate=validate.Regexp(BUCKET_PATTERN, error="Expected an S3 bucket name"),
    )
    region = String(load_default="us-east-1", validate=validate.Length(1, 64))
    access_key_id = String(required=True, validate=validate.Length(1, 256))
    endpoint_url = String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(HTTP_URL_PATTERN, error=HTTP_URL_MESSAGE),
        metadata={"description": "For S3-compatible stores other than AWS."},
    )


class S3Secrets(StrictSchema):
    secret_access_key = _secret()


class FtpSettings(_Checked):
    host = _host()
    port = _port(21)
    username = String(required=True, validate=validate.Length(1, 256))
    tls = Boolean(load_default=False, metadata={"description": "Explicit FTPS (AUTH TLS)."})
    ca_certificate = _pem()


class FtpSecrets(StrictSchema):
    password = _secret()


class SftpSettings(StrictSchema):
    host = _host()
    port = _port(22)
    username = String(required=True, validate=validate.Length(1, 256))
    host_key = String(
        required=True,
        validate=validate.Length(1, 16384),
        metadata={"description": "The server's public host key, one OpenSSH line."},
    )

    @validates("host_key")
    def _is_a_key(self, value: str, **kwargs: Any) -> None:
        try:
            parse_host_key(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class SftpSecrets(StrictSchema):
    password = _secret(required=False)
    private_key = _secret(required=False)
    passphrase = _secret(required=False)

    @validates_schema
    def _one_way_in(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("password") and not data.get("private_key"):
            raise ValidationError("Give a password, a private_key or both", "password")
        if data.get("private_key"):
            import asyncssh

            try:
                asyncssh.import_private_key(data["private_key"], data.get("passphrase"))
            except (asyncssh.KeyImportError, ValueError) as error:
                raise ValidationError(f"The key does not load: {error}", "private_key") from None


class EmailSettings(_Checked):
    host = _host()
    port = _port(587)
    security = String(load_default="starttls", validate=_one_of(("starttls", "tls", "none")))
    username = String(load_default=None, allow_none=True, validate=validate.Length(1, 256))
    from_address = String(
        required=True, validate=validate.Regexp(EMAIL_PATTERN, error="Expected an email address")
    )
    ca_certificate = _pem()


class EmailSecrets(StrictSchema):
    password = _secret(required=False)


class YouTubeSettings(StrictSchema):
    client_id = String(required=True, validate=validate.Length(1, 512))


class YouTubeSecrets(StrictSchema):
    client_secret = _secret()
    refresh_token = _secret()


SCHEMAS: dict[str, tuple[type[Schema], type[Schema]]] = {
    "s3": (S3Settings, S3Secrets),
    "ftp": (FtpSettings, FtpSecrets),
    "sftp": (SftpSettings, SftpSecrets),
    "email": (EmailSettings, EmailSecrets),
    "youtube": (YouTubeSettings, YouTubeSecrets),
}


class NewIntegrationSchema(StrictSchema):
    type = String(required=True, validate=_one_of(TYPES))
    name = String(required=True, validate=validate.Length(1, 100))
    settings = JsonObject(required=True)
    secrets = JsonObject(required=True)


@dataclass(frozen=True)
class NewIntegration:
    type: str
    name: str
    settings: dict[str, Any]
    secrets: dict[str, str]


def parse_new_integration(body: Any, allow_private: bool) -> NewIntegration:
    given = load_body(NewIntegrationSchema(), body)
    settings_schema, secrets_schema = SCHEMAS[given["type"]]
    settings = load_body(settings_schema(), given["settings"], prefix="settings")
    secrets = load_body(secrets_schema(), given["secrets"], prefix="secrets")
    if given["type"] == "email" and settings.get("username") and not secrets.get("password"):
        raise validation_error("A username needs a password", path="secrets.password")
    _check_addresses(settings, allow_private)
    return NewIntegration(
        type=given["type"],
        name=given["name"],
        settings=settings,
        secrets={key: value for key, value in secrets.items() if value},
    )


def _check_addresses(settings: dict[str, Any], allow_private: bool) -> None:
    """What the address policy can refuse without a DNS lookup: a host that is a
    non-public IP literal or a local name (names are checked again at every export)."""
    from phantomflow.api.template_schemas import validation_error

    for field, url in (
        ("host", f"http://{settings['host']}/" if settings.get("host") else None),
        ("endpoint_url", settings.get("endpoint_url")),
    ):
        if url is None:
            continue
        try:
            check_url(url, allow_private=allow_private)
        except AddressRefused as refused:
            raise validation_error(f"Refused: {refused}", path=f"settings.{field}") from None
