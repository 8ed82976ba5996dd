"""The OpenAPI document generates a working client: openapi-python-client, run on the
served document, makes a function for every operation, without a warning, and the
functions work against the live API."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT

PACKAGE = "phantomflow_generated"
# What a client generator is told about the binary answers (GET /outputs/{name}),
# which the document types by their real media types.
CONFIG = {
    "package_name_override": PACKAGE,
    "content_type_overrides": {
        "video/mp4": "application/octet-stream",
        "image/jpeg": "application/octet-stream",
    },
    "post_hooks": [],
}
# How a generated module calls its route (openapi-python-client's `_get_kwargs`).
ROUTE = re.compile(r'"method": "(\w+)",\s*"url": "([^"]+)"')


@pytest.fixture
async def api(sqlite_runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads(sqlite_runtime.read_models)
    followers.start()
    async with TestClient(TestServer(create_app(Services(sqlite_runtime)))) as test_client:
        yield test_client
    followers.stop()


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Generates a client package from a document; yields the function that does it."""

    def generate(document: dict) -> tuple[ModuleType, str]:
        (tmp_path / "openapi.json").write_text(json.dumps(document))
        (tmp_path / "config.json").write_text(json.dumps(CONFIG))
        done = subprocess.run(
            [
                *(sys.executable, "-m", "openapi_python_client", "generate"),
                *("--path", str(tmp_path / "openapi.json")),
                *("--config", str(tmp_path / "config.json")),
                *("--meta", "none", "--output-path", str(tmp_path / PACKAGE)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        monkeypatch.syspath_prepend(str(tmp_path))
        return importlib.import_module(PACKAGE), output

    yield generate
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def functions_by_route(package: ModuleType) -> dict[tuple[str, str], ModuleType]:
    """(method, path) -> the generated module of that operation."""
    found = {}
    for source in sorted((Path(package.__file__).parent / "api").glob("*/*.py")):
        if source.name == "__init__.py":
            continue
        match = ROUTE.search(source.read_text())
        assert match, f"{source}: no route found in the generated module"
        tag = source.parent.name
        found[(match[1], match[2])] = importlib.import_module(
            f"{package.__name__}.api.{tag}.{source.stem}"
        )
    return found


async def test_every_operation_of_the_served_document_becomes_a_working_function(
    api, sqlite_runtime, generated
):
    document = await (await api.get("/api/openapi.json")).json()
    package, output = generated(document)
    assert "WARNING" not in output, output

    functions = functions_by_route(package)
    operations = {
        (method, path) for path, methods in document["paths"].items() for method in methods
    }
    assert set(functions) == operations
    for module in functions.values():
        assert callable(module.sync_detailed) and callable(module.asyncio_detailed)

    # The functions work: a template (its script typed, placeholders and all), a render
    # of it (the operation the generator used to drop), the typed history, the CSV.
    account = sqlite_runtime.app.open_account(plan="pro", credits=10)
    client = package.AuthenticatedClient(
        base_url=str(api.make_url("")).rstrip("/"),
        token=account.api_key,
        prefix="",
        auth_header_name="x-api-key",
        raise_on_unexpected_status=True,
    )
    models = package.models
    credits = await functions["get", "/api/credits"].asyncio(client=client)
    assert isinstance(credits, models.Credits) and credits.to_dict()["credits"] == 10
    script = {**TINY_SCRIPT, "scenes": [{**TINY_SCRIPT["scenes"][0], "background": "{{bg}}"}]}
    created = await functions["post", "/api/templates"].asyncio(
        client=client, body=models.NewTemplate.from_dict({"name": "Promo", "script": script})
    )
    assert isinstance(created, models.CreatedTemplate), created
    submitted = await functions["post", "/api/render/template"].asyncio(
        client=client,
        body=models.TemplateRenderRequest.from_dict(
            {"template_id": created.id, "variables": {"bg": "#FF0000"}}
        ),
    )
    assert isinstance(submitted, models.Submitted) and isinstance(submitted.job_id, UUID)
    history = await functions["get", "/api/jobs/{job_id}/events"].asyncio(
        client=client, job_id=submitted.job_id
    )
    assert isinstance(history, models.JobEvents)
    assert history.events[0].type_ == models.StoredJobEventType.SUBMITTED
    head = sqlite_runtime.app.recorder.max_notification_id()
    assert sqlite_runtime.ledger_runner.wait_for(head, timeout=10)
    csv = await functions["get", "/api/credits/ledger.csv"].asyncio(client=client)
    assert csv.splitlines()[0] == "seq,at,type,amount,balance_after,job_id,reason"
    assert [line.split(",")[2] for line in csv.splitlines()[1:]] == ["grant", "charge"]
