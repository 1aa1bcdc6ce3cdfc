"""At every start, bring what kubeboot generated in line with the current flags.

Why: a restart on another address (``--secure-port``, ``--advertise-address``,
``--bind-address``, ``--tls-san``) otherwise leaves ``admin.conf`` and
``kube-public/cluster-info`` pointing at the old URL and the serving certificate without the
new names, and ``kubeboot join`` then "discovers" a cluster at a dead port.

What is reconciled, each change logged:

* the serving certificate kubeboot made (``pki/apiserver.crt``): reissued (new key, same CA)
  when it lacks a name or address the server is now reached by;
* ``admin.conf``'s ``server``: rewritten to this server's URL when it points at this machine
  (an address of this host, or ``localhost``) — kubeboot wrote it so; a URL elsewhere (an
  operator pointed it at a load balancer, docs/replicas.md) is left alone, with a warning;
* ``cluster-info``'s ``server`` (and CA): updated to the advertised URL, the signatures of
  the old content removed; the bootstrapsigner then signs the new content for every token.

Files the user supplied (``--tls-cert-file``) are never changed: a missing name is a warning
that says which flag to fix.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from cryptography import x509

from kubeboot.client.interface import ApiClient
from kubeboot.clock import Clock
from kubeboot.clusterinit import cluster_info_configmap
from kubeboot.pki.authority import CertificateAuthority, load_certificate_pem
from kubeboot.pki.cluster import split_sans
from kubeboot.pki.renewal import admin_conf_server, renew_serving, rewrite_admin_conf
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "is_this_host",
    "missing_sans",
    "reconcile_admin_conf",
    "reconcile_cluster_info",
    "reconcile_serving_certificate",
]

log = logging.getLogger("kubeboot.server.reconcile")

_FOUND = find_resource("", "v1", "configmaps")
assert _FOUND is not None
_CONFIGMAPS: ResourceInfo = _FOUND


def is_this_host(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost`` or an address bound here."""
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))  # only an address of this host can be bound
        except OSError:
            return False
    return True


def missing_sans(cert: x509.Certificate, wanted: Sequence[str]) -> list[str]:
    """The names and addresses of ``wanted`` that ``cert`` does not carry."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_dns = {d.lower() for d in san.get_values_for_type(x509.DNSName)}
        have_ips = set(san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        have_dns, have_ips = set(), set()
    dns, ips = split_sans(wanted)
    missing = [d for d in dns if d.lower() not in have_dns]
    missing += [str(ip) for ip in ips if ip not in have_ips]
    return list(dict.fromkeys(missing))


def reconcile_serving_certificate(
    cert_file: Path,
    key_file: Path,
    *,
    generated: bool,
    wanted: Sequence[str],
    ca: CertificateAuthority,
    clock: Clock,
) -> bool:
    """Reissue a generated serving certificate that lacks a wanted SAN; True if reissued."""
    cert = load_certificate_pem(cert_file.read_bytes())
    missing = missing_sans(cert, wanted)
    if not missing:
        return False
    if not generated:
        log.warning(
            "the serving certificate %s (--tls-cert-file) does not name %s, which clients "
            "may use to reach this server; issue one that does, or drop the --tls-san / "
            "--advertise-address that asks for it",
            cert_file,
            ", ".join(missing),
        )
        return False
    dns, ips = split_sans([*_names(cert), *wanted])
    renew_serving(ca, cert_file, key_file, clock, dns_names=dns, ips=ips)
    log.info(
        "reissued the serving certificate %s: it did not name %s (the flags changed)",
        cert_file,
        ", ".join(missing),
    )
    return True


def _names(cert: x509.Certificate) -> list[str]:
    """The current SANs that still apply: loopback and DNS names (old addresses are dropped)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    kept = [str(d) for d in san.get_values_for_type(x509.DNSName)]
    kept += [str(ip) for ip in san.get_values_for_type(x509.IPAddress) if ip.is_loopback]
    return kept


def reconcile_admin_conf(path: Path, url: str) -> bool:
    """Point admin.conf at ``url`` if it points at this machine elsewhere; True if changed."""
    current = admin_conf_server(path)
    if current is None or current == url:
        return False
    host = urlsplit(current).hostname or ""
    if not is_this_host(host):
        log.warning(
            "%s points at %s, not at this server (%s); left as it is (edited by hand, e.g. for a "
            "load balancer?)",
            path,
            current,
            url,
        )
        return False
    with contextlib.suppress(yaml.YAMLError):
        rewrite_admin_conf(path, server=url)
        log.info("admin.conf: server changed from %s to %s", current, url)
        return True
    return False


async def reconcile_cluster_info(client: ApiClient, server: str, ca_pem: bytes) -> bool:
    """Make cluster-info's kubeconfig name ``server`` and this CA; True if it was updated."""
    want = cluster_info_configmap(server, ca_pem)["data"][bt.KUBECONFIG_KEY]
    for _ in range(5):
        try:
            current = await client.get(
                _CONFIGMAPS, bt.CLUSTER_INFO_CONFIGMAP, bt.CLUSTER_INFO_NAMESPACE
            )
        except NotFound:
            return False  # init creates it
        data = dict(current.get("data") or {})
        have = data.get(bt.KUBECONFIG_KEY, "")
        if have == want:
            return False
        # The signatures are of the old content: drop them, so a node that discovers before
        # the bootstrapsigner has signed the new content retries ("no signature yet")
        # instead of seeing a signature that does not verify.
        data = {k: v for k, v in data.items() if not k.startswith(bt.JWS_SIGNATURE_KEY_PREFIX)}
        data[bt.KUBECONFIG_KEY] = want
        current["data"] = data
        try:
            await client.update(_CONFIGMAPS, current, bt.CLUSTER_INFO_NAMESPACE)
        except Conflict:
            continue
        log.info(
            "kube-public/cluster-info updated for server %s (was %s)",
            server,
            _kubeconfig_server(have) or "unreadable",
        )
        return True
    log.warning("kube-public/cluster-info kept changing; not reconciled on this start")
    return False


def _kubeconfig_server(text: str) -> str | None:
    try:
        doc = yaml.safe_load(text)
        return str(doc["clusters"][0]["cluster"]["server"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None
