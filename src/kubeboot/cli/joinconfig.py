"""``kubeboot join --config``: kubeadm's ``JoinConfiguration`` (``kubeadm.k8s.io/v1beta4``).

Read as kubeadm 1.37 reads it (``cmd/kubeadm/app/util/config/joinconfiguration.go``): the
file may hold several documents; the ``JoinConfiguration`` one is used and every other kind
is ignored with kubeadm's warning; older API versions get kubeadm's "old API spec" error.
Fields (upstream's ``cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go``) and what they do here:

* ``discovery.bootstrapToken`` (``token``, ``apiServerEndpoint``, ``caCertHashes``,
  ``unsafeSkipCAVerification``), ``discovery.file.kubeConfigPath``,
  ``discovery.tlsBootstrapToken``: discovery and the TLS bootstrap, as the flags;
* ``nodeRegistration.name``: the node name; ``nodeRegistration.kubeletExtraArgs`` (a list of
  ``{name, value}``): kubelet flags, applied to the agent as if given on its command line
  (those the agent does not have are ignored with one line each);
  ``nodeRegistration.ignorePreflightErrors``: joined with the flag's;
* ``dryRun``; ``timeouts.discovery`` and ``timeouts.tlsBootstrap`` (Go durations);
* ``controlPlane`` is refused: kubeboot joins worker nodes only;
* the rest (``caCertPath``, ``criSocket``, ``taints``, ``skipPhases``, ``patches``, other
  timeouts…) is ignored with one line each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from kubeboot.cli.configfile import ConfigFileError, Document, load_documents

__all__ = ["API_VERSION", "KIND", "JoinFile", "load_join_config"]

API_VERSION = "kubeadm.k8s.io/v1beta4"
KIND = "JoinConfiguration"
_OLD_VERSIONS = {
    "kubeadm.k8s.io/v1alpha1": "v1.11",
    "kubeadm.k8s.io/v1alpha2": "v1.12",
    "kubeadm.k8s.io/v1alpha3": "v1.14",
    "kubeadm.k8s.io/v1beta1": "v1.15",
    "kubeadm.k8s.io/v1beta2": "v1.22",
    "kubeadm.k8s.io/v1beta3": "v1.36",
}
_TOP = ("dryRun", "nodeRegistration", "caCertPath", "discovery", "controlPlane", "skipPhases",
        "patches", "timeouts")  # fmt: skip
_NODE_REGISTRATION = ("name", "criSocket", "taints", "kubeletExtraArgs",
                      "ignorePreflightErrors", "imagePullPolicy", "imagePullSerial")  # fmt: skip
_TIMEOUTS = ("controlPlaneComponentHealthCheck", "kubeletHealthCheck", "kubernetesAPICall",
             "etcdAPICall", "tlsBootstrap", "discovery", "upgradeManifests")  # fmt: skip
_WHY = "kubeboot join runs no container runtime, control plane or kubeadm phases"


@dataclass
class JoinFile:
    """What a JoinConfiguration sets (None or empty: not set)."""

    path: Path
    endpoint: str | None = None
    discovery_token: str | None = None
    ca_cert_hashes: list[str] = field(default_factory=list)
    unsafe_skip_ca_verification: bool = False
    discovery_file: str | None = None
    tls_bootstrap_token: str | None = None
    node_name: str | None = None
    kubelet_extra_args: list[tuple[str, str]] = field(default_factory=list)
    ignore_preflight_errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    discovery_timeout: dt.timedelta | None = None
    tls_bootstrap_timeout: dt.timedelta | None = None
    notes: list[str] = field(default_factory=list)


def load_join_config(path: Path) -> JoinFile:
    """Read ``path``; raises :class:`ConfigFileError` with a one-line reason."""
    out = JoinFile(path)
    chosen = None
    for index, data in load_documents(path):
        version, kind = str(data.get("apiVersion", "")), str(data.get("kind", ""))
        if kind != KIND:
            out.notes.append(
                f"[config] WARNING: Ignored configuration document {index} with "
                f"GroupVersionKind {version}, Kind={kind}"
            )
            continue
        if version in _OLD_VERSIONS:
            raise ConfigFileError(
                f'{path}: your configuration file uses an old API spec: "{version}" '
                f'(kind: "{kind}"). Please use kubeadm {_OLD_VERSIONS[version]} instead and run '
                "'kubeadm config migrate --old-config old-config-file --new-config "
                "new-config-file', which will write the new, similar spec using a newer API "
                "version."
            )
        if version != API_VERSION:
            raise ConfigFileError(f'{path}: unknown apiVersion "{version}" for {KIND}')
        chosen = Document(path, data)
    if chosen is None:
        raise ConfigFileError(f"{path}: no {KIND} found in the supplied config")
    _read(chosen, out)
    return out


def _read(doc: Document, out: JoinFile) -> None:
    out.dry_run = bool(doc.get_bool("dryRun"))
    if doc.child("controlPlane") is not None:
        raise ConfigFileError(
            f"{doc.path}: controlPlane: kubeboot join joins worker nodes only (no control-plane "
            "instance is created); remove the controlPlane section"
        )
    discovery = doc.child("discovery")
    if discovery is not None:
        out.tls_bootstrap_token = discovery.get_str("tlsBootstrapToken")
        token = discovery.child("bootstrapToken")
        if token is not None:
            out.discovery_token = token.get_str("token")
            out.endpoint = token.get_str("apiServerEndpoint")
            out.ca_cert_hashes = token.get_strings("caCertHashes") or []
            out.unsafe_skip_ca_verification = bool(token.get_bool("unsafeSkipCAVerification"))
            out.notes += token.leftovers((), "")
        file = discovery.child("file")
        if file is not None:
            out.discovery_file = file.get_str("kubeConfigPath")
            out.notes += file.leftovers((), "")
        out.notes += discovery.leftovers((), "")
    registration = doc.child("nodeRegistration")
    if registration is not None:
        out.node_name = registration.get_str("name")
        out.ignore_preflight_errors = registration.get_strings("ignorePreflightErrors") or []
        for arg in registration.objects("kubeletExtraArgs") or []:
            name, value = arg.get_str("name"), arg.get_str("value")
            if not name:
                raise ConfigFileError(f"{doc.path}: {arg.prefix}name: required")
            out.kubelet_extra_args.append((name, value or ""))
        out.notes += registration.leftovers(_NODE_REGISTRATION, _WHY)
    timeouts = doc.child("timeouts")
    if timeouts is not None:
        out.discovery_timeout = timeouts.get_duration("discovery")
        out.tls_bootstrap_timeout = timeouts.get_duration("tlsBootstrap")
        out.notes += timeouts.leftovers(_TIMEOUTS, _WHY)
    out.notes += doc.leftovers(_TOP, _WHY)
