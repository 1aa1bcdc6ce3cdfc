"""A real kubelet v1.37.2 on kubeboot: it bootstraps, serves TLS, rotates, and lives.

The long test runs one kubelet against kubeboot and the same kubelet against the real control
plane side by side, both with a 3-minute ``--cluster-signing-duration``, for five minutes:
the bootstrap-token flow of ``docs/guides/bootstrap-token.md`` (a token in the group
``system:bootstrappers:worker`` and the guide's bindings), ``serverTLSBootstrap: true`` with
the serving CSRs approved by real ``kubectl certificate approve``. On kubeboot the kubelet must
never restart or log a fatal error, rotate both certificates, serve TLS with its current
serving certificate, keep renewing its Lease and post Events; and no request of the kubelet
may be refused by kubeboot that kube-apiserver answered (both audit logs, compared).

The static-token flow of ``docs/guides/static-token.md`` is the short second test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.real.controlplane import (
    ControlPlane,
    kubeboot_control_plane,
    real_control_plane,
    tail,
)
from tests.real.kubelet_node import (
    KubeletNode,
    ServingApprover,
    kubelet_requests,
    lost_creates,
    refused_only_on,
    run_kubelet,
)
from tests.real.summary import summary

SHORT_SIGNING = "3m"
LIFETIME = 300.0  # seconds the kubelet must live on kubeboot
# docs/guides/bootstrap-token.md, step 4.
GUIDE_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: create-csrs-for-bootstrapping}
subjects: [{kind: Group, name: "system:bootstrappers", apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: "system:node-bootstrapper", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auto-approve-csrs-for-group}
subjects:
- {kind: Group, name: "system:bootstrappers:worker", apiGroup: rbac.authorization.k8s.io}
roleRef:
  kind: ClusterRole
  name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auto-approve-renewals-for-nodes}
subjects: [{kind: Group, name: "system:nodes", apiGroup: rbac.authorization.k8s.io}]
roleRef:
  kind: ClusterRole
  name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
  apiGroup: rbac.authorization.k8s.io
"""


def _renew_time(node: KubeletNode) -> str:
    lease = node.kubectl_json("get", "lease", "-n", "kube-node-lease", node.name)
    return str(lease["spec"]["renewTime"])


def _bootstrapped(node: KubeletNode) -> None:
    """kubelet.conf written, Node registered, CSINode and Lease created."""
    node.wait(node.kubeconfig.exists, "the client certificate bootstrap")
    node.wait(node.node_exists, "the Node registered")
    for kind, namespace in (("csinode", ""), ("lease", "kube-node-lease")):
        args = ["get", kind, node.name, *(["-n", namespace] if namespace else [])]
        node.wait(
            lambda args=args: node.plane.kubectl(*args, check=False).returncode == 0,
            f"the {kind} created",
        )


