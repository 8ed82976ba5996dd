"""Client URLs never reach loopback, private, link-local or metadata addresses."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.addresses import (
    AddressRefused,
    PublicOnlyResolver,
    check_host,
    check_url,
    ip_literal,
)
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain.templates import template_ref
from tests.conftest import TINY_SCRIPT


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1",
     "fe80::1", "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    with pytest.raises(AddressRefused):
        check_host(address, 80)


def test_public_addresses_pass():
    assert check_host("93.184.215.14", 443) == ["93.184.215.14"]


def test_loopback_is_allowed_only_when_the_setting_says_so():
    assert check_host("127.0.0.1", 80, allow_private=True) == ["127.0.0.1"]


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a", "file:///etc/passwd", "http:///nohost", "http://u:p@example.com/"],
)
def test_only_plain_http_and_https_urls_are_accepted(url):
    with pytest.raises(AddressRefused):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://example.com:s/", "http://example.com:99999/", "http://[::1"]
)
def test_a_malformed_port_or_ipv6_host_is_refused_not_raised(url):
    # Found by Schemathesis: `http://host:s` matched the URL pattern, then urlsplit's
    # port raised ValueError, and a submission with that webhook_uri answered 500.
    with pytest.raises(AddressRefused, match="malformed"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/x", "http://[::1]/", "http://169.254.169.254/latest/meta-data",
     "https://10.0.0.8/hook", "http://localhost/", "http://metadata.google.internal/"],
)  # fmt: skip
def test_literal_and_local_hosts_are_refused_before_any_connection(url):
    # aiohttp never asks a resolver about an IP literal: check_url must catch these.
    with pytest.raises(AddressRefused):
        check_url(url)
    assert check_url(url, allow_private=True)[0]


async def test_the_aiohttp_resolver_refuses_a_local_server_at_connect_time():
    app = web.Application()

    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/", secret)
    async with TestServer(app, host="127.0.0.1") as server:
        url = f"http://localhost:{server.port}/"
        refusing = aiohttp.TCPConnector(resolver=PublicOnlyResolver())
        async with aiohttp.ClientSession(connector=refusing) as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(url)
        allowing = aiohttp.TCPConnector(resolver=PublicOnlyResolver(allow_private=True))
        async with aiohttp.ClientSession(connector=allowing) as session, session.get(url) as got:
            assert await got.text() == "secret"


@pytest.mark.parametrize("where", ["render", "template request", "template script"])
async def test_a_webhook_to_a_metadata_address_is_refused_on_every_submission_route(where, runtime):
    metadata = "http://169.254.169.254/latest/meta-data"
    account = runtime.app.open_account(plan="pro", credits=10)
    script = (
        {**TINY_SCRIPT, "webhook_uri": metadata} if where != "template request" else TINY_SCRIPT
    )
    if where == "render":
        path, body = "/api/render", script
    else:
        template = runtime.app.create_template(account.account_id, "t", script, False)
        path = "/api/render/template"
        body = {"template_id": template_ref(template.template.id), "variables": {}}
        if where == "template request":
            body["webhook_uri"] = metadata
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        response = await client.post(path, json=body, headers={"x-api-key": account.api_key})
        error = (await response.json())["error"]
    assert response.status == 400
    assert (error["code"], error["path"]) == ("SCHEMA_VALIDATION_ERROR", "webhook_uri")
    assert "refused" in error["message"]
    assert runtime.app.get_account(account.account_id).balance == 10


# 127.0.0.1, 10.0.0.1 and 169.254.169.254 as the resolver also reads them, and as aiohttp
# spells a host after IDNA (fullwidth digits, ideographic full stops).
DISGUISED = [
    "http://2130706433/", "http://127.1/", "http://0x7f000001/", "http://017700000001/",
    "http://0x7f.1/", "http://0177.0.0.1/", "http://127.0.0.1./", "http://0/",
    "http://10.1/", "http://0xa.0.0.1/", "http://2852039166/latest/meta-data",
    "http://[::ffff:7f00:1]/", "http://１２７.０.０.１/", "http://127。0。0。1/",
]  # fmt: skip


@pytest.mark.parametrize("url", DISGUISED)
def test_an_address_in_disguise_is_refused_as_the_address_the_resolver_reads(url):
    with pytest.raises(AddressRefused, match="is not a public address"):
        check_url(url)


@pytest.mark.parametrize(
    ("host", "address"),
    [("2130706433", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
     ("017700000001", "127.0.0.1"), ("10.0x10.1", "10.16.0.1"), ("1572394766", "93.184.215.14"),
     ("08.0.0.1", None), ("1.2.3.4.5", None), ("4294967296", None), ("0x", None),
     ("example.com", None), ("1e3", None)],
)  # fmt: skip
def test_numeric_hosts_are_read_as_inet_aton_reads_them(host, address):
    assert ip_literal(host) == address
    if address is not None:  # the C resolver agrees
        assert socket.inet_ntoa(socket.inet_aton(host)) == address


def test_a_public_address_in_another_spelling_is_still_accepted():
    assert check_url("http://1572394766/hook") == ("1572394766", 80)


@pytest.mark.parametrize("url", DISGUISED)
async def test_a_webhook_to_an_address_in_disguise_is_refused_at_submission(url, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        response = await client.post(
            "/api/render",
            json={**TINY_SCRIPT, "webhook_uri": url},
            headers={"x-api-key": account.api_key},
        )
        error = (await response.json())["error"]
    assert (response.status, error["code"], error["path"]) == (
        400,
        "SCHEMA_VALIDATION_ERROR",
        "webhook_uri",
    )
    assert "not a public address" in error["message"]
    assert runtime.app.get_account(account.account_id).balance == 10
