"""The client commands of `phantomflow` (phantomflow_client.cli): render with progress over
SSE, jobs, templates, credits and the ledger, against the live embedded server."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phantomflow.api.cli import main, parser
from phantomflow_client import Client
from tests.conftest import TINY_SCRIPT
from tests.live_server import LiveServer
from tests.media import ffprobe

PHANTOMFLOW = [sys.executable, "-m", "phantomflow.api.cli"]
LONG_SCRIPT = {**TINY_SCRIPT, "scenes": [{"duration": 300, "background": "#000000"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("cli-server")).start()
    yield live
    live.stop()


@pytest.fixture
def account(server: LiveServer, monkeypatch: pytest.MonkeyPatch):
    opened = server.open_account(plan="pro", credits=1000)
    monkeypatch.setenv("PHANTOMFLOW_URL", server.url)
    monkeypatch.setenv("PHANTOMFLOW_API_KEY", opened.test_api_key)
    return opened


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def script_file(tmp_path: Path, script: dict, name: str = "script.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(script))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMFLOW_")}
    return {**env, **extra}


# --- render ---------------------------------------------------------------------------


def test_render_on_an_embedded_server_tells_each_stage_once_and_saves_the_mp4(tmp_path: Path):
    script = script_file(tmp_path, TINY_SCRIPT)
    out = tmp_path / "video.mp4"
    done = subprocess.run(
        [*PHANTOMFLOW, "render", str(script), "--out", str(out)],
        env=clean_env(PHANTOMFLOW_DATA_DIR=str(tmp_path / "data")),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    stages = re.findall(r"^job \w+: (.+?)(?: \d+%)?$", done.stderr, re.MULTILINE)
    assert stages[0] == "queued" and stages[-1] == "complete"
    assert len(stages) == len(set(stages))  # no line said twice
    assert not re.search(r"\d\.\d{4,}", done.stdout + done.stderr)  # no float noise
    assert "same type twice" not in done.stderr
    assert "rendered 1.00 s for 1 credit" in done.stdout
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)


def test_render_on_a_server_by_url_prints_the_finished_job_as_json(
    account, server: LiveServer, tmp_path: Path, capsys
):
    code, out, _ = run(
        capsys,
        "render",
        str(script_file(tmp_path, TINY_SCRIPT)),
        "--out",
        str(tmp_path / "o.mp4"),
        "--api-key",
        account.api_key,
        "--json",
    )

    job = json.loads(out)
    assert code == 0 and job["status"] == "completed" and job["credits_used"] == 1
    assert (tmp_path / "o.mp4").stat().st_size == job["file_size_bytes"]


def test_render_of_a_job_cancelled_meanwhile_ends_at_once_saying_so(
    account, server: LiveServer, tmp_path: Path
):
    rendering = subprocess.Popen(
        [*PHANTOMFLOW, "render", str(script_file(tmp_path, LONG_SCRIPT))],
        env=clean_env(PHANTOMFLOW_URL=server.url, PHANTOMFLOW_API_KEY=account.api_key),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(account.api_key, base_url=server.url) as client:
            deadline = time.monotonic() + 30
            while not (jobs := client.jobs.list().jobs) and time.monotonic() < deadline:
                time.sleep(0.05)
            client.jobs.cancel(jobs[0].job_id)
        out, err = rendering.communicate(timeout=15)
    finally:
        rendering.kill()

    assert rendering.returncode == 1
    assert "was cancelled" in out and "cancelled" in err


def test_a_dry_run_says_what_a_render_would_cost_and_renders_nothing(
    account, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "render", str(script_file(tmp_path, TINY_SCRIPT)), "--dry-run")
    whose = run(capsys, "account", "--json")

    assert code == 0 and out.strip() == "valid: 1 s of video for 1 credit, 1000 would be left"
    assert not (tmp_path / "out.mp4").exists()
    assert json.loads(whose[1])["active_jobs"] == 0 and json.loads(whose[1])["plan"] == "pro"


def test_render_explains_a_bad_file_and_a_refused_script(account, tmp_path: Path, capsys):
    missing = run(capsys, "render", str(tmp_path / "nope.json"))
    not_json = run(capsys, "render", str(script_file(tmp_path, {}, "x.json")) + "x")
    refused = run(capsys, "render", str(script_file(tmp_path, {**TINY_SCRIPT, "width": 321})))

    assert missing[0] == 2 and "cannot read" in missing[2]
    assert not_json[0] == 2
    assert refused[0] == 1 and "SCHEMA_VALIDATION_ERROR (at width)" in refused[2]


# --- jobs, templates, credits ---------------------------------------------------------------


def test_jobs_are_listed_read_watched_and_refused_a_late_cancel(account, server, capsys):
    with Client(account.test_api_key, base_url=server.url) as client:
        job_id = client.renders.create(TINY_SCRIPT).job_id
        client.jobs.wait(job_id, timeout=30)

    watched = run(capsys, "jobs", "watch", job_id)
    events = run(capsys, "jobs", "watch", job_id, "--json")
    got = run(capsys, "jobs", "get", job_id, "--json")
    listed = run(capsys, "jobs", "list", "--all", "--json")
    table = run(capsys, "jobs", "list")
    cancel = run(capsys, "jobs", "cancel", job_id)

    assert watched[0] == 0 and "completed" in watched[1]
    assert [json.loads(line)["event"] for line in events[1].splitlines()] == ["complete"]
    assert json.loads(got[1])["status"] == "completed"
    assert [job["job_id"] for job in json.loads(listed[1])] == [job_id]
    assert table[0] == 0 and "1 of 1 jobs" in table[1]
    assert cancel[0] == 1 and "JOB_ALREADY_FINISHED" in cancel[2]


def test_templates_are_created_listed_read_and_rendered(account, tmp_path: Path, capsys):
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": "{{seconds}}", "elements": [{"type": "text", "text": "{{title}}"}]}
        ],
    }
    created = run(
        capsys, "templates", "create", str(script_file(tmp_path, script)), "--name", "T", "--json"
    )
    template_id = json.loads(created[1])["id"]
    listed = run(capsys, "templates", "list", "--json")
    detail = run(capsys, "templates", "get", template_id)
    rendered = run(
        capsys,
        "templates",
        "render",
        template_id,
        "--var",
        "title=Hi",
        "--var",
        "seconds=1",
        "--wait",
    )
    missing = run(capsys, "templates", "render", template_id, "--var", "title=Hi")

    assert [t["id"] for t in json.loads(listed[1])] == [template_id]
    assert "seconds, title" in detail[1] and '"{{title}}"' in detail[1]
    assert rendered[0] == 0 and "completed" in rendered[1]
    assert missing[0] == 1 and "VALIDATION_ERROR (at variables)" in missing[2]


def test_credits_and_the_ledger_as_table_json_and_csv(
    account, server: LiveServer, monkeypatch, capsys
):
    monkeypatch.setenv("PHANTOMFLOW_API_KEY", account.api_key)
    with Client(account.api_key, base_url=server.url) as client:
        client.render(TINY_SCRIPT, timeout=120)

    balance = run(capsys, "credits")
    earlier = run(capsys, "credits", "--at", "2000-01-01T00:00:00Z", "--json")
    ledger = run(capsys, "ledger", "--json")
    as_csv = run(capsys, "ledger", "--csv")
    charges = run(capsys, "ledger", "--type", "charge")

    assert balance[1].strip() == "999 credits"
    assert json.loads(earlier[1])["credits"] == 0
    assert [entry["amount"] for entry in json.loads(ledger[1])] == [1000, -1]
    assert [row["type"] for row in csv.DictReader(io.StringIO(as_csv[1]))] == ["grant", "charge"]
    assert "1 entries" in charges[1] and "charge -1" in charges[1]


def test_a_client_command_without_a_key_says_how_to_give_one(monkeypatch, capsys):
    monkeypatch.delenv("PHANTOMFLOW_API_KEY", raising=False)
    code, _, err = run(capsys, "credits")
    assert code == 2 and "PHANTOMFLOW_API_KEY" in err


def test_an_unreachable_server_is_reported_as_such(account, monkeypatch, capsys):
    from tests.conftest import free_port

    monkeypatch.setenv("PHANTOMFLOW_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = run(capsys, "jobs", "list")
    assert code == 3 and "cannot reach the server" in err


# --- metadata, exports, deleting files, integrations, previews -----------------------------


def listed_with(capsys, *args: str) -> list[dict]:
    """`jobs list --json` with `args`, once the read model shows a job (it may lag)."""
    deadline = time.monotonic() + 20
    while True:
        jobs = json.loads(run(capsys, "jobs", "list", "--json", *args)[1])["jobs"]
        if jobs or time.monotonic() > deadline:
            return jobs
        time.sleep(0.1)


def test_render_carries_metadata_and_exports_and_its_files_can_be_deleted(
    account, tmp_path: Path, capsys
):
    mail = run(
        capsys,
        "integrations",
        "create",
        "--type",
        "email",
        "--name",
        "Mail",
        "--setting",
        "host=smtp.example.com",
        "--setting",
        "from_address=renders@example.com",
        "--json",
    )
    export = {"type": "email", "integration_id": json.loads(mail[1])["id"], "to": ["a@b.co"]}
    script = str(script_file(tmp_path, TINY_SCRIPT))
    priced = run(capsys, "render", script, "--dry-run", "--metadata", "order=42", "--json")
    rendered = run(
        capsys,
        "render",
        script,
        "--out",
        str(tmp_path / "o.mp4"),
        *("--metadata", "order=42", "--metadata", "customer=acme"),
        *("--export", json.dumps(export), "--json"),
    )
    job = json.loads(rendered[1])
    found = listed_with(capsys, "--metadata", "order=42")
    shown = run(capsys, "jobs", "get", job["job_id"])
    deleted = run(capsys, "jobs", "delete-output", job["job_id"])
    after = run(capsys, "jobs", "get", job["job_id"], "--json")
    two_keys = run(capsys, "jobs", "list", "--metadata", "a=1", "--metadata", "b=2")

    assert json.loads(priced[1])["valid"] is True
    assert job["metadata"] == {"order": 42, "customer": "acme"}
    assert [e["type"] for e in job["exports"]] == ["email"]
    assert [j["job_id"] for j in found] == [job["job_id"]]
    assert '"customer": "acme"' in shown[1] and "email" in shown[1]
    assert deleted[0] == 0 and "deleted" in deleted[1]
    assert json.loads(after[1])["output_deleted_at"] is not None
    assert two_keys[0] == 2 and "one --metadata" in two_keys[2]


def test_a_bad_export_option_is_a_usage_error(account, tmp_path: Path, capsys):
    script = str(script_file(tmp_path, TINY_SCRIPT))
    code, _, err = run(capsys, "render", script, "--export", "s3", "--dry-run")
    assert code == 2 and "--export takes a JSON object" in err


def test_integrations_are_created_listed_read_and_deleted(account, tmp_path: Path, capsys):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"password": "a-long-smtp-password-6789"}))
    created = run(
        capsys,
        *("integrations", "create", "--type", "email", "--name", "Mail"),
        *("--setting", "host=smtp.example.com", "--setting", "from_address=a@example.com"),
        *("--setting", "username=me", "--secrets", str(secrets)),
    )
    integration_id = re.search(r"int_[0-9a-f]{32}", created[1]).group(0)
    listed = run(capsys, "integrations", "list")
    got = run(capsys, "integrations", "get", integration_id, "--json")
    deleted = run(capsys, "integrations", "delete", integration_id)
    gone = run(capsys, "integrations", "get", integration_id)

    assert created[0] == 0 and "stored (email, Mail)" in created[1]
    assert "password" in listed[1] and "(…6789)" in listed[1]
    assert "a-long-smtp" not in listed[1] + got[1]
    assert json.loads(got[1])["settings"]["username"] == "me"
    assert deleted[0] == 0 and gone[0] == 1 and "NOT_FOUND" in gone[2]


def test_a_preview_is_created_shown_priced_rendered_and_deleted(account, tmp_path: Path, capsys):
    script = str(script_file(tmp_path, TINY_SCRIPT))
    created = run(capsys, "previews", "create", script, "--wait", "--json")
    preview = json.loads(created[1])
    shown = run(capsys, "previews", "get", preview["preview_id"])
    priced = run(capsys, "previews", "render", preview["preview_id"], "--dry-run")
    rendered = run(
        capsys, "previews", "render", preview["preview_id"], "--metadata", "from=preview", "--wait"
    )
    deleted = run(capsys, "previews", "delete", preview["preview_id"])
    gone = run(capsys, "previews", "get", preview["preview_id"])

    assert created[0] == 0 and preview["status"] == "completed" and preview["proxy_uri"]
    assert "preview prv_" in created[2]  # the progress, on stderr
    assert preview["viewer_url"] in shown[1] and "completed" in shown[1]
    assert priced[1].strip().startswith("valid: 1 s of video for 1 credit")
    assert rendered[0] == 0 and "completed" in rendered[1]
    assert deleted[0] == 0 and gone[0] == 1


def test_a_template_is_previewed_with_its_variables(account, tmp_path: Path, capsys):
    script = {**TINY_SCRIPT, "scenes": [{"duration": "{{seconds}}", "background": "#00FF00"}]}
    made = run(capsys, "templates", "create", str(script_file(tmp_path, script)), "--name", "T")
    template_id = re.search(r"tpl_[0-9a-f]{32}", made[1]).group(0)
    priced = run(capsys, "templates", "render", template_id, "--var", "seconds=2", "--dry-run")
    created = run(
        capsys, "previews", "create", "--template", template_id, "--var", "seconds=2", "--json"
    )
    neither = run(capsys, "previews", "create")

    assert priced[1].strip().startswith("valid: 2 s of video")
    assert json.loads(created[1])["duration_seconds"] == 2
    assert neither[0] == 2 and "--template" in neither[2]


def test_assets_are_uploaded_listed_and_deleted(account, tmp_path: Path, capsys):
    from tests import upload_files

    image = tmp_path / "logo.png"
    image.write_bytes(upload_files.png())
    uploaded = run(capsys, "assets", "upload", str(image), "--json")
    asset_id = json.loads(uploaded[1])[0]["id"]
    listed = run(capsys, "assets", "list")
    deleted = run(capsys, "assets", "delete", asset_id)
    missing = run(capsys, "assets", "upload", str(tmp_path / "nope.png"))
    refused = run(capsys, "assets", "upload", str(script_file(tmp_path, TINY_SCRIPT)))

    assert uploaded[0] == 0 and asset_id.startswith("asset_")
    assert asset_id in listed[1] and "logo.png" in listed[1] and "storage:" in listed[1]
    assert deleted[0] == 0 and f"asset {asset_id} deleted" in deleted[1]
    assert missing[0] == 2 and "cannot read" in missing[2]
    assert refused[0] == 1 and "UNSUPPORTED_FILE_TYPE" in refused[2]


# --- the command line itself -------------------------------------------------------------------


def all_actions(command: argparse.ArgumentParser, path: str = "phantomflow"):
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_actions(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_command_and_flag_has_help_text():
    undocumented = [
        f"{path} {action.dest}"
        for path, action in all_actions(parser())
        if not action.help and action.dest != "help"
    ]
    assert undocumented == []


def test_version_names_the_server_and_the_client(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert re.fullmatch(r"phantomflow \S+ \(client \S+\)\n", out)
