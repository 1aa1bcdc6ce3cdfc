"""Updates that start from a stale copy (``Store.get_hint``, the watch cache's value).

On etcd the read of an update comes from the watch cache, which may lag behind a write made
through another replica. Whether it lags at a given moment is timing, so here the server's
store answers ``get_hint`` with the value a key had before its last write — the worst a
lagging cache can do — and every kind of update must still act on the current object:
a compare-and-swap failure hands the current value back, and a stale copy that fails the
resourceVersion precondition or looks unchanged is read again (upstream's GuaranteedUpdate).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from kubeboot.storage.interface import KeyValue
from tests.conftest import RunningServer
from tests.integration.api.test_rest_semantics import CM, call, configmap

KEY = "/core/configmaps/default/stale"


@pytest.fixture
async def stale(server: RunningServer, admin_http: aiohttp.ClientSession) -> AsyncIterator[None]:
    """``stale`` at data a=1, then a=2; get_hint of its key answers the a=1 version."""
    assert server.server is not None and server.server.store is not None
    store = server.server.store
    status, _ = await call(admin_http, "POST", CM, configmap("stale", a="1"))
    assert status == 201
    old = await store.get(KEY)
    assert old is not None
    status, current = await call(admin_http, "GET", f"{CM}/stale")
    current["data"]["a"] = "2"
    status, _ = await call(admin_http, "PUT", f"{CM}/stale", current)
    assert status == 200
    real_hint = store.get_hint

    async def lagging(key: str) -> KeyValue | None:
        return old if key == KEY else await real_hint(key)

    store.get_hint = lagging  # type: ignore[method-assign]
    yield
    store.get_hint = real_hint  # type: ignore[method-assign]


@pytest.mark.usefixtures("stale")
async def test_a_put_with_the_current_resource_version_succeeds(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, current = await call(admin_http, "GET", f"{CM}/stale")
    current["data"]["b"] = "3"
    status, body = await call(admin_http, "PUT", f"{CM}/stale", current)
    assert status == 200, body
    assert body["data"] == {"a": "2", "b": "3"}
    assert int(body["metadata"]["resourceVersion"]) > int(current["metadata"]["resourceVersion"])


@pytest.mark.usefixtures("stale")
async def test_a_put_with_an_old_resource_version_is_still_a_conflict(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, current = await call(admin_http, "GET", f"{CM}/stale")
    old_rv = str(int(current["metadata"]["resourceVersion"]) - 1)
    status, body = await call(
        admin_http,
        "PUT",
        f"{CM}/stale",
        {**current, "metadata": {**current["metadata"], "resourceVersion": old_rv}},
    )
    assert status == 409 and body["reason"] == "Conflict"
    _, after = await call(admin_http, "GET", f"{CM}/stale")
    assert after == current


@pytest.mark.usefixtures("stale")
async def test_a_patch_applies_to_the_current_object_not_the_stale_copy(
    admin_http: aiohttp.ClientSession,
) -> None:
    status, body = await call(
        admin_http,
        "PATCH",
        f"{CM}/stale",
        {"data": {"c": "4"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200, body
    assert body["data"] == {"a": "2", "c": "4"}  # a=2 was not lost to the stale a=1


@pytest.mark.usefixtures("stale")
async def test_an_update_that_only_matches_the_stale_copy_is_stored(
    admin_http: aiohttp.ClientSession,
) -> None:
    """a=1 equals the stale copy (a no-op there) but not the current a=2: it must be written."""
    _, current = await call(admin_http, "GET", f"{CM}/stale")
    current["data"]["a"] = "1"
    status, body = await call(admin_http, "PUT", f"{CM}/stale", current)
    assert status == 200, body
    _, after = await call(admin_http, "GET", f"{CM}/stale")
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
