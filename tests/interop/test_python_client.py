"""The official ``kubernetes`` Python client against the real server: create, list, watch."""

from __future__ import annotations

import threading
from typing import Any

import kubernetes
import pytest

from tests.conftest import RunningServer

# The official client is only partly typed; the test treats it as the dynamic library it is.
k8s: Any = kubernetes
client, config, watch = k8s.client, k8s.config, k8s.watch
ApiException: Any = k8s.client.exceptions.ApiException


@pytest.fixture
def api(server_process: RunningServer) -> Any:
    return config.new_client_from_config(config_file=str(server_process.kubeconfig))


def test_version_and_namespaces(api: Any) -> None:
    version = client.VersionApi(api).get_code()
    assert version.major == "1"
    names = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_create_list_and_conflict(api: Any) -> None:
    core = client.CoreV1Api(api)
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py", labels={"app": "x"}), data={"k": "v"}
    )
    created = core.create_namespaced_config_map("default", body)
    assert created.metadata.uid
    listed = core.list_namespaced_config_map("default", label_selector="app=x")
    assert [c.metadata.name for c in listed.items] == ["py"]
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_config_map("default", body)
    assert excinfo.value.status == 409
    stale = created
    stale.data = {"k": "first"}
    core.replace_namespaced_config_map("py", "default", stale)
    stale.data = {"k": "second"}
    with pytest.raises(ApiException) as excinfo:
        core.replace_namespaced_config_map("py", "default", stale)
    assert excinfo.value.status == 409
    assert core.read_namespaced_config_map("py", "default").data == {"k": "first"}


def test_watch_sees_added_and_deleted(api: Any) -> None:
    core = client.CoreV1Api(api)
    start_rv = core.list_namespaced_secret("default").metadata.resource_version
    events: list[tuple[str, str]] = []

    def run_watch() -> None:
        w = watch.Watch()
        for ev in w.stream(
            core.list_namespaced_secret, "default", resource_version=start_rv, timeout_seconds=10
        ):
            events.append((ev["type"], ev["object"].metadata.name))
            if len(events) == 2:
                w.stop()

    t = threading.Thread(target=run_watch)
    t.start()
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="watched"), string_data={"a": "b"})
    core.create_namespaced_secret("default", secret)
    core.delete_namespaced_secret("watched", "default")
    t.join(15)
    assert events == [("ADDED", "watched"), ("DELETED", "watched")]


def test_csr_create_via_typed_client(api: Any) -> None:
    certs = client.CertificatesV1Api(api)
    with pytest.raises(ApiException) as excinfo:
        certs.create_certificate_signing_request(
            client.V1CertificateSigningRequest(
                metadata=client.V1ObjectMeta(name="bad"),
                spec=client.V1CertificateSigningRequestSpec(
                    request="bm90IGEgY3Ny",
                    signer_name="kubernetes.io/kubelet-serving",
                    usages=["server auth"],
                ),
            )
        )
    assert excinfo.value.status == 422
    assert "spec.request" in excinfo.value.body
