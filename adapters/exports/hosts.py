"""The address policy of client URLs, applied to export hosts.

An integration names a host; connecting to it from inside our network must never reach
loopback, private, link-local or metadata addresses (unless
`PHANTOMFLOW_ALLOW_PRIVATE_URLS=1`). The host is resolved and every address checked
right before connecting. Protocols that do not verify the server's name (plain FTP,
SFTP, whose host key is pinned instead, plain SMTP) then connect to the checked
address itself, so a re-pointed name cannot slip past the check; TLS connections go to
the name, whose certificate is verified.
"""

from __future__ import annotations

from phantomflow.adapters.addresses import AddressRefused, check_host
from phantomflow.adapters.exports import ADDRESS_REFUSED, CONNECTION_FAILED, ExportError


def checked_address(host: str, port: int, allow_private: bool) -> str:
    """An address of `host` that the policy allows; ExportError(ADDRESS_REFUSED) if any
    of its addresses is refused."""
    try:
        addresses = check_host(host, port, allow_private=allow_private)
    except AddressRefused as refused:
        if str(refused).startswith("cannot resolve"):  # DNS may answer later
            raise ExportError(CONNECTION_FAILED, str(refused)) from None
        raise ExportError(ADDRESS_REFUSED, f"refused: {refused}", permanent=True) from None
    if not addresses:
        raise ExportError(ADDRESS_REFUSED, f"cannot resolve {host}", permanent=True)
    return addresses[0]
