"""One bad write no longer stops every controller for good (issue 13, item 6).

Leases are validated as upstream's (a decode error is 400, bad numbers 422), and a Lease an
older kubeboot let through (``leaseTransitions: "abc"`` in storage) makes the controller
manager fail at its next acquisition: that failure is logged with its traceback, restarted
with backoff, shown by ``/readyz``'s ``kube-controller-manager`` check, and over once the
Lease is repaired; SIGTERM then still exits 0 without a traceback. Real server processes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubeboot.api.registry import codec
from kubeboot.resources.registry import find_resource
from kubeboot.storage.sqlite import SqliteStore
from tests.conftest import RunningServer, admin_ssl_context, call_as, start_server_process

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
LEADER = re.compile(r"became leader \(acquire\)")


def _lease(running: RunningServer) -> dict[str, Any]:
    return dict(json.loads(running.kubectl("get", "--raw", LEASE_PATH).stdout))


async def test_lease_validation_as_upstream(server: RunningServer) -> None:
    admin = admin_ssl_context(server)
    deadline = time.monotonic() + 30
    while (got := await call_as(server, "GET", LEASE_PATH, ctx=admin))[0] == 404:
        assert time.monotonic() < deadline, "the controllers never took their Lease"
        await asyncio.sleep(0.1)
    status, lease = got
    assert status == 200, lease
    bad = json.loads(json.dumps(lease))
    bad["spec"]["leaseTransitions"] = "abc"
    status, answer = await call_as(server, "PUT", LEASE_PATH, bad, ctx=admin)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        'Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal string '
        "into Go struct field LeaseSpec.spec.leaseTransitions of type int32"
    )
    bad["spec"].update(leaseTransitions=-1, leaseDurationSeconds=0, preferredHolder="x")
    status, answer = await call_as(server, "PUT", LEASE_PATH, bad, ctx=admin)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert answer["message"] == (
        'Lease.coordination.k8s.io "kube-controller-manager" is invalid: ['
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, "
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0, "
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined]"
    )


def _readyz(running: RunningServer) -> tuple[int, str]:
    """GET /readyz?verbose anonymously (system:public-info-viewer may)."""
    url = urlsplit(running.url)
    ctx = ssl.create_default_context(cafile=str(running.ca_file))
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/readyz?verbose")
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _corrupt_the_lease(data: Path) -> None:
    """What an older kubeboot let an admin store: a released Lease with a string count."""
    res = find_resource("coordination.k8s.io", "v1", "leases")
    assert res is not None
    store = await SqliteStore.open(data / "state.db")
    try:
        key = res.storage_key("kube-system", "kube-controller-manager")
        kv = await store.get(key)
        assert kv is not None
        lease = codec.decode(kv)
        lease["spec"].update(holderIdentity="", leaseTransitions="abc")
        await store.update(key, json.dumps(lease).encode(), kv.mod_revision)
    finally:
        await store.close()


def test_a_failing_controller_manager_is_restarted_and_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = data.with_suffix(".log")
    first = start_server_process(data)
    assert first.process is not None
    _until("the first leader", lambda: LEADER.search(log.read_text()), 60)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    asyncio.run(_corrupt_the_lease(data))

    running = start_server_process(data)
    assert running.process is not None
    try:
        # The acquisition fails, is logged with its traceback, and restarted with backoff.
        _until(
            "a logged restart",
            lambda: "kube-controller-manager failed; restarting in 2.0s" in log.read_text(),
            30,
        )
        text = log.read_text()
        assert "Traceback (most recent call last)" in text
        assert "ValueError: invalid literal for int() with base 10: 'abc'" in text
        assert "kube-controller-manager failed; restarting in 1.0s" in text
        status, body = _readyz(running)
        assert status == 500
        assert "[-]kube-controller-manager failed: reason withheld\n" in body
        assert body.endswith("[+]shutdown ok\nreadyz check failed\n")

        # An admin repairs the Lease; the next restart leads, and readyz recovers.
        lease = _lease(running)
        lease["spec"]["leaseTransitions"] = 7
        running.kubectl("replace", "-f", "-", input=json.dumps(lease))
        _until("the controllers to lead again", lambda: LEADER.search(log.read_text()), 60)
        _until("readyz to recover", lambda: _readyz(running)[0] == 200, 30)
        _, body = _readyz(running)
        assert "[+]kube-controller-manager ok\n[+]shutdown ok\n" in body
        assert _lease(running)["spec"]["leaseTransitions"] == 8
    finally:
        before_stop = len(log.read_text())
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(timeout=30)
    assert code == 0
    after = log.read_text()[before_stop:]
    assert "Traceback" not in after
    assert "kubeboot API server stopped cleanly" in after
