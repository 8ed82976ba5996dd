"""Each export target against a real server of its protocol on loopback: S3 (moto),
FTP and FTPS (pyftpdlib), SFTP (asyncssh), email (aiosmtpd), and YouTube (a local
server following Google's documented upload protocol)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from phantomflow.adapters.exports import ExportOptions, ExportRequest, deliver, filename_for
from tests.servers import ftp, sftp, smtp
from tests.servers.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Bucket
from tests.servers.youtube import CHUNK_MULTIPLE, REFRESH_TOKEN

LOOPBACK = ExportOptions(allow_private=True, timeout=10)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "render.mp4"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 99))
    return path


@pytest.fixture
def poster(tmp_path: Path) -> Path:
    path = tmp_path / "poster.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0poster")
    return path


def request_for(video: Path, target: dict, settings: dict, secrets: dict, **extra) -> ExportRequest:
    job_id = uuid.uuid4()
    return ExportRequest(
        job_id=job_id,
        file=video,
        filename=filename_for(target.get("filename"), job_id),
        target=target,
        settings=settings,
        secrets=secrets,
        options=extra.pop("options", LOOPBACK),
        **extra,
    )


def s3_settings(bucket: S3Bucket) -> dict:
    return {"bucket": bucket.name, "region": REGION, "endpoint_url": bucket.endpoint.url,
            "access_key_id": ACCESS_KEY}  # fmt: skip


# --- S3 -------------------------------------------------------------------------------


def test_s3_export_uploads_the_file_under_the_prefix(s3_bucket: S3Bucket, video: Path):
    request = request_for(video, {"type": "s3", "prefix": "videos/2026/"},
                          s3_settings(s3_bucket), {"secret_access_key": SECRET_KEY})  # fmt: skip
    outcome = deliver("s3", request)
    key = f"videos/2026/{request.job_id}.mp4"
    assert outcome.delivered, outcome
    assert (outcome.location, outcome.bytes) == (
        f"s3://{s3_bucket.name}/{key}",
        video.stat().st_size,
    )
    found = s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=key)
    assert found["Body"].read() == video.read_bytes()
    assert found["ContentType"] == "video/mp4"


def test_s3_export_to_a_missing_bucket_fails_for_good(s3_bucket: S3Bucket, video: Path):
    settings = {**s3_settings(s3_bucket), "bucket": "no-such-bucket-here"}
    outcome = deliver("s3", request_for(video, {"type": "s3"}, settings,
                                        {"secret_access_key": SECRET_KEY}))  # fmt: skip
    assert (outcome.code, outcome.permanent) == ("REMOTE_REJECTED", True)


# --- FTP and FTPS ---------------------------------------------------------------------


@pytest.mark.parametrize("server_name", ["ftp_server", "ftps_server"])
def test_ftp_export_makes_the_directory_and_renames_a_complete_upload(
    server_name: str, request: pytest.FixtureRequest, video: Path
):
    server: ftp.FtpServer = request.getfixturevalue(server_name)
    folder = f"exports/{uuid.uuid4().hex[:8]}"
    target = {"type": "ftp", "path": folder, "filename": "clip-{job_id}.mp4"}
    req = request_for(video, target, server.settings(), {"password": ftp.PASSWORD})
    outcome = deliver("ftp", req)
    assert outcome.delivered, outcome
    landed = server.root / folder / f"clip-{req.job_id}.mp4"
    assert landed.read_bytes() == video.read_bytes()
    assert list((server.root / folder).iterdir()) == [landed]  # no .part left behind
    scheme = "ftps" if server.tls else "ftp"
    assert outcome.location == f"{scheme}://127.0.0.1:{server.port}/{folder}/clip-{req.job_id}.mp4"


def test_ftp_export_with_a_wrong_password_fails_for_good(ftp_server: ftp.FtpServer, video: Path):
    outcome = deliver("ftp", request_for(video, {"type": "ftp"}, ftp_server.settings(),
                                         {"password": "wrong"}))  # fmt: skip
    assert (outcome.code, outcome.permanent) == ("AUTH_FAILED", True)


def test_ftps_export_refuses_a_certificate_it_was_not_told_to_trust(
    ftps_server: ftp.FtpServer, video: Path
):
    settings = {**ftps_server.settings(), "ca_certificate": None}
    outcome = deliver("ftp", request_for(video, {"type": "ftp"}, settings,
                                         {"password": ftp.PASSWORD}))  # fmt: skip
    assert (outcome.code, outcome.permanent) == ("AUTH_FAILED", True)
    assert "certificate" in outcome.message


# --- SFTP -----------------------------------------------------------------------------


def test_sftp_export_with_a_password_lands_the_file(sftp_server: sftp.SftpServer, video: Path):
    folder = f"in/{uuid.uuid4().hex[:8]}"
    req = request_for(video, {"type": "sftp", "path": folder}, sftp_server.settings(),
                      {"password": sftp.PASSWORD})  # fmt: skip
    outcome = deliver("sftp", req)
    assert outcome.delivered, outcome
    landed = sftp_server.root / folder / f"{req.job_id}.mp4"
    assert landed.read_bytes() == video.read_bytes()
    assert outcome.location == f"sftp://127.0.0.1:{sftp_server.port}/{folder}/{req.job_id}.mp4"
    assert [p.name for p in landed.parent.iterdir()] == [landed.name]


def test_sftp_export_with_a_private_key(sftp_server: sftp.SftpServer, video: Path):
    req = request_for(video, {"type": "sftp", "path": "keyed"}, sftp_server.settings(),
                      {"private_key": sftp_server.client_key})  # fmt: skip
    outcome = deliver("sftp", req)
    assert outcome.delivered, outcome
    assert (sftp_server.root / "keyed" / f"{req.job_id}.mp4").exists()


def test_sftp_export_to_a_server_with_another_host_key_fails_for_good(
    sftp_server: sftp.SftpServer, video: Path
):
    import asyncssh

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    req = request_for(video, {"type": "sftp", "path": "never"}, sftp_server.settings(impostor),
                      {"password": sftp.PASSWORD})  # fmt: skip
    outcome = deliver("sftp", req)
    assert (outcome.code, outcome.permanent) == ("HOST_KEY_MISMATCH", True)
    assert not (sftp_server.root / "never").exists()


def test_sftp_export_with_a_wrong_password_fails_for_good(
    sftp_server: sftp.SftpServer, video: Path
):
    outcome = deliver("sftp", request_for(video, {"type": "sftp"}, sftp_server.settings(),
                                          {"password": "wrong"}))  # fmt: skip
    assert (outcome.code, outcome.permanent) == ("AUTH_FAILED", True)


# --- email ----------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "none"])
def test_email_carries_the_link_and_poster_and_attaches_a_small_video(
    smtp_server: smtp.SmtpServer, video: Path, poster: Path, security: str
):
    before = len(smtp_server.mailbox.messages)
    target = {"type": "email", "to": ["a@example.com", "b@example.com"], "subject": "Done",
              "message": "Here it is."}  # fmt: skip
    req = request_for(video, target, smtp_server.settings(security), {"password": smtp.PASSWORD},
                      poster=poster, output_uri="https://api.example/outputs/x.mp4")  # fmt: skip
    outcome = deliver("email", req)
    assert outcome.delivered, outcome
    assert outcome.location == "mailto:a@example.com,b@example.com"
    recipients, mail = smtp_server.mailbox.messages[before]
    assert recipients == ["a@example.com", "b@example.com"]
    assert mail["Subject"] == "Done"
    text = mail.get_body(("plain",)).get_content()
    assert "https://api.example/outputs/x.mp4" in text and "Here it is." in text
    html = mail.get_body(("html",)).get_content()
    assert "https://api.example/outputs/x.mp4" in html and "cid:" in html
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert parts["image/jpeg"].get_content() == poster.read_bytes()
    assert parts["video/mp4"].get_content() == video.read_bytes()


def test_email_links_a_video_above_the_attachment_limit_without_attaching_it(
    smtp_server: smtp.SmtpServer, video: Path, poster: Path
):
    before = len(smtp_server.mailbox.messages)
    options = ExportOptions(allow_private=True, timeout=10, email_attach_max_bytes=1024)
    req = request_for(video, {"type": "email", "to": ["c@example.com"]}, smtp_server.settings(),
                      {"password": smtp.PASSWORD}, poster=poster, options=options,
                      output_uri="https://api.example/outputs/y.mp4")  # fmt: skip
    outcome = deliver("email", req)
    assert outcome.delivered, outcome
    assert outcome.bytes < 100_000
    _, mail = smtp_server.mailbox.messages[before]
    assert "video/mp4" not in {part.get_content_type() for part in mail.walk()}
    assert "https://api.example/outputs/y.mp4" in mail.get_body(("plain",)).get_content()


def test_email_to_a_refused_recipient_or_with_a_wrong_password_fails_for_good(
    smtp_server: smtp.SmtpServer, video: Path
):
    link = "https://api.example/outputs/z.mp4"
    refused = deliver("email", request_for(video, {"type": "email", "to": ["x@refused.example"]},
                                           smtp_server.settings(), {"password": smtp.PASSWORD},
                                           output_uri=link))  # fmt: skip
    assert (refused.code, refused.permanent) == ("REMOTE_REJECTED", True)
    wrong = deliver("email", request_for(video, {"type": "email", "to": ["a@example.com"]},
                                         smtp_server.settings(), {"password": "nope"},
                                         output_uri=link))  # fmt: skip
    assert (wrong.code, wrong.permanent) == ("AUTH_FAILED", True)


# --- YouTube --------------------------------------------------------------------------


def youtube_options(server) -> ExportOptions:
    return ExportOptions(allow_private=True, timeout=10, google_token_url=server.token_url,
                         youtube_upload_url=server.upload_url)  # fmt: skip


def test_youtube_export_refreshes_the_token_and_uploads_resumably(youtube_server, tmp_path):
    video = tmp_path / "big.mp4"
    video.write_bytes(os.urandom(20 * CHUNK_MULTIPLE * 4 + 1234))  # three chunks of 8 MiB
    target = {"type": "youtube", "title": "Launch video", "description": "Made by PhantomFlow",
              "privacy": "unlisted", "tags": ["launch"]}  # fmt: skip
    req = request_for(video, target, youtube_server.settings(), youtube_server.secrets(),
                      options=youtube_options(youtube_server))  # fmt: skip
    outcome = deliver("youtube", req)
    assert outcome.delivered, outcome
    video_id = outcome.location.removeprefix("https://www.youtube.com/watch?v=")
    uploaded = youtube_server.videos[video_id]
    assert uploaded.path.read_bytes() == video.read_bytes()
    assert uploaded.metadata["snippet"]["title"] == "Launch video"
    assert uploaded.metadata["status"]["privacyStatus"] == "unlisted"


def test_youtube_upload_resumes_after_the_connection_drops_mid_chunk(youtube_server, video: Path):
    youtube_server.interrupt_next_chunk_after = 1_000_000
    interruptions = youtube_server.interruptions
    req = request_for(video, {"type": "youtube", "title": "Resumed"}, youtube_server.settings(),
                      youtube_server.secrets(), options=youtube_options(youtube_server))  # fmt: skip
    outcome = deliver("youtube", req)
    assert outcome.delivered, outcome
    assert youtube_server.interruptions == interruptions + 1
    video_id = outcome.location.rsplit("=", 1)[1]
    assert youtube_server.videos[video_id].path.read_bytes() == video.read_bytes()


def test_youtube_export_with_a_revoked_refresh_token_fails_for_good(youtube_server, video: Path):
    youtube_server.revoked.add(REFRESH_TOKEN)
    try:
        req = request_for(video, {"type": "youtube", "title": "Never"}, youtube_server.settings(),
                          youtube_server.secrets(), options=youtube_options(youtube_server))  # fmt: skip
        outcome = deliver("youtube", req)
    finally:
        youtube_server.revoked.clear()
    assert (outcome.code, outcome.permanent) == ("AUTH_FAILED", True)
    assert "invalid_grant" in outcome.message


# --- the address policy ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("target_type", "settings"),
    [
        ("sftp", {"host": "127.0.0.1", "port": 22, "username": "u", "host_key": "x"}),
        ("ftp", {"host": "10.0.0.5", "username": "u"}),
        ("email", {"host": "169.254.169.254", "from_address": "a@b.c"}),
        ("s3", {"bucket": "b", "endpoint_url": "http://localhost:9000", "access_key_id": "k"}),
        ("youtube", {"client_id": "c"}),
    ],
)
def test_export_hosts_obey_the_address_policy(target_type: str, settings: dict, video: Path):
    target = {"type": target_type, "to": ["a@example.com"], "title": "t"}
    options = ExportOptions(google_token_url="http://127.0.0.1:9/token")
    req = request_for(video, target, settings,
                      {"password": "p", "secret_access_key": "s", "client_secret": "c",
                       "refresh_token": "r"}, options=options,
                      output_uri="https://api.example/o.mp4")  # fmt: skip
    outcome = deliver(target_type, req)
    assert (outcome.code, outcome.permanent) == ("ADDRESS_REFUSED", True), outcome
