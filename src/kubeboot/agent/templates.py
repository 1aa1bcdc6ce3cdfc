"""What the agent asks for: subject, SANs, usages and signer of its two certificates.

Client (node-facts §1.5): ``CN=system:node:<name>``, ``O=system:nodes``, no SANs, signer
``kube-apiserver-client-kubelet``. Serving (§2.6): the same subject, DNS and IP SANs from the
Node's ``status.addresses`` (de-duplicated, sorted), signer ``kubelet-serving``, and no
request at all until there is at least one IP (kubernetes#125813). Usages depend on the key
type: key encipherment only for RSA (kubernetes#111660), in the orders the kubelet sends
them, because the order feeds the CSR name digest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubeboot.agent.constants import CLIENT_SIGNER, NODES_GROUP, SERVING_SIGNER, node_common_name
from kubeboot.pki.keys import PrivateKey
from kubeboot.pki.usages import (
    USAGE_CLIENT_AUTH,
    USAGE_DIGITAL_SIGNATURE,
    USAGE_KEY_ENCIPHERMENT,
    USAGE_SERVER_AUTH,
)

__all__ = [
    "CertificateTemplate",
    "IPAddress",
    "client_template",
    "serving_sans",
    "serving_template",
    "template_mismatch",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CertificateTemplate:
    signer: str
    common_name: str
    organizations: tuple[str, ...]
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()

    def usages(self, key: PrivateKey) -> list[str]:
        rsa_key = isinstance(key, rsa.RSAPrivateKey)
        if self.signer == CLIENT_SIGNER:
            extra = [USAGE_CLIENT_AUTH, USAGE_KEY_ENCIPHERMENT] if rsa_key else [USAGE_CLIENT_AUTH]
            return [USAGE_DIGITAL_SIGNATURE, *extra]
        middle = [USAGE_KEY_ENCIPHERMENT] if rsa_key else []
        return [USAGE_DIGITAL_SIGNATURE, *middle, USAGE_SERVER_AUTH]


def client_template(node_name: str) -> CertificateTemplate:
    return CertificateTemplate(CLIENT_SIGNER, node_common_name(node_name), (NODES_GROUP,))


def serving_sans(
    addresses: Iterable[Mapping[str, Any]],
) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """DNS names and IPs from ``Node.status.addresses``, as the kubelet picks them."""
    dns: set[str] = set()
    ips: set[IPAddress] = set()
    for entry in addresses:
        kind, value = str(entry.get("type") or ""), str(entry.get("address") or "")
        if not value:
            continue
        ip = _parse_ip(value)
        if kind == "Hostname":
            if ip is None:
                dns.add(value)
            else:
                ips.add(ip)
        elif kind in ("ExternalDNS", "InternalDNS"):
            dns.add(value)
        elif kind in ("InternalIP", "ExternalIP") and ip is not None:
            ips.add(ip)
    return tuple(sorted(dns)), tuple(sorted(ips, key=str))


def serving_template(
    node_name: str, addresses: Iterable[Mapping[str, Any]]
) -> CertificateTemplate | None:
    """The serving request, or None while the node has no IP address to put in it."""
    dns, ips = serving_sans(addresses)
    if not ips:
        return None
    return CertificateTemplate(
        SERVING_SIGNER, node_common_name(node_name), (NODES_GROUP,), dns, ips
    )


def template_mismatch(cert: x509.Certificate, template: CertificateTemplate) -> str | None:
    """Why ``cert`` does not serve ``template`` (missing CN, O, DNS or IP), or None.

    Extra names in the certificate are fine, as upstream: only missing ones force a new
    request (node-facts §2.6).
    """
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [template.common_name]:
        return f"common name {cns} is not {template.common_name!r}"
    orgs = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    missing_orgs = set(template.organizations) - orgs
    if missing_orgs:
        return f"organization {sorted(missing_orgs)} missing"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_dns = set(san.get_values_for_type(x509.DNSName))
        have_ips = set(san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        have_dns, have_ips = set(), set()
    missing_dns = set(template.dns_names) - have_dns
    if missing_dns:
        return f"DNS names {sorted(missing_dns)} missing"
    missing_ips = set(template.ip_addresses) - have_ips
    if missing_ips:
        return f"IP addresses {sorted(str(i) for i in missing_ips)} missing"
    return None


def _parse_ip(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
