"""Which source addresses may make unauthenticated requests (``--anonymous-allowed-cidrs``).

Upstream's bootstrap-token discovery design suggests answering anonymous requests only from
the networks nodes join from (the RFC 1918 ranges, for example). An empty list means every
address may, which is kube-apiserver's behaviour. Parsing is strict about syntax and tells
which entry is wrong; an address that cannot be parsed (an empty peer, a Unix socket) is
outside every network, so the check fails closed. IPv4-mapped IPv6 peers
(``::ffff:10.0.0.1`` on a dual-stack socket) are matched as the IPv4 address they carry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["RFC1918_AND_LOOPBACK", "SourceNetworks"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A documented example value, not a default (the default is "every address").
RFC1918_AND_LOOPBACK = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128")


class SourceNetworks:
    """A set of CIDRs; :meth:`allows` answers for one peer address."""

    def __init__(self, cidrs: Sequence[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(
                    f'"{cidr}" is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8): {exc}'
                ) from None
        self.networks = tuple(networks)

    @property
    def unrestricted(self) -> bool:
        return not self.networks

    def allows(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks) or "any address"
