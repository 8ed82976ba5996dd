"""The `exports` of a render request: the schema of each target `type`.

`api/schemas.py` holds the field that picks a target's schema by its `type`
(`ExportTarget`) and loads this module to fill its table.

A target names an integration (`integration_id`, `int_…`) and carries its own fields:
never credentials. Whether the integration exists, belongs to the caller's account and
key mode, and has the target's type is checked at submission by the service layer
(`ExportCommands.check_export_targets`), which answers at `exports.N.integration_id`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, validate, validates

from phantomflow.api.schemas import (
    END,
    EXPORT_TARGET_SCHEMAS,
    Boolean,
    List,
    StrictSchema,
    String,
    _one_of,
    _type,
)

INTEGRATION_ID_PATTERN = r"^int_[0-9a-f]{32}" + END
# A file name: letters, digits, spaces and ._-, and the `{job_id}` placeholder.
FILENAME_PATTERN = r"^(?!\.)(?:[A-Za-z0-9 ._-]|\{job_id\}){1,200}" + END
# A directory or key prefix: such names separated by `/`, never `.` or `..` alone. Each
# name is bounded by `/`, so a string that does not match fails in linear time (the
# earlier `(?:name/?)*` could split a run of letters every way: 2 s for 25 characters).
_NAME = r"(?!\.\.?(?:/|$))[A-Za-z0-9 ._-]+"
PATH_PATTERN = rf"^/?(?:{_NAME}(?:/{_NAME})*/?)?" + END
# No `\s` here: Python's and JSON Schema's (ECMA-262) differ (\x1c-\x1f, \x85, \ufeff), and
# the published schema must refuse exactly what we refuse. Controls and spaces are listed.
_SPACES = r"\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PATTERN = rf"^[^@{_SPACES}<>\",;]{{1,64}}@[A-Za-z0-9.-]{{1,253}}\.[A-Za-z]{{2,63}}" + END
PRIVACY = ("private", "unlisted", "public")
MAX_RECIPIENTS = 10


def _integration_id() -> String:
    return String(
        required=True,
        validate=validate.Regexp(
            INTEGRATION_ID_PATTERN, error="Expected an integration id like int_ and 32 hex digits"
        ),
        metadata={"description": "An integration of the same type (POST /api/integrations)."},
    )


def _filename() -> String:
    return String(
        load_default="{job_id}.mp4",
        validate=validate.Regexp(
            FILENAME_PATTERN,
            error="Expected a file name of letters, digits, spaces, ._- and {{job_id}}",
        ),
        metadata={"description": "The exported file's name; {job_id} is replaced."},
    )


def _path(description: str) -> String:
    return String(
        load_default="",
        validate=[
            validate.Length(max=512),
            validate.Regexp(PATH_PATTERN, error="Expected /-separated names, without . or .."),
        ],
        metadata={"description": description},
    )


class _TargetSchema(StrictSchema):
    integration_id = _integration_id()


class S3TargetSchema(_TargetSchema):
    type = _type("s3")
    prefix = _path("Key prefix in the integration's bucket.")
    filename = _filename()


class FtpTargetSchema(_TargetSchema):
    type = _type("ftp")
    path = _path("Directory on the server, made if missing.")
    filename = _filename()


class SftpTargetSchema(_TargetSchema):
    type = _type("sftp")
    path = _path("Directory on the server, made if missing.")
    filename = _filename()


class EmailTargetSchema(_TargetSchema):
    type = _type("email")
    to = List(
        String(validate=validate.Regexp(EMAIL_PATTERN, error="Expected an email address")),
        required=True,
        validate=validate.Length(min=1, max=MAX_RECIPIENTS),
    )
    subject = String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    message = String(load_default=None, allow_none=True, validate=validate.Length(1, 2000))
    attach = Boolean(
        load_default=True,
        metadata={"description": "Attach the MP4 when it is small enough (docs/api.md)."},
    )
    filename = _filename()


_NO_ANGLES = validate.Regexp(r"^[^<>]*" + END, error="Must not contain < or >")


class YouTubeTargetSchema(_TargetSchema):
    type = _type("youtube")
    title = String(required=True, validate=[validate.Length(1, 100), _NO_ANGLES])
    description = String(load_default="", validate=[validate.Length(max=5000), _NO_ANGLES])
    privacy = String(load_default="private", validate=_one_of(PRIVACY))
    tags = List(String(validate=validate.Length(1, 100)), load_default=list,
                validate=validate.Length(max=30))  # fmt: skip
    category_id = String(
        load_default="22", validate=validate.Regexp(r"^[0-9]{1,3}" + END, error="Expected digits")
    )
    made_for_kids = Boolean(load_default=False)
    filename = _filename()

    @validates("tags")
    def _tags_fit(self, tags: list[str], **kwargs: Any) -> None:
        if sum(len(tag) for tag in tags) > 500:
            raise ValidationError("Tags may be 500 characters in all")


EXPORT_TARGET_SCHEMAS.update(
    {
        "s3": S3TargetSchema,
        "ftp": FtpTargetSchema,
        "sftp": SftpTargetSchema,
        "email": EmailTargetSchema,
        "youtube": YouTubeTargetSchema,
    }
)
