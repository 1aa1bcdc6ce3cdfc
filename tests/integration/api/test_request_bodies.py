"""Request bodies are read whole, in every encoding and transfer coding, up to 3 MiB (issue 14).

Before: a body was read with one ``read()`` and parsed as far as it had arrived — a 900 KB
YAML ConfigMap was stored with 138 of its 180 keys, the same object as JSON failed with
"Unterminated string", and a 5 MiB chunked body got "the request body is empty".
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

from kubeboot.resources.schemas import rbac_v1
from tests import protowire

CM = "/api/v1/namespaces/default/configmaps"
CLUSTERROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
MIB = 1024 * 1024
_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "protobuf": "application/vnd.kubernetes.protobuf",
}


def _role(name: str, rules: int) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {
                "verbs": ["get"],
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [f"n-{i:08d}"],
            }
            for i in range(rules)
        ],
    }


def _encode(obj: dict[str, Any], encoding: str) -> bytes:
    if encoding == "json":
        return json.dumps(obj).encode()
    if encoding == "yaml":
        return yaml.dump(obj, Dumper=yaml.CSafeDumper).encode()
    return protowire.encode(obj, rbac_v1.CLUSTER_ROLE)


def _sized(name: str, size: int, encoding: str) -> tuple[dict[str, Any], bytes]:
    """A ClusterRole (RBAC has no size limit of its own) whose body is about ``size`` bytes."""
    one, two = (len(_encode(_role(name, n), encoding)) for n in (1, 2))
    role = _role(name, (size - one) // (two - one) + 1)
    return role, _encode(role, encoding)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 64 * 1024):
        yield data[i : i + 64 * 1024]


async def _post(
    http: aiohttp.ClientSession, path: str, data: bytes, ctype: str, chunked: bool
) -> tuple[int, dict[str, Any]]:
    payload: Any = _chunks(data) if chunked else io.BytesIO(data)
    async with http.post(path, data=payload, headers={"Content-Type": ctype}) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("encoding", list(_TYPES))
@pytest.mark.parametrize("mib", [0.9, 1.5, 2.9])
async def test_bodies_under_the_limit_are_stored_whole(
    admin_http: aiohttp.ClientSession, mib: float, encoding: str, chunked: bool
) -> None:
    role, body = _sized("big", int(mib * MIB), encoding)
    assert int((mib - 0.05) * MIB) < len(body) < 3 * MIB
    status, created = await _post(admin_http, CLUSTERROLES, body, _TYPES[encoding], chunked)
    assert status == 201, created
    async with admin_http.get(f"{CLUSTERROLES}/big") as resp:
        stored = await resp.json()
    assert len(stored["rules"]) == len(role["rules"])
    assert stored["rules"][-1]["resourceNames"] == role["rules"][-1]["resourceNames"]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("encoding", list(_TYPES))
@pytest.mark.parametrize("mib", [3.1, 5])
async def test_bodies_over_the_limit_are_413_and_store_nothing(
    admin_http: aiohttp.ClientSession, mib: float, encoding: str, chunked: bool
) -> None:
    _, body = _sized("huge", int(mib * MIB), encoding)
    assert len(body) > 3 * MIB
    status, answer = await _post(admin_http, CLUSTERROLES, body, _TYPES[encoding], chunked)
    assert status == 413
    assert answer["reason"] == "RequestEntityTooLarge"
    assert answer["message"] == "Request entity too large: limit is 3145728"
    async with admin_http.get(f"{CLUSTERROLES}/huge") as resp:
        assert resp.status == 404


async def test_900k_yaml_configmap_keeps_every_key(admin_http: aiohttp.ClientSession) -> None:
    data = {f"key-{i:03d}": "v" * 5000 for i in range(180)}
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "wide"},
        "data": data,
    }
    for encoding, ctype in (("yaml", "application/yaml"), ("json", "application/json")):
        cm["metadata"]["name"] = f"wide-{encoding}"
        body = yaml.safe_dump(cm).encode() if encoding == "yaml" else json.dumps(cm).encode()
        status, created = await _post(admin_http, CM, body, ctype, chunked=False)
        assert status == 201, created
        assert created["data"] == data
        async with admin_http.get(f"{CM}/wide-{encoding}") as resp:
            assert (await resp.json())["data"] == data


async def test_over_one_mib_configmap_is_422_too_long(admin_http: aiohttp.ClientSession) -> None:
    """Read whole, then refused by upstream's 1 MiB ConfigMap limit (not a parse error)."""
    cm = {"metadata": {"name": "toolong"}, "data": {"a": "x" * (2 * MIB)}}
    status, answer = await _post(admin_http, CM, json.dumps(cm).encode(), "application/json", True)
    assert status == 422, answer
    assert answer["details"]["causes"][0]["reason"] == "FieldValueTooLong"


async def test_configmap_limit_counts_value_bytes_as_upstream(
    admin_http: aiohttp.ClientSession,
) -> None:
    """ValidateConfigMap adds the values' bytes: binaryData decoded (1 MiB of bytes is ~1.33 MiB
    of base64), multi-byte UTF-8 counted in bytes, keys not at all. Found with real kubectl
    ``create configmap --from-file`` of a 1,000,000-byte binary file (201 upstream)."""
    exact = base64.b64encode(b"\x00" * MIB).decode()
    for name, cm in (
        ("binary-exact", {"binaryData": {"k" * 200: exact}}),
        ("mixed-exact", {"data": {"k" * 200: "x" * (MIB - 4)}, "binaryData": {"b": "AAECAw=="}}),
    ):
        body = json.dumps({"metadata": {"name": name}, **cm}).encode()
        status, answer = await _post(admin_http, CM, body, "application/json", False)
        assert status == 201, (name, answer)
    over = {"data": {"a": "é" * (MIB // 2) + "x"}}  # MIB + 1 bytes, MIB/2 + 1 characters
    body = json.dumps({"metadata": {"name": "utf8-over"}, **over}, ensure_ascii=False).encode()
    status, answer = await _post(admin_http, CM, body, "application/json", False)
    assert status == 422, answer
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueTooLong",
            "message": "Too long: may not be more than 1048576 bytes",
            "field": "[]",
        }
    ]
    assert answer["message"] == (
        'ConfigMap "utf8-over" is invalid: []: Too long: may not be more than 1048576 bytes'
    )


async def test_gzip_body_is_decompressed_and_bounded(admin_http: aiohttp.ClientSession) -> None:
    cm = {"metadata": {"name": "zipped"}, "data": {"a": "b"}}
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with admin_http.post(
        CM, data=io.BytesIO(gzip.compress(json.dumps(cm).encode())), headers=headers
    ) as resp:
        assert resp.status == 201, await resp.text()
    # 4 MiB of zeros compress to a few KiB; the limit counts decompressed bytes.
    bomb = gzip.compress(b'{"metadata":{"name":"bomb"},"data":{"a":"' + b"0" * (4 * MIB) + b'"}}')
    async with admin_http.post(CM, data=io.BytesIO(bomb), headers=headers) as resp:
        assert resp.status == 413
    async with admin_http.post(CM, data=b"\x1f\x8bnot gzip", headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["reason"] == "BadRequest"


async def test_empty_body_says_what_to_send(admin_http: aiohttp.ClientSession) -> None:
    async with admin_http.post(CM, data=b"", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert "ConfigMap" in (await resp.json())["message"]
