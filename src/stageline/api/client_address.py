"""The client address that failed authentications are counted against.

It is the TCP peer's address or, behind a reverse proxy that the server trusts (uvicorn's
`FORWARDED_ALLOW_IPS`, loopback by default), the client address that proxy forwarded in
`X-Forwarded-For`. IPv6 addresses count per /64 network: a single host usually holds a whole
/64, and would otherwise have endless fresh addresses to fail from.
"""

import ipaddress

from starlette.types import Scope

IPV6_NETWORK_BITS = 64
UNKNOWN = "unknown"


def client_address(scope: Scope) -> str:
    """`203.0.113.7`, `2001:db8:1:2::/64`, or the peer's name as the server gave it."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_NETWORK_BITS), strict=False))
    return str(address)
