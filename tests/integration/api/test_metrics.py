"""``/metrics``: a real ``kubeboot server --workers 2``, scraped as Prometheus would, parsed
with the Prometheus client's own parser; names and labels checked against upstream's.

Authorization is upstream's: a non-resource ``get`` on ``/metrics``; a user without it gets
403, a user bound to a role that grants it (as upstream's ``system:monitoring``) reads it.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer, admin_ssl_context, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot

UPSTREAM = {
    # name -> label names, as upstream's source declares them
    "apiserver_request": {
        "verb",
        "dry_run",
        "group",
        "version",
        "resource",
        "subresource",
        "scope",
        "component",
        "code",
    },
    "apiserver_request_duration_seconds": {
        "verb",
        "dry_run",
        "group",
        "version",
        "resource",
        "subresource",
        "scope",
        "component",
    },
    "apiserver_current_inflight_requests": {"request_kind"},
    "apiserver_client_certificate_expiration_seconds": set(),
    "apiserver_storage_objects": {"resource"},
    "apiserver_resource_objects": {"group", "resource"},
    "workqueue_adds": {"name"},
    "workqueue_depth": {"name"},
    "workqueue_queue_duration_seconds": {"name"},
    "workqueue_work_duration_seconds": {"name"},
    "workqueue_unfinished_work_seconds": {"name"},
    "workqueue_longest_running_processor_seconds": {"name"},
    "leader_election_master_status": {"name"},
    "process_cpu_seconds": set(),
    "process_resident_memory_bytes": set(),
    "kubeboot_joins": {"outcome"},
    "kubeboot_csr_wait_seconds": {"signerName"},
    "kubeboot_bootstrap_tokens": {"expires_in"},
    "kubeboot_issued_certificates": {"expires_in"},
    "kubeboot_certificate_expiration_timestamp_seconds": {"name"},
}


def _get(running: RunningServer, ctx: ssl.SSLContext, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(running.url + "/metrics")  # noqa: S310 - https only
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_metrics_across_workers_parsed_and_authorized(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("prom-token,prometheus,uid-1\nnobody-token,nobody,uid-2\n")
    flags = ["--workers", "2", "--token-auth-file", str(tokens)]
    with server_process_running(tmp_path / "data", *flags) as running:
        anonymous = ssl.create_default_context(cafile=str(running.ca_file))
        code, body = _get(running, anonymous, "nobody-token")
        assert code == 403
        assert json.loads(body)["message"].startswith(
            'forbidden: User "nobody" cannot get path "/metrics"'
        )
        # upstream's system:monitoring grants exactly this; bound here to the scraper.
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "metrics-reader"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        }
        running.kubectl("apply", "-f", "-", input=json.dumps(role))
        running.kubectl(
            "create",
            "clusterrolebinding",
            "metrics-reader",
            "--clusterrole=metrics-reader",
            "--user=prometheus",
        )

        # A join, so the CSR metrics have something to count.
        info = join_info(running)
        joined = run_kubeboot(
            *info.join_args, "--no-daemon", *NodePaths(tmp_path / "node", "m-1").flags()
        )
        assert joined.returncode == 0, joined.stderr
        admin = admin_ssl_context(running)
        for _ in range(20):
            _get(running, admin)

        deadline = time.monotonic() + 60
        while True:
            code, text = _get(running, anonymous, "prom-token")
            assert code == 200, text
            samples = _samples(text)
            joins = {s[0]["outcome"]: s[1] for s in samples.get("kubeboot_joins_total", [])}
            metrics_gets = sum(
                v
                for labels, v in samples.get("apiserver_request_total", [])
                if labels["verb"] == "GET" and labels["code"] == "200" and labels["resource"] == ""
            )
            if joins.get("issued") == 1.0 and metrics_gets >= 20:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.5)

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, labels in UPSTREAM.items():
        assert name in families, f"{name} missing"
        seen = {k for s in families[name].samples for k in s.labels if k not in ("le", "quantile")}
        assert seen <= labels, (name, seen)
    # Requests from both workers add up in one series per label set (no per-process labels).
    request_series = [labels for labels, _ in samples["apiserver_request_total"]]
    assert len(request_series) == len({tuple(sorted(s.items())) for s in request_series})
    csr_creates = [
        v
        for labels, v in samples["apiserver_request_total"]
        if labels["resource"] == "certificatesigningrequests" and labels["verb"] == "POST"
    ]
    assert sum(csr_creates) == 1.0
    csr_scopes = {
        labels["scope"]
        for labels, _ in samples["apiserver_request_total"]
        if labels["resource"] == "certificatesigningrequests" and labels["verb"] == "POST"
    }
    assert csr_scopes == {"resource"}  # upstream: a create is scoped to the resource
    waits = {s[0]["signerName"]: s[1] for s in samples["kubeboot_csr_wait_seconds_count"]}
    assert waits["kubernetes.io/kube-apiserver-client-kubelet"] == 1.0
    leader = samples["leader_election_master_status"]
    assert leader == [({"name": "kube-controller-manager"}, 1.0)]
    storage = {labels["resource"] for labels, _ in samples["apiserver_storage_objects"]}
    assert {"secrets", "certificatesigningrequests.certificates.k8s.io"} <= storage
    assert any(
        labels == {"name": "apiserver"}
        for labels, _ in samples["kubeboot_certificate_expiration_timestamp_seconds"]
    )
    assert "apiserver_request_created" not in samples  # no _created series, as upstream
