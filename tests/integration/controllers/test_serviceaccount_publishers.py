"""The ServiceAccount publishers as the real server runs them, observed over HTTPS.

Every namespace gets a ``default`` ServiceAccount and a ``kube-root-ca.crt`` ConfigMap holding
the cluster CA; both come back when deleted, the ConfigMap also when edited; the controllers'
own ServiceAccounts exist in kube-system.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kubeboot.client.http import HttpApiClient
from kubeboot.client.interface import JsonObject
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.serviceaccount import ROOT_CA_DESCRIPTION
from kubeboot.resources.status import NotFound
from tests.conftest import RunningServer

SA = find_resource("", "v1", "serviceaccounts")
CM = find_resource("", "v1", "configmaps")
NS = find_resource("", "v1", "namespaces")
assert SA is not None
assert CM is not None
assert NS is not None


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[HttpApiClient]:
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as client:
        yield client


async def _eventually(probe: Callable[[], Awaitable[JsonObject | None]]) -> JsonObject:
    async with asyncio.timeout(20):
        while True:
            try:
                result = await probe()
            except NotFound:
                result = None
            if result is not None:
                return result
            await asyncio.sleep(0.05)


def _get(
    client: HttpApiClient, res: ResourceInfo, name: str, ns: str
) -> Callable[[], Awaitable[JsonObject]]:
    """A probe for :func:`_eventually`: the object, or NotFound."""
    return lambda: client.get(res, name, ns)


async def test_every_default_namespace_has_default_sa_and_root_ca(
    admin: HttpApiClient, server: RunningServer
) -> None:
    assert SA is not None
    assert CM is not None
    ca = server.ca_file.read_text()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        sa = await _eventually(_get(admin, SA, "default", ns))
        assert sa["metadata"]["namespace"] == ns
        cm = await _eventually(_get(admin, CM, "kube-root-ca.crt", ns))
        assert cm["data"] == {"ca.crt": ca}
        assert cm["metadata"]["annotations"]["kubernetes.io/description"] == ROOT_CA_DESCRIPTION


async def test_a_new_namespace_is_served_and_deletions_and_edits_are_undone(
    admin: HttpApiClient, server: RunningServer
) -> None:
    assert SA is not None
    assert CM is not None
    assert NS is not None
    ca = server.ca_file.read_text()
    await admin.create(NS, {"metadata": {"name": "team-a"}})
    first = await _eventually(_get(admin, SA, "default", "team-a"))
    await _eventually(_get(admin, CM, "kube-root-ca.crt", "team-a"))

    await admin.delete(SA, "default", "team-a")

    async def recreated() -> JsonObject | None:
        sa = await _get(admin, SA, "default", "team-a")()
        return sa if sa["metadata"]["uid"] != first["metadata"]["uid"] else None

    await _eventually(recreated)

    cm = await admin.get(CM, "kube-root-ca.crt", "team-a")
    cm["data"] = {"ca.crt": "not a CA"}
    await admin.update(CM, cm, "team-a")

    async def restored() -> JsonObject | None:
        current = await _get(admin, CM, "kube-root-ca.crt", "team-a")()
        return current if current["data"] == {"ca.crt": ca} else None

    await _eventually(restored)

    await admin.delete(CM, "kube-root-ca.crt", "team-a")
    await _eventually(restored)


async def test_the_controllers_service_accounts_exist_in_kube_system(
    admin: HttpApiClient,
) -> None:
    assert SA is not None
    for name in (
        "bootstrap-signer",
        "certificate-controller",
        "root-ca-cert-publisher",
        "service-account-controller",
        "token-cleaner",
    ):
        await _eventually(_get(admin, SA, name, "kube-system"))