def _current_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.timeout(1500)
def test_a_kubelet_lives_on_kubeboot(real_tmp: Path) -> None:
    with contextlib.ExitStack() as stack:
        planes: dict[str, ControlPlane] = {
            "real": stack.enter_context(
                real_control_plane(real_tmp / "real", signing_duration=SHORT_SIGNING)
            ),
            "kubeboot": stack.enter_context(
                kubeboot_control_plane(real_tmp / "kubeboot", signing_duration=SHORT_SIGNING)
            ),
        }
        nodes: dict[str, KubeletNode] = {}
        approvers: dict[str, ServingApprover] = {}
        for key, plane in planes.items():
            plane.kubectl("create", "-f", "-", input=GUIDE_RBAC)
            token = plane.create_token(groups=("system:bootstrappers:worker",))
            boot = plane.token_kubeconfig(real_tmp / f"{key}-bootstrap-kubelet.conf", token)
            node = stack.enter_context(
                run_kubelet(
                    real_tmp / f"node-{key}", plane, name=f"lives-{key}", bootstrap_kubeconfig=boot
                )
            )
            approvers[key] = stack.enter_context(ServingApprover(plane, node.name))
            nodes[key] = node
        started = time.monotonic()
        for node in nodes.values():
            _bootstrapped(node)
            node.wait(lambda n=node: n.pems("server"), "a serving certificate, approved")
        ours = nodes["kubeboot"]
        first_renewal = _renew_time(ours)

        while time.monotonic() - started < LIFETIME:
            status = ours.host.status()
            assert status.get("kubelet_exits") == [], (
                f"the kubelet on kubeboot exited: {status}\n{tail(ours.log, 80)}"
            )
            assert not ours.fatal_lines(), ours.fatal_lines()
            time.sleep(10)

        status = ours.host.status()
        assert status["kubelet_starts"] == 1 and status["kubelet_exits"] == [], status
        assert not ours.fatal_lines()
        # Both certificates rotated: the bootstrap one plus renewals, and two or more serving.
        clients, servers = ours.pems("client"), ours.pems("server")
        assert len(clients) >= 2, clients
        assert len(servers) >= 2, servers
        # The kubelet serves TLS with its current serving certificate, which names its IP.
        current = _current_cert(ours.cert_dir / "kubelet-server-current.pem")
        presented = x509.load_der_x509_certificate(ours.serving_peer_certificate())
        assert presented.serial_number == current.serial_number
        sans = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ours.ip in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        assert current.subject.rfc4514_string() == f"CN=system:node:{ours.name},O=system:nodes"
        # The client certificate in use was issued by a renewal, for the node itself.
        client = _current_cert(ours.cert_dir / "kubelet-client-current.pem")
        assert client.subject.rfc4514_string() == f"CN=system:node:{ours.name},O=system:nodes"
        assert client.not_valid_after_utc - client.not_valid_before_utc <= dt.timedelta(minutes=8)

        assert _renew_time(ours) > first_renewal
        events = ours.kubectl_json(
            "get", "events", "-A", "--field-selector", f"involvedObject.name={ours.name}"
        )["items"]
        reasons = {e["reason"] for e in events}
        assert "Starting" in reasons or "NodeHasSufficientMemory" in reasons, reasons
        whoami = ours.plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=ours.kubeconfig)
        assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
            f"system:node:{ours.name}"
        )
        assert len(approvers["kubeboot"].approved) >= 2
        # The kubelet's own API: webhook authentication (x509) and authorization
        # (a SubjectAccessReview to kubeboot) let the admin list its pods: there are none.
        code, body = ours.api_get("/pods")
        assert code == 200, body
        assert not json.loads(body)["items"]  # the kubelet serves "items": null
        # A ServiceAccount token: the kubelet's webhook authentication asks kubeboot's
        # TokenReview (authenticated, so 403 from the authorization webhook, not 401).
        ours.plane.kubectl("create", "serviceaccount", "kubelet-reader")
        token = ours.plane.kubectl("create", "token", "kubelet-reader").stdout.strip()
        code, body = ours.api_get("/pods", token=token)
        assert code == 403, body
        assert "user=system:serviceaccount:default:kubelet-reader" in body, body
        code, body = ours.api_get("/pods", token=token[:-4] + "AAAA")
        assert code == 401, body

        theirs_node = nodes["real"]
        assert theirs_node.host.status().get("kubelet_exits") == [], "the reference kubelet died"

    ours_requests = kubelet_requests(
        planes["kubeboot"].logs["audit"], lost=lost_creates(nodes["kubeboot"].log)
    )
    real_requests = kubelet_requests(
        planes["real"].logs["audit"], lost=lost_creates(nodes["real"].log)
    )
    summary(
        f"kubelet on kubeboot: {len(clients)} client and {len(servers)} serving certificates in "
        f"{LIFETIME:.0f} s, {len(ours_requests.codes)} kinds of request"
    )
    only_ours = refused_only_on(ours_requests, real_requests)
    only_theirs = refused_only_on(real_requests, ours_requests)
    same = sum(
        1 for key, codes in ours_requests.codes.items() if real_requests.codes.get(key) == codes
    )
    summary(
        f"kubelet requests, (verb, resource) with the same codes on both: {same}/"
        f"{len(set(ours_requests.codes) | set(real_requests.codes))}; refused by kubeboot: "
        f"{json.dumps(_str(ours_requests.refused()))}, by kube-apiserver: "
        f"{json.dumps(_str(real_requests.refused()))}; refused only by kubeboot: "
        f"{json.dumps(_str(only_ours))}, only by kube-apiserver: {json.dumps(_str(only_theirs))}"
    )
    assert not only_ours, (
        "refused by kubeboot, answered by kube-apiserver:\n"
        + "\n".join(f"{k}: {v}" for k, v in only_ours.items())
        + "\n\nkubeboot:\n"
        + "\n".join(ours_requests.table())
        + "\n\nkube-apiserver:\n"
        + "\n".join(real_requests.table())
    )


def _str(refused: dict[tuple[str, str], set[int]]) -> dict[str, list[int]]:
    return {f"{verb} {resource}": sorted(codes) for (verb, resource), codes in refused.items()}


@pytest.mark.timeout(900)
def test_a_kubelet_bootstraps_with_a_static_token(real_tmp: Path) -> None:
    """docs/guides/static-token.md with the real kubelet in place of ``kubeboot agent``."""
    token = secrets.token_hex(16)
    tokens = real_tmp / "tokens.csv"
    tokens.write_text(f'{token},kubelet-bootstrap,10001,"system:bootstrappers"\n')
    tokens.chmod(0o600)
    flags = ["--token-auth-file", str(tokens)]
    with kubeboot_control_plane(real_tmp / "kubeboot", flags=flags) as plane:
        plane.kubectl(
            "create",
            "clusterrolebinding",
            "create-csrs-for-bootstrapping",
            "--clusterrole=system:node-bootstrapper",
            "--group=system:bootstrappers",
        )
        plane.kubectl(
            "create",
            "clusterrolebinding",
            "auto-approve-csrs-for-group",
            "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "--group=system:bootstrappers",
        )
        boot = plane.token_kubeconfig(real_tmp / "bootstrap-kubelet.conf", token)
        with run_kubelet(
            real_tmp / "node",
            plane,
            name="static-token-node",
            bootstrap_kubeconfig=boot,
            server_tls_bootstrap=False,
        ) as node:
            _bootstrapped(node)
            csrs = node.kubectl_json("get", "csr")["items"]
            bootstrap = [c for c in csrs if c["spec"]["username"] == "kubelet-bootstrap"]
            assert len(bootstrap) == 1, csrs
            conditions = {c["type"] for c in bootstrap[0]["status"]["conditions"]}
            assert conditions == {"Approved"} and bootstrap[0]["status"].get("certificate")
            whoami = plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=node.kubeconfig)
            user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
            assert user == "system:node:static-token-node"
            assert node.host.status()["kubelet_exits"] == [], tail(node.log, 80)
