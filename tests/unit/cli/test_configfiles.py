"""KubeletConfiguration and JoinConfiguration files, unhappy paths first; --node-ip's rules."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeboot.cli.configfile import ConfigFileError
from kubeboot.cli.flagtypes import NodeIPs
from kubeboot.cli.joinconfig import load_join_config
from kubeboot.cli.kubeletconfig import load_kubelet_config

KUBELET = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
JOIN = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rotateCertificates: [1\n", "not YAML or JSON"),
        ("- a\n- b\n", "document 1 is not a mapping of fields"),
        ("apiVersion: v1\nkind: Pod\n", 'kind "Pod" apiVersion "v1" is not a Kubelet'),
        (KUBELET + "rotateCertificates: 'yes'\n", 'rotateCertificates: expected a boolean, got'),
        (KUBELET + "serverTLSBootstrap: 1\n", "serverTLSBootstrap: expected a boolean, got 1"),
        (KUBELET + "tlsCertFile: 3\n", "tlsCertFile: expected a string, got 3"),
        (KUBELET + "port: '10250'\n", 'port: expected an integer, got "10250"'),
        (KUBELET + "featureGates: {A: 'on'}\n", "featureGates: expected a map of names to bool"),
        (KUBELET + "logging: {verbosity: high}\n", 'logging.verbosity: expected an integer, got'),
        (KUBELET + "---\n" + KUBELET, "expected one KubeletConfiguration document, found 2"),
    ],
)  # fmt: skip
def test_bad_kubelet_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kubelet.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        load_kubelet_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_kubelet_config_as_json_with_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "kubelet.json"
    path.write_text(
        '{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",'
        ' "tlsCertFile": "pki/k.crt", "tlsPrivateKeyFile": "/abs/k.key", "clusterDNS": []}'
    )
    file = load_kubelet_config(path)
    assert file.tls_cert_file == tmp_path / "pki/k.crt"  # relative to the file, as the kubelet
    assert file.tls_private_key_file == Path("/abs/k.key")
    assert file.notes == [f"{path}: clusterDNS ignored: not used by kubeboot agent"]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"cannot read .*nope\.yaml"):
        load_kubelet_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n", "no JoinConfiguration"),
        ("apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n", "uses an old API spec"),
        ("apiVersion: kubeadm.k8s.io/v9\nkind: JoinConfiguration\n", 'unknown apiVersion "kubeadm'),
        (JOIN + "controlPlane: {}\n", "kubeboot join joins worker nodes only"),
        (JOIN + "discovery: {bootstrapToken: {caCertHashes: sha256:x}}\n",
         "discovery.bootstrapToken.caCertHashes: expected a list of strings"),
        (JOIN + "nodeRegistration: {kubeletExtraArgs: {node-ip: 10.0.0.1}}\n",
         "nodeRegistration.kubeletExtraArgs: expected a list of objects"),
        (JOIN + "nodeRegistration: {kubeletExtraArgs: [{value: x}]}\n",
         "nodeRegistration.kubeletExtraArgs[0].name: required"),
        (JOIN + "timeouts: {discovery: 5}\n", "timeouts.discovery: expected a string, got 5"),
        (JOIN + "timeouts: {tlsBootstrap: 5x}\n", 'timeouts.tlsBootstrap: time: unknown unit "x"'),
        (JOIN + "dryRun: maybe\n", 'dryRun: expected a boolean, got "maybe"'),
    ],
)  # fmt: skip
def test_bad_join_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "join.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        load_join_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_join_config_notes_every_ignored_field(tmp_path: Path) -> None:
    path = tmp_path / "join.yaml"
    path.write_text(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\n"
        + JOIN
        + "caCertPath: /etc/kubernetes/pki/ca.crt\nskipPhases: [preflight]\nsurprise: 1\n"
        "nodeRegistration: {taints: [], imagePullPolicy: IfNotPresent}\n"
        "timeouts: {kubeletHealthCheck: 4m}\n"
        "discovery: {file: {kubeConfigPath: /d.conf}}\n"
    )
    file = load_join_config(path)
    assert file.discovery_file == "/d.conf"
    joined = "\n".join(file.notes)
    for field in ("caCertPath", "skipPhases", "nodeRegistration.taints",
                  "nodeRegistration.imagePullPolicy", "timeouts.kubeletHealthCheck"):  # fmt: skip
        assert f"{field} ignored: kubeboot join runs no container runtime" in joined, field
    assert "unknown field surprise ignored" in joined
    assert "Ignored configuration document 1 with GroupVersionKind kubeadm.k8s.io/v1beta4" in joined


_V4 = st.ip_addresses(v=4)
_V6 = st.ip_addresses(v=6)


@given(st.lists(st.one_of(_V4, _V6), min_size=1, max_size=3))
def test_node_ip_accepts_one_ip_or_a_dual_stack_pair(
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    text = ",".join(str(ip) for ip in ips)
    pair_ok = len(ips) == 2 and ips[0].version != ips[1].version
    pair_ok = pair_ok and not any(ip.is_unspecified for ip in ips)
    if len(ips) == 1 or pair_ok:
        assert NodeIPs().convert(text, None, None) == tuple(ips)
    else:
        with pytest.raises(click.UsageError):
            NodeIPs().convert(text, None, None)


@pytest.mark.parametrize("text", ["10.0.0.1,", "10.0.0", "fd00::1::2", "host.example", ""])
def test_node_ip_refuses_what_is_not_an_ip(text: str) -> None:
    with pytest.raises(click.UsageError, match="could not parse"):
        NodeIPs().convert(text, None, None)


def test_node_ip_reads_ipv4_with_leading_zeros_as_go_does() -> None:
    assert NodeIPs().convert("010.000.000.001", None, None) == (ipaddress.IPv4Address("10.0.0.1"),)
