"""``kubeboot ca hash``: the ``sha256:`` pin(s) of the cluster CA (node-facts §3.5).

The pin is what ``kubeboot join --discovery-token-ca-cert-hash`` (and kubeadm's) checks. It
is computed by :func:`kubeboot.pki.pins.spki_pin`, from one of three sources:

* ``--ca-file``: a PEM file (``<data-dir>/pki/ca.crt``);
* the kubeconfig's current cluster (``certificate-authority`` or ``-data``), the default;
* ``--cluster-info``: the CA published in ``kube-public/cluster-info``, read through the
  kubeconfig's (verified) connection, which is what joining nodes will see.

A bundle yields one pin per certificate, one per line, in file order.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml
from cryptography import x509

from kubeboot.agent.kubeconfigs import ca_pem_of
from kubeboot.cli.commandline import UpstreamGroup
from kubeboot.cli.options import CommandError, KubeconfigRef, kubeconfig_options, run_api
from kubeboot.client.http import HttpApiClient
from kubeboot.pki.pins import spki_pin
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import find_resource

__all__ = ["ca", "pins_of"]


def pins_of(pem: bytes, source: str) -> list[str]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise CommandError(f"{source} does not hold a PEM certificate: {e}") from e
    return [spki_pin(c) for c in certs]


async def _cluster_info_ca(client: HttpApiClient) -> bytes:
    res = find_resource("", "v1", "configmaps")
    assert res is not None
    cm = await client.get(res, bt.CLUSTER_INFO_CONFIGMAP, bt.CLUSTER_INFO_NAMESPACE)
    text = (cm.get("data") or {}).get(bt.KUBECONFIG_KEY) or ""
    conf = yaml.safe_load(text) if text else None
    clusters = (conf or {}).get("clusters") or []
    if not clusters:
        raise CommandError(
            "kube-public/cluster-info has no kubeconfig with a cluster; run `kubeboot init`"
        )
    pem = ca_pem_of(clusters[0].get("cluster") or {})
    if not pem:
        raise CommandError("the cluster in kube-public/cluster-info carries no CA data")
    return pem


@click.group(cls=UpstreamGroup)
def ca() -> None:
    """Inspect the cluster certificate authority.

    \b
    Example:
      kubeboot ca hash --ca-file ./kubeboot-data/pki/ca.crt
    """


@ca.command()
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM file with the CA certificate(s); no server contact.",
)
@click.option(
    "--cluster-info",
    is_flag=True,
    help="Hash the CA published in kube-public/cluster-info instead of the kubeconfig's.",
)
@kubeconfig_options
def hash(
    ca_file: Path | None, cluster_info: bool, kubeconfig: Path | None, context: str | None
) -> None:
    """Print the sha256:<hex> pin of the CA public key, as --discovery-token-ca-cert-hash takes.

    \b
    Example:
      kubeboot join 10.0.0.1:6443 --token "$TOKEN" \\
        --discovery-token-ca-cert-hash "$(kubeboot ca hash)"
    """
    if ca_file is not None and cluster_info:
        raise click.UsageError("give either --ca-file or --cluster-info, not both")
    if ca_file is not None:
        pins = pins_of(ca_file.read_bytes(), str(ca_file))
    elif cluster_info:
        kube = KubeconfigRef(kubeconfig, context)
        pins = pins_of(run_api(kube, _cluster_info_ca), "kube-public/cluster-info")
    else:
        kube = KubeconfigRef(kubeconfig, context)
        pins = pins_of(kube.ca_pem("there is no CA to hash"), "the kubeconfig's CA")
    for pin in pins:
        click.echo(pin)
