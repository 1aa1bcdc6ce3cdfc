"""A real ``kubeadm join`` v1.37.2 against kubeboot, unchanged.

* Tokens: one made by ``kubeadm token create --print-join-command`` against kubeboot's
  admin.conf passes ``kubeadm join --dry-run`` (its printed command, as is) and kubeboot's own
  ``kubeboot join``; one made by ``kubeboot token create`` passes a real ``kubeadm join``.
* The dry run reads kubeadm-config and kubelet-config with the bootstrap token and writes the
  kubelet configuration kubeboot published; kubeadm's requests are compared with the same dry
  run against the real control plane: none refused by kubeboot that kube-apiserver answered.
* The real join runs in a private mount namespace (tmpfs over ``/etc/kubernetes`` and
  ``/var/lib/kubelet``), with ``--ignore-preflight-errors=all`` (swap, cgroups and systemd
  checks this host cannot pass), ``--cri-socket`` of the test's containerd and ``--patches``
  for the host's kubelet settings (``tests.real.kubelet_node.host_kubelet_config``). The
  kubelet is started by the node's supervisor once kubeadm has written its flags, as the
  kubeadm systemd drop-in would; the join ends with the kubelet's Node registered in kubeboot.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.real.binaries import real_binary
from tests.real.controlplane import ControlPlane, kubeboot_control_plane, wait_until
from tests.real.kubelet_node import (
    Requests,
    containerd,
    host_kubelet_config,
    kubelet_requests,
    node_host,
    node_ip,
    node_port,
    refused_only_on,
)
from tests.real.summary import summary

JOINED = "This node has joined the cluster"


def _kubeadm(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(real_binary("kubeadm")), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"kubeadm {' '.join(args)} failed:\n{output}"
    return output


def _patches(directory: Path, workdir: Path, runtime: Path) -> Path:
    """kubeadm's ``--patches``: this host's kubelet settings over the cluster's."""
    directory.mkdir(parents=True, exist_ok=True)
    patch = host_kubelet_config(
        workdir, port=node_port(), healthz_port=node_port(), runtime_socket=runtime
    )
    (directory / "kubeletconfiguration+strategic.yaml").write_text(yaml.safe_dump(patch))
    return directory


def _codes(requests: Requests) -> str:
    return "; ".join(
        f"{verb} {res} {sorted(c)}" for (verb, res), c in sorted(requests.codes.items())
    )


def _dry_run(plane: ControlPlane, join: list[str], workdir: Path, runtime: Path) -> str:
    """``kubeadm join --dry-run`` in a private mount namespace; returns kubeadm's output."""
    dry = workdir / "dry-run"
    dry.mkdir(parents=True)
    log = workdir / "kubeadm.log"
    first = {
        "argv": [
            str(real_binary("kubeadm")),
            "join",
            *join,
            "--dry-run",
            "--node-name",
            "dry-run-node",
            "--ignore-preflight-errors=all",
            f"--cri-socket=unix://{runtime}",
            f"--patches={_patches(workdir / 'patches', workdir, runtime)}",
        ],
        "log": str(log),
        "env": {"KUBEADM_JOIN_DRYRUN_DIR": str(dry)},
    }
    with node_host(
        workdir / "host", private_dirs=("/etc/kubernetes", "/var/lib/kubelet"), first=first
    ) as host:
        wait_until(
            lambda: host.status().get("first_exit") is not None,
            f"kubeadm join --dry-run ({plane.flavor})",
            timeout=300,
            logs=host.logs,
            alive=host.alive,
        )
        assert host.status()["first_exit"] == 0, log.read_text()
    return log.read_text()


