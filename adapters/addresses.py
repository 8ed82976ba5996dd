"""Which network addresses our servers may be sent to by a client's URL.

Media sources and webhook URIs come from clients; fetching or posting to them from
inside our network must never reach loopback, private, link-local or cloud metadata
addresses (SSRF). The check is on every address a host name resolves to, made right
before connecting. `allow_private=True` (setting `PHANTOMFLOW_ALLOW_PRIVATE_URLS=1`)
lifts it for tests and self-hosting, where the media server is on the same machine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

# Addresses no client URL may reach, beyond what `ipaddress` already calls private,
# loopback, link-local, multicast, reserved or unspecified.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})
_LOCAL_NAMES = _METADATA_HOSTS | {"localhost", "localhost.localdomain"}


class AddressRefused(OSError):
    """The URL points somewhere our servers must not connect to.

    An OSError, so that aiohttp reports it like any other failure to connect
    (`ClientConnectorError`, with this message)."""


def check_url(url: str, allow_private: bool = False) -> tuple[str, int]:
    """Validate an absolute http(s) URL; return (host, port). Raises AddressRefused.

    Refuses what can be refused without a DNS lookup: other schemes, credentials, and
    hosts that are a non-public IP literal or a well-known local name. Call it on every
    URL a request will go to, each redirect included (follow redirects yourself):
    aiohttp does not consult a resolver for an IP literal, so `PublicOnlyResolver`
    alone never sees `http://127.0.0.1/`.

    The host is judged as it will be connected to, not as it is spelt: the HTTP client's
    own form of it (IDNA: `１２７.０.０.１` is 127.0.0.1 to aiohttp), and a number the
    resolver reads as an IPv4 address in any of the forms inet_aton accepts
    (`2130706433`, `127.1`, `0x7f000001`, `017700000001`) as that address."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # `http://[::1`
        raise AddressRefused(f"the URL's host or port is malformed: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("URLs with credentials are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = URL(url).raw_host or ""
    except ValueError as error:
        raise AddressRefused(f"the URL's host or port is malformed: {error}") from None
    if not host:
        raise AddressRefused("the URL has no host")
    if not allow_private:
        if host.lower().rstrip(".") in _LOCAL_NAMES:
            raise AddressRefused(f"{parts.hostname} is not a public address")
        literal = ip_literal(host)
        if literal is not None and not is_public(literal):
            shown = parts.hostname if literal == parts.hostname else f"{parts.hostname} ({literal})"
            raise AddressRefused(f"{shown} is not a public address")
    return host, port


_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def ip_literal(host: str) -> str | None:
    """The IP address `host` stands for without any DNS lookup, in its usual form; None
    for a name.

    IPv4 as the C resolver reads it (inet_aton, which getaddrinfo tries first): one to
    four parts separated by dots, each decimal, octal (leading 0) or hex (0x), the last
    filling the bytes left, so `127.1`, `2130706433` and `0x7f.0.0.01` are all 127.0.0.1.
    A trailing dot is ignored (some resolvers accept it)."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    numbers = bare[:-1] if bare.endswith(".") else bare
    pieces = numbers.split(".")
    if not 1 <= len(pieces) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in pieces):
        return None
    values = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8 if p.startswith("0") else 10)
              for p in pieces]  # fmt: skip
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (4 - len(leading)):
        return None
    address = last
    for index, value in enumerate(leading):
        address += value << (8 * (3 - index))
    return str(ipaddress.IPv4Address(address))


def check_host(host: str, port: int, allow_private: bool = False) -> list[str]:
    """Resolve `host` and refuse it if any address is not public; return the addresses."""
    if host.lower().rstrip(".") in _METADATA_HOSTS and not allow_private:
        raise AddressRefused(f"{host} is a cloud metadata address")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise AddressRefused(f"cannot resolve {host}: {error.strerror}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise AddressRefused(f"{host} resolves to a non-public address ({address})")
    return addresses


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """An aiohttp resolver that refuses non-public addresses at connect time.

    Checking at resolution, inside the connection, means a host name cannot pass the
    check and then re-resolve to a private address (DNS rebinding). Use it with
    `aiohttp.TCPConnector(resolver=PublicOnlyResolver())` for every request whose URL
    came from a client, together with `check_url` on that URL (and on each redirect):
    aiohttp never asks the resolver about an IP literal.
    """

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.lower().rstrip(".") in _METADATA_HOSTS and not self.allow_private:
            raise AddressRefused(f"{host} is a cloud metadata address")
        results = await self._resolver.resolve(host, port, family)
        if not self.allow_private:
            for result in results:
                if not is_public(result["host"]):
                    raise AddressRefused(
                        f"{host} resolves to a non-public address ({result['host']})"
                    )
        return results

    async def close(self) -> None:
        await self._resolver.close()

    def __repr__(self) -> str:
        return f"PublicOnlyResolver(allow_private={self.allow_private})"
