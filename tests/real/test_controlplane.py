"""The two control plane fixtures themselves: up, versioned, and ready for a bootstrap.

Everything else in the tier leans on these, so a broken fixture fails here first, by name.
"""

from __future__ import annotations

import json
import ssl
import urllib.request

from tests.real.controlplane import ControlPlane


def _get_json(plane: ControlPlane, path: str, token: str | None = None) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=str(plane.ca_file))
    request = urllib.request.Request(plane.url + path)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, context=ctx, timeout=30) as resp:  # noqa: S310
        body: dict[str, object] = json.loads(resp.read())
        return body


def test_real_plane_is_upstream_v1_37_2(real_plane: ControlPlane) -> None:
    version = _get_json(real_plane, "/version")
    assert version["gitVersion"] == "v1.37.2"
    assert (version["major"], version["minor"]) == ("1", "37")
    out = real_plane.kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == "v1.37.2"


def test_real_plane_runs_the_bootstrap_controllers(real_plane: ControlPlane) -> None:
    """kubeboot init ran against it; the bootstrapsigner signs cluster-info for a new token."""
    token = real_plane.create_token()
    real_plane.wait_for_jws(token)
    roles = real_plane.kubectl("get", "clusterrolebindings", "-o", "name").stdout.split()
    assert (
        "clusterrolebinding.rbac.authorization.k8s.io/kubeadm:node-autoapprove-bootstrap" in roles
    )


def test_each_plane_serves_cluster_info_to_anyone_and_knows_the_token(plane: ControlPlane) -> None:
    token = plane.create_token(description=f"fixture test on {plane.flavor}")
    plane.wait_for_jws(token)
    info = _get_json(plane, "/api/v1/namespaces/kube-public/configmaps/cluster-info")
    data = info["data"]
    assert isinstance(data, dict)
    assert f"jws-kubeconfig-{token.split('.')[0]}" in data
    assert plane.url in data["kubeconfig"]
    # The token authenticates as system:bootstrap:<id> in the bootstrappers' groups.
    conf = plane.token_kubeconfig(plane.workdir / f"token-{token[:6]}.conf", token)
    review = plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=conf).stdout
    user = json.loads(review)["status"]["userInfo"]
    assert user["username"] == f"system:bootstrap:{token.split('.')[0]}"
    assert "system:bootstrappers:kubeadm:default-node-token" in user["groups"]


def test_each_plane_accepts_client_certificates_from_its_ca(plane: ControlPlane) -> None:
    conf = plane.workdir / f"node-{plane.flavor}.conf"
    plane.client_kubeconfig(conf, "system:node:fixture-node", ["system:nodes"])
    review = plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=conf).stdout
    user = json.loads(review)["status"]["userInfo"]
    assert user["username"] == "system:node:fixture-node"
    assert "system:nodes" in user["groups"]