def test_kubeadm_tokens_pass_both_discoveries_and_the_dry_run_reads_the_config(
    real_tmp: Path, real_plane: ControlPlane, kubeboot_plane: ControlPlane
) -> None:
    printed = _kubeadm(
        "token",
        "create",
        "--print-join-command",
        "--kubeconfig",
        str(kubeboot_plane.admin_kubeconfig),
    )
    command = shlex.split(printed.strip().splitlines()[-1])
    assert command[:2] == ["kubeadm", "join"], printed
    join = command[2:]
    token = join[join.index("--token") + 1]
    kubeboot_plane.wait_for_jws(token)
    listed = _kubeadm("token", "list", "--kubeconfig", str(kubeboot_plane.admin_kubeconfig))
    assert token in listed

    outputs = {}
    with containerd(real_tmp / "containerd") as runtime:
        outputs["kubeboot"] = _dry_run(kubeboot_plane, join, real_tmp / "kubeboot", runtime)
        reference_token = real_plane.create_token()
        real_plane.wait_for_jws(reference_token)
        outputs["real"] = _dry_run(
            real_plane, real_plane.join_args(reference_token), real_tmp / "real", runtime
        )
    for flavor, output in outputs.items():
        assert 'Reading configuration from the "kubeadm-config" ConfigMap' in output, output
        assert JOINED in output, (flavor, output)
        assert "forbidden" not in output.lower(), (flavor, output)
        # the published KubeletConfiguration is the one kubeadm would recommend for this cluster
        assert "The recommended value for" not in output, (flavor, output)
    config = yaml.safe_load((real_tmp / "kubeboot" / "dry-run" / "config.yaml").read_text())
    assert config["clusterDNS"] == ["10.96.0.10"]
    assert config["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"
    assert config["cgroupDriver"] == "cgroupfs"  # the node's patch over the cluster's config

    # what `kubeadm join` asked with its bootstrap token (not `kubeadm token` as the admin)
    ours = kubelet_requests(kubeboot_plane.logs["audit"], "kubeadm/", "system:bootstrap:")
    theirs = kubelet_requests(real_plane.logs["audit"], "kubeadm/", "system:bootstrap:")
    assert ("get", "configmaps") in ours.codes and 200 in ours.codes[("get", "configmaps")]
    summary("kubeadm join --dry-run, requests to kubeboot: " + _codes(ours))
    summary("kubeadm join --dry-run, requests to kube-apiserver: " + _codes(theirs))
    only_ours = refused_only_on(ours, theirs)
    assert not only_ours, (only_ours, ours.table(), theirs.table())

    # kubeadm's token, kubeboot's discovery: `kubeboot join` with the same printed arguments.
    node = real_tmp / "kubeboot-join"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubeboot",
            "join",
            *join,
            "--no-daemon",
            "--bootstrap-kubeconfig",
            str(node / "bootstrap-kubelet.conf"),
            "--kubeconfig",
            str(node / "kubelet.conf"),
            "--cert-dir",
            str(node / "pki"),
            "--node-name",
            "kubeadm-token-node",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node / "kubelet.conf").exists()


@pytest.mark.timeout(900)
def test_a_real_kubeadm_join_registers_the_node(real_tmp: Path) -> None:
    name = "kubeadm-node"
    with (
        kubeboot_control_plane(real_tmp / "kubeboot") as plane,
        containerd(real_tmp / "containerd") as runtime,
    ):
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "kubeboot",
                "token",
                "create",
                "--kubeconfig",
                str(plane.admin_kubeconfig),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        token = created.stdout.strip().splitlines()[-1]
        plane.wait_for_jws(token)
        log = real_tmp / "kubeadm.log"
        first = {
            "argv": [
                str(real_binary("kubeadm")),
                "join",
                *plane.join_args(token),
                "--node-name",
                name,
                "--ignore-preflight-errors=all",
                f"--cri-socket=unix://{runtime}",
                f"--patches={_patches(real_tmp / 'patches', real_tmp, runtime)}",
                "--v=1",
            ],
            "log": str(log),
        }
        kubelet = {
            # The kubeadm drop-in's command line; kubeadm-flags.env adds its own arguments.
            "argv": [
                str(real_binary("kubelet")),
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--config=/var/lib/kubelet/config.yaml",
            ],
            "env_file": "/var/lib/kubelet/kubeadm-flags.env",
            # /etc/default/kubelet's KUBELET_EXTRA_ARGS on a real node
            "extra_args": [f"--node-ip={node_ip()}", "--v=2"],
            "wait_for": "/var/lib/kubelet/kubeadm-flags.env",
            "log": str(real_tmp / "kubelet.log"),
            "restart_delay": 3,
        }
        with node_host(
            real_tmp / "host",
            private_dirs=("/etc/kubernetes", "/var/lib/kubelet"),
            kubelet=kubelet,
            first=first,
        ) as host:
            wait_until(
                lambda: host.status().get("first_exit") is not None,
                "kubeadm join",
                timeout=420,
                logs={**host.logs, **plane.logs},
                alive=host.alive,
            )
            output = log.read_text()
            assert host.status()["first_exit"] == 0, output
            assert JOINED in output, output
            wait_until(
                lambda: plane.kubectl("get", "node", name, check=False).returncode == 0,
                "the Node registered",
                timeout=180,
                logs={**host.logs, **plane.logs},
                alive=host.alive,
            )
            # kubeadm's files, inside the node's namespace
            assert host.run("test", "-e", "/etc/kubernetes/bootstrap-kubelet.conf").returncode
            assert host.run("test", "-s", "/etc/kubernetes/kubelet.conf").returncode == 0
            ca = host.run("cat", "/etc/kubernetes/pki/ca.crt").stdout
            assert ca.strip() == plane.ca_file.read_text().strip()
            whoami = host.run(
                str(real_binary("kubectl")),
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "auth",
                "whoami",
                "-o",
                "json",
            )
            user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
            assert user == f"system:node:{name}"
            status = host.status()
            assert status["kubelet_starts"] >= 1, status
            warnings = [line for line in output.splitlines() if "WARNING" in line]
            summary(f"kubeadm join against kubeboot: joined; {len(warnings)} warning line(s)")
