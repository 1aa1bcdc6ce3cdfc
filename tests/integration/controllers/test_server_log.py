"""The server's log says what its main job did: one INFO line per CSR approved, denied and
signed (serial, node, validity), per bootstrap token created and expired; never a secret.

A real ``kubeboot server`` process, a real ``kubeboot join`` and real ``kubectl``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

from cryptography import x509

from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, create_token, join_info, run_kubeboot
from tests.integration.cli.test_admin_cli import make_csr


def _wait_for_line(log: Path, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(), re.M)
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the server log:\n{log.read_text()}")


def _lines(log: Path, pattern: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if re.search(pattern, line)]


def test_one_line_per_csr_decision_signature_and_token(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "data") as running:
        log = running.data_dir.with_suffix(".log")
        _join_and_check(running, log, tmp_path)
        # A manual denial.
        make_csr(running, "to-deny", "deny-1")
        running.kubectl("certificate", "deny", "to-deny")
        _wait_for_line(log, r"CSR to-deny denied by kubernetes-admin \(reason KubectlDeny\)")
        # A token made already expired is deleted by the tokencleaner, and said so.
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        secret = "0123456789abcdef"
        create_token(running, "oldtok", secret, expires=past)
        _wait_for_line(log, r"bootstrap token oldtok created by kubernetes-admin: expires ")
        _wait_for_line(
            log,
            r"bootstrap token oldtok expired \(expiration .+\); deleted its Secret "
            r"kube-system/bootstrap-token-oldtok",
        )
        assert not _lines(log, secret)
        assert len(_lines(log, "bootstrap token oldtok expired")) == 1


def _join_and_check(running: RunningServer, log: Path, tmp_path: Path) -> None:
    info = join_info(running)
    node = NodePaths(tmp_path / "node", "log-1")
    joined = run_kubeboot(*info.join_args, "--no-daemon", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr
    approved = _wait_for_line(
        log,
        r"CSR (node-csr-\S+) approved by system:serviceaccount:kube-system:certificate-"
        r"controller \(reason AutoApproved\): signer kubernetes.io/kube-apiserver-client-kubelet, "
        r"requested by system:bootstrap:" + info.token.split(".")[0],
    )
    name = approved.group(1)
    signed = _wait_for_line(
        log,
        rf"CSR {name} signed: serial ([0-9a-f]+), node log-1 \(subject "
        r"CN=system:node:log-1,O=system:nodes\), valid (\S+) to (\S+), signer ",
    )
    cert = x509.load_pem_x509_certificate(
        (node.cert_dir / "kubelet-client-current.pem").read_bytes()
    )
    assert int(signed.group(1), 16) == cert.serial_number
    assert signed.group(3) == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(_lines(log, rf"CSR {name} approved")) == 1
    assert len(_lines(log, rf"CSR {name} signed")) == 1
    # The join command printed on start carries the token, as kubeadm's; no log line does.
    leaks = _lines(log, info.token.split(".")[1])
    assert [line for line in leaks if "kubeboot join" not in line] == []
