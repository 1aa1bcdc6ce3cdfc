"""Upstream flag spellings and what kubeboot does with each: accepted, aliased or refused.

One table, two readers: ``docs/flags.md`` renders it (per upstream component, with the
reason), and ``tests/integration/cli/test_upstream_spellings.py`` runs every spelling
through the real command and checks its effect — a spelling added here without a test case
fails that test. The spellings are the ones of issue 15 and of the seed documents the
guides replay: the TLS-bootstrapping docs of Kubernetes 1.4-1.6, 1.7-1.8 and today, the
kubeadm join reference, and Krustlet's bootstrapping how-to.

Status: **accepted** — the upstream meaning (or, marked "no effect", accepted so a pasted
line runs, with the reason); **aliased** — an old name read as today's, with pflag's
deprecation warning; **refused** — exit 2 with a message, because kubeboot has no part that
could honour it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMPONENTS", "UPSTREAM_FLAGS", "UpstreamFlag"]

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kubelet", "kubeadm join", "Krustlet")


@dataclass(frozen=True, slots=True)
class UpstreamFlag:
    component: str
    spelling: str
    status: str  # accepted | aliased | refused
    command: str
    why: str


def _f(component: str, spelling: str, status: str, command: str, why: str) -> UpstreamFlag:
    return UpstreamFlag(component, spelling, status, command, why)


_API, _KCM, _KUBELET, _JOIN, _KRUSTLET = COMPONENTS
_S, _A, _J = "kubeboot server", "kubeboot agent", "kubeboot join"
_NO_PODS = "kubeboot agent is the kubelet's certificate side only: it runs no pods"

UPSTREAM_FLAGS: tuple[UpstreamFlag, ...] = (
    # kube-apiserver
    _f(_API, "--enable-bootstrap-token-auth=true", "accepted", _S,
       "bootstrap tokens authenticate (the default; =false turns them off)"),
    _f(_API, "--anonymous-auth=false", "accepted", _S,
       "anonymous requests get 401 (token discovery then needs --discovery-file)"),
    _f(_API, "--token-auth-file=FILENAME", "accepted", _S, "static token CSV"),
    _f(_API, "--client-ca-file=FILENAME", "accepted", _S, "CA bundle for client certificates"),
    _f(_API, "--authorization-mode=Node,RBAC", "accepted", _S, "Node, RBAC, AlwaysAllow"),
    _f(_API, "--tls-cert-file / --tls-private-key-file", "accepted", _S,
       "the serving pair instead of the one kubeboot issues"),
    _f(_API, "--secure-port=6443 --bind-address=0.0.0.0 --advertise-address=IP", "accepted", _S,
       "where to listen and what to publish"),
    _f(_API, "--etcd-servers= --etcd-cafile= --etcd-certfile= --etcd-keyfile= --etcd-prefix=",
       "accepted", _S, "etcd storage (with --storage-backend etcd3)"),
    _f(_API, "--watch-cache=false", "accepted", _S,
       "on by default: watches and consistent reads served from one cache in front of etcd"),
    _f(_API, "--v=2 / --logging-format=json", "accepted", _S, "klog verbosity, JSON logs"),
    _f(_API, "--service-account-key-file / --service-account-issuer", "accepted", _S,
       "ServiceAccount token verification keys (repeatable) and issuers (first one signs)"),
    _f(_API, "--service-account-signing-key-file=FILENAME", "accepted", _S,
       "the key that signs ServiceAccount tokens (default: generated <data-dir>/pki/sa.key)"),
    _f(_API, "--api-audiences= --service-account-max-token-expiration=", "accepted", _S,
       "the API's audiences (default: the issuers) and the TokenRequest duration cap"),
    _f(_API, "--enable-admission-plugins", "refused", _S,
       "no admission plugin chain to configure (the node restrictions kubeboot enforces are "
       "always on)"),
    _f(_API, "--requestheader-client-ca-file / --proxy-client-cert-file", "refused", _S,
       "no API aggregation"),
    # kube-controller-manager
    _f(_KCM, '--cluster-signing-cert-file="ca.crt" --cluster-signing-key-file="ca.key"',
       "accepted", _S, "the CA csrsigning signs with"),
    _f(_KCM, "--cluster-signing-duration=8760h", "accepted", _S,
       "longest validity of signed certificates (Go duration)"),
    _f(_KCM, "--experimental-cluster-signing-duration=8760h", "aliased", _S,
       "removed upstream in 1.25; read as --cluster-signing-duration with a warning"),
    _f(_KCM, '--insecure-experimental-approve-all-kubelet-csrs-for-group="system:bootstrappers"',
       "accepted", _S,
       "the 1.4-1.6 alpha auto-approval: kubelet client CSRs of the group are approved without "
       "a SubjectAccessReview; INSECURE, warned at start (removed upstream in 1.7)"),
    _f(_KCM, "--controllers=*,bootstrapsigner,tokencleaner", "accepted", _S,
       "kube-controller-manager's syntax and kubeadm's default"),
    _f(_KCM, "--leader-elect=false", "accepted", _S, "controllers run without a Lease"),
    _f(_KCM, "--feature-gates=RotateKubeletServerCertificate=true", "accepted", _S,
       "no effect on the control plane: upstream's controller manager approves no serving "
       "CSRs since 1.9"),
    _f(_KCM, "--cluster-signing-kubelet-client-cert-file (and the other per-signer pairs)",
       "accepted", _S, "a CA per signer"),
    _f(_KCM, "--kubeconfig / --authentication-kubeconfig / --authorization-kubeconfig",
       "refused", _S,
       "the controllers run inside kubeboot server; `kubeboot approver --kubeconfig` runs an "
       "approver against any cluster"),
    _f(_KCM, "--use-service-account-credentials=true", "refused", _S,
       "always on: each controller acts as its own service account"),
    # kubelet
    _f(_KUBELET, '--bootstrap-kubeconfig="/var/lib/kubelet/bootstrap-kubeconfig"', "accepted",
       _A, "bootstrap credential used when --kubeconfig is missing or invalid"),
    _f(_KUBELET, '--kubeconfig="/var/lib/kubelet/kubeconfig"', "accepted", _A,
       "the node's kubeconfig, written after bootstrap"),
    _f(_KUBELET, '--experimental-bootstrap-kubeconfig="/path/to/bootstrap/kubeconfig"',
       "aliased", _A,
       "the 1.4-1.6 name (deprecated in 1.7); read as --bootstrap-kubeconfig with a warning"),
    _f(_KUBELET, "--cert-dir=/var/lib/kubelet/pki", "accepted", _A,
       "kubelet-client-*.pem and kubelet-server-*.pem, the kubelet's layout"),
    _f(_KUBELET, "--rotate-certificates", "accepted", _A, "client certificate rotation"),
    _f(_KUBELET, "--rotate-certificates=true", "accepted", _A, "client certificate rotation"),
    _f(_KUBELET, "--rotate-server-certificates", "accepted", _A,
       "serving certificate from a CSR, renewed"),
    _f(_KUBELET, "--rotate-server-certificates=true", "accepted", _A,
       "serving certificate from a CSR, renewed"),
    _f(_KUBELET,
       "--feature-gates=RotateKubeletClientCertificate=true,RotateKubeletServerCertificate=true",
       "accepted", _A,
       "RotateKubeletServerCertificate=false turns the serving CSR off; "
       "RotateKubeletClientCertificate is accepted with a line (removed upstream)"),
    _f(_KUBELET, "--node-ip=10.0.0.1,fd00::1", "accepted", _A,
       "dual-stack pair; an entry that is not an IP is an error (the kubelet ignores it)"),
    _f(_KUBELET, "--hostname-override=NAME", "accepted", _A, "the node name"),
    _f(_KUBELET, "--config=kubelet.yaml", "accepted", _A,
       "KubeletConfiguration v1beta1: rotateCertificates, serverTLSBootstrap, tlsCertFile, "
       "tlsPrivateKeyFile, featureGates, logging used; others ignored with a line each"),
    _f(_KUBELET, "--tls-cert-file= --tls-private-key-file=", "accepted", _A,
       "a given serving pair, checked at start, no serving CSR"),
    _f(_KUBELET, "--address=0.0.0.0 --port=10250", "accepted", _A,
       "no effect: the agent serves no kubelet API"),
    _f(_KUBELET, "-v 2 / --logging-format=json", "accepted", _A, "klog verbosity, JSON logs"),
    _f(_KUBELET, "--container-runtime-endpoint / --cgroup-driver / --pod-infra-container-image",
       "refused", _A, _NO_PODS),
    _f(_KUBELET, "--node-labels / --register-with-taints", "refused", _A,
       "the agent registers the Node with its addresses only"),
    # kubeadm join
    _f(_JOIN, "kubeadm join 10.0.0.1:6443 --token T --discovery-token-ca-cert-hash sha256:H",
       "accepted", _J, "token discovery with a CA pin, then the TLS bootstrap"),
    _f(_JOIN, "--discovery-token=T --tls-bootstrap-token=T2", "accepted", _J,
       "separate tokens for discovery and for the bootstrap kubeconfig"),
    _f(_JOIN, "--discovery-token-ca-cert-hash=sha256:A,sha256:B", "accepted", _J,
       "several pins, repeated or comma-separated"),
    _f(_JOIN, "--discovery-token-unsafe-skip-ca-verification", "accepted", _J,
       "no CA pin: only the token's JWS binds cluster-info"),
    _f(_JOIN, "--discovery-file=FILE|https://URL", "accepted", _J, "file or HTTPS discovery"),
    _f(_JOIN, "--node-name=NAME", "accepted", _J, "the node name"),
    _f(_JOIN, "--ignore-preflight-errors=all", "accepted", _J,
       "validated as kubeadm's; kubeboot join runs no preflight checks"),
    _f(_JOIN, "--dry-run", "accepted", _J,
       "discovery is checked (anonymous GETs), nothing written, no CSR"),
    _f(_JOIN, "--config=join.yaml", "accepted", _J,
       "JoinConfiguration v1beta4: discovery, tlsBootstrapToken, nodeRegistration (name, "
       "kubeletExtraArgs, ignorePreflightErrors), dryRun, timeouts"),
    _f(_JOIN, "--cri-socket=unix:///run/containerd/containerd.sock", "accepted", _J,
       "no effect: no container runtime"),
    _f(_JOIN, "--v=5", "accepted", _J, "klog verbosity"),
    _f(_JOIN, "--control-plane", "refused", _J,
       "kubeboot join joins worker nodes; another control-plane instance is a `kubeboot "
       "server` replica (docs/replicas.md)"),
    _f(_JOIN, "--certificate-key / --apiserver-advertise-address / --apiserver-bind-port",
       "refused", _J, "control-plane join only"),
    _f(_JOIN, "--skip-phases / --patches", "refused", _J,
       "kubeboot join has no kubeadm phases or static Pod manifests to patch"),
    # Krustlet
    _f(_KRUSTLET, "KUBECONFIG=~/.krustlet/config/kubeconfig", "accepted", _A,
       "where the node kubeconfig is written and read (never over another identity's)"),
    _f(_KRUSTLET, "--bootstrap-file /path/to/bootstrap.conf", "accepted", _A,
       "the bootstrap kubeconfig; selects Krustlet mode"),
    _f(_KRUSTLET, "--cert-file / --private-key-file", "accepted", _A,
       "where the serving pair is written (defaults $KRUSTLET_DATA_DIR/config/krustlet.crt|"
       ".key); a valid pair there skips the serving CSR"),
    _f(_KRUSTLET, "--hostname NAME", "accepted", _A,
       "the serving CSR is <hostname>-tls, with DNS:<hostname>"),
    _f(_KRUSTLET, "--port 3000 / --addr 0.0.0.0", "accepted", _A,
       "no effect: the agent serves no API"),
    _f(_KRUSTLET, "--node-ip / --node-name / --data-dir, KRUSTLET_DATA_DIR", "accepted", _A,
       "as Krustlet's"),
    _f(_KRUSTLET, "--max-pods / --node-labels / --x-allow-local-modules", "refused", _A,
       _NO_PODS),
)  # fmt: skip
