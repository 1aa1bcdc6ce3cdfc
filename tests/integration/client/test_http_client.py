"""``HttpApiClient`` against the real kubeboot server over TLS, with the admin kubeconfig.

Every verb of the ``ApiClient`` protocol once, plus the error mapping and the watch with
a field selector that the agent's CSR wait depends on.
"""

from __future__ import annotations

import asyncio

import pytest

from kubeboot.client.http import ApiUnreachable, HttpApiClient
from kubeboot.client.kubeconfig import load_client_config
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import AlreadyExists, Conflict, NotFound, Unauthorized
from tests.conftest import RunningServer


def _res(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    assert res is not None
    return res


CM = _res("", "configmaps")


def _cm(name: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": value},
    }


async def test_crud_and_errors(server: RunningServer) -> None:
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as client:
        created = await client.create(CM, _cm("one", "a"))
        assert created["metadata"]["resourceVersion"]
        with pytest.raises(AlreadyExists):
            await client.create(CM, _cm("one", "a"))
        got = await client.get(CM, "one", "default")
        assert got["data"] == {"k": "a"}
        got["data"]["k"] = "b"
        updated = await client.update(CM, got)
        with pytest.raises(Conflict):
            await client.update(CM, got)  # stale resourceVersion
        patched = await client.patch(CM, "one", {"data": {"k": "c"}}, namespace="default")
        assert patched["data"] == {"k": "c"}
        listed = await client.list(CM, "default", field_selector="metadata.name=one")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
        with pytest.raises(Conflict):
            await client.delete(CM, "one", "default", uid="not-the-uid")
        await client.delete(CM, "one", "default", uid=updated["metadata"]["uid"])
        with pytest.raises(NotFound, match='"one" not found'):
            await client.get(CM, "one", "default")


async def test_watch_with_field_selector_sees_only_its_object(server: RunningServer) -> None:
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as client:
        await client.create(CM, _cm("other", "x"))
        start = await client.list(CM, "default")
        rv = start["metadata"]["resourceVersion"]
        seen: list[tuple[str, str]] = []

        async def consume() -> None:
            async for event in client.watch(
                CM, "default", resource_version=rv, field_selector="metadata.name=mine"
            ):
                seen.append((event["type"], event["object"]["metadata"]["name"]))
                if event["type"] == "DELETED":
                    return

        task = asyncio.create_task(consume())
        await client.create(CM, _cm("other2", "x"))
        await client.create(CM, _cm("mine", "x"))
        await client.patch(CM, "mine", {"data": {"k": "y"}}, namespace="default")
        await client.delete(CM, "mine", "default")
        await asyncio.wait_for(task, 10)
        assert seen == [("ADDED", "mine"), ("MODIFIED", "mine"), ("DELETED", "mine")]


async def test_bad_token_is_unauthorized(server: RunningServer) -> None:
    config = load_client_config(server.kubeconfig)
    conf = {
        "clusters": [{"name": "c", "cluster": {**config.cluster}}],
        "users": [{"name": "u", "user": {"token": "abcdef.0123456789abcdef"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    from kubeboot.client.kubeconfig import client_config_from_dict

    async with HttpApiClient(client_config_from_dict(conf)) as client:
        with pytest.raises(Unauthorized):
            await client.get(CM, "x", "default")


async def test_unreachable_server(server: RunningServer) -> None:
    config = load_client_config(server.kubeconfig)
    await server.server.stop() if server.server else None
    async with HttpApiClient(config, timeout=2) as client:
        with pytest.raises(ApiUnreachable):
            await client.get(CM, "x", "default")


async def test_release_idle_keeps_a_watch_and_reopens_on_demand(server: RunningServer) -> None:
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as client:
        assert await client.release_idle() is False  # nothing opened yet
        await client.create(CM, _cm("idle", "a"))
        events = client.watch(CM, "default", field_selector="metadata.name=idle")
        first = await anext(events)
        assert first["type"] == "ADDED"
        # A watch is in flight: its session must survive.
        assert await client.release_idle() is False
        await client.patch(CM, "idle", {"data": {"k": "b"}}, namespace="default")
        second = await anext(events)
        assert second["object"]["data"] == {"k": "b"}
        await events.aclose()
        assert await client.release_idle() is True
        # The next request opens a new session.
        got = await client.get(CM, "idle", "default")
        assert got["data"] == {"k": "b"}


async def test_reconfigure_keeps_a_watch_and_closes_the_old_session_after_it(
    server: RunningServer,
) -> None:
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as client:
        await client.create(CM, _cm("reconf", "a"))
        events = client.watch(CM, "default", field_selector="metadata.name=reconf")
        assert (await anext(events))["type"] == "ADDED"
        old = client._session
        assert old is not None
        await client.reconfigure(load_client_config(str(server.kubeconfig)))
        # New requests use a new session; the watch goes on over the old one.
        await client.patch(CM, "reconf", {"data": {"k": "b"}}, namespace="default")
        assert client._session is not None and client._session is not old
        assert (await anext(events))["object"]["data"] == {"k": "b"}
        assert not old.closed
        await events.aclose()
        assert old.closed  # its last user is gone


async def test_no_linger_closes_the_session_when_the_last_request_ends(
    server: RunningServer,
) -> None:
    config = load_client_config(str(server.kubeconfig))
    async with HttpApiClient(config, linger=False) as client:
        await client.create(CM, _cm("nolinger", "a"))
        assert client._session is None
        events = client.watch(CM, "default", field_selector="metadata.name=nolinger")
        assert (await anext(events))["type"] == "ADDED"
        watching = client._session
        assert watching is not None
        await client.get(CM, "nolinger", "default")  # shares the watch's session
        assert client._session is watching
        await events.aclose()
        assert client._session is None
        assert watching.closed
