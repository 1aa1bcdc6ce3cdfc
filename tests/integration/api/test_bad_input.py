"""Bad input never crashes a request nor poisons what is stored (issue 14, "Observed on main").

Each test sends what a client once got a 500 (or a silent 201) for, checks upstream's code,
reason and message, and checks that nothing stored changed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from kubeboot.resources.schemas import coordination_v1
from tests import protowire
from tests.conftest import RunningServer
from tests.unit.pki.pki_helpers import csr_pem, make_csr

CM = "/api/v1/namespaces/default/configmaps"
NODES = "/api/v1/nodes"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
EVENTS = "/api/v1/namespaces/default/events"
CLUSTERROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
ROLEBINDINGS = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"
NAMESPACES = "/api/v1/namespaces"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


async def send(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    data: bytes | str | None = None,
    ctype: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    raw = data.encode() if isinstance(data, str) else data
    async with http.request(method, path, data=raw, headers={"Content-Type": ctype}) as resp:
        return resp.status, await resp.json(content_type=None)


def assert_status(answer: dict[str, Any], code: int, reason: str) -> None:
    assert answer["kind"] == "Status", answer
    assert answer["code"] == code, answer
    assert answer["reason"] == reason, answer


# Published into every namespace by the root-ca-cert-publisher, whenever it gets there.
_PUBLISHED = {"kube-root-ca.crt"}


async def _names(http: aiohttp.ClientSession, path: str) -> list[str]:
    async with http.get(path) as resp:
        assert resp.status == 200
        listed = json.loads(await resp.read())  # strict: a stored NaN would fail here
    return [
        item["metadata"]["name"]
        for item in listed["items"]
        if item["metadata"]["name"] not in _PUBLISHED
    ]


# ---- values that poison readers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (
            NODES,
            '{"metadata":{"name":"n1"},"status":{"daemonEndpoints":{"kubeletEndpoint":'
            '{"Port":%s}}}}',
        ),
        (LEASES, '{"metadata":{"name":"l1"},"spec":{"leaseDurationSeconds":%s}}'),
        (EVENTS, '{"metadata":{"name":"e1"},"involvedObject":{"kind":"Node"},"count":%s}'),
    ],
    ids=["node", "lease", "event"],
)
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "9223372036854775808"])
async def test_non_go_numbers_are_400_and_readers_stay_valid(
    admin_http: aiohttp.ClientSession, path: str, template: str, value: str
) -> None:
    status, answer = await send(admin_http, "POST", path, template % value)
    assert status == 400
    assert_status(answer, 400, "BadRequest")
    if value[0] in "NI-":
        assert "invalid character" in answer["message"]
    else:
        assert f"cannot unmarshal number {value} into Go struct field" in answer["message"]
    assert await _names(admin_http, path) == []


async def test_kubectl_reads_nodes_after_bad_writes(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    await send(admin_http, "POST", NODES, '{"metadata":{"name":"n1"},"status":{"capacity":NaN}}')
    good = '{"metadata":{"name":"n2"},"status":{"capacity":{"cpu":"4"}}}'
    assert (await send(admin_http, "POST", NODES, good))[0] == 201
    done = await asyncio.to_thread(server.kubectl, "get", "nodes", "-o", "json")
    listed = json.loads(done.stdout)
    assert [n["metadata"]["name"] for n in listed["items"]] == ["n2"]


# ---- decoder limits ----------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["application/json", "application/yaml"])
async def test_deep_nesting_is_400(admin_http: aiohttp.ClientSession, ctype: str) -> None:
    deep = '{"metadata":{"name":"deep"},"data":' + "[" * 20000 + "]" * 20000 + "}"
    _, answer = await send(admin_http, "POST", CM, deep, ctype)
    assert_status(answer, 400, "BadRequest")
    assert "exceeded max depth" in answer["message"]
    assert await _names(admin_http, CM) == []


async def test_deep_merge_patch_is_400(admin_http: aiohttp.ClientSession) -> None:
    assert (await send(admin_http, "POST", CM, '{"metadata":{"name":"cm"}}'))[0] == 201
    deep = '{"data":' + '{"a":' * 20000 + "1" + "}" * 20000 + "}"
    _, answer = await send(admin_http, "PATCH", f"{CM}/cm", deep, "application/merge-patch+json")
    assert_status(answer, 400, "BadRequest")
    assert "exceeded max depth" in answer["message"]


async def test_yaml_alias_bomb_is_refused(admin_http: aiohttp.ClientSession) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    bomb = "metadata: {name: bomb}\nbinaryData: {}\n" + "\n".join(lines).replace(
        "a: &a", "x1: &a", 1
    )
    assert len(bomb) < 1024
    _, answer = await send(admin_http, "POST", CM, bomb, "application/yaml")
    assert_status(answer, 400, "BadRequest")
    assert "document contains excessive aliasing" in answer["message"]
    assert await _names(admin_http, CM) == []


async def test_utf16_json_is_400(admin_http: aiohttp.ClientSession) -> None:
    body = json.dumps({"metadata": {"name": "u16"}}).encode("utf-16")
    async with admin_http.post(CM, data=body, headers={"Content-Type": "application/json"}) as r:
        answer = await r.json()
    assert_status(answer, 400, "BadRequest")
    assert "invalid character 'ÿ' looking for beginning of value" in answer["message"]


async def test_lone_surrogate_becomes_replacement_character(
    admin_http: aiohttp.ClientSession,
) -> None:
    """Go's decoder turns ``\\ud800`` into U+FFFD; so does kubeboot (it was a 500)."""
    status, created = await send(
        admin_http, "POST", CM, '{"metadata":{"name":"s"},"data":{"k":"a\\ud800b"}}'
    )
    assert status == 201, created
    assert created["data"]["k"] == "a\ufffdb"


async def test_protobuf_invalid_utf8_and_far_timestamps(admin_http: aiohttp.ClientSession) -> None:
    lease = {"metadata": {"name": "pb"}, "spec": {"holderIdentity": "x"}}
    body = bytearray(protowire.encode(lease, coordination_v1.LEASE))
    body = body.replace(b"\x0a\x01x", b"\x0a\x01\xff")  # holderIdentity's one byte
    status, created = await send(
        admin_http, "POST", LEASES, bytes(body), "application/vnd.kubernetes.protobuf"
    )
    assert status == 201, created
    assert created["spec"]["holderIdentity"] == "\ufffd"
    spec = protowire.field(4, protowire.varint_field(1, 2**40))  # renewTime, 2^40 s
    raw = protowire.field(1, protowire.field(1, b"far")) + protowire.field(2, spec)
    _, answer = await send(
        admin_http,
        "POST",
        LEASES,
        protowire.envelope("coordination.k8s.io/v1", "Lease", raw),
        "application/vnd.kubernetes.protobuf",
    )
    assert_status(answer, 400, "BadRequest")
    assert "renewTime" in answer["message"]


# ---- type errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            CM,
            '{"metadata":{"name":"b"},"binaryData":[1]}',
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '
            "array into Go struct field ConfigMap.binaryData of type map[string][]uint8",
        ),
        (
            NAMESPACES,
            '{"metadata":{"name":"x"},"spec":"x"}',
            'Namespace in version "v1" cannot be handled as a Namespace: json: cannot unmarshal '
            "string into Go struct field Namespace.spec of type v1.NamespaceSpec",
        ),
        (
            CLUSTERROLES,
            '{"metadata":{"name":"r"},"rules":5}',
            "json: cannot unmarshal number into Go struct field ClusterRole.rules of type "
            "[]v1.PolicyRule",
        ),
        (
            ROLEBINDINGS,
            '{"metadata":{"name":"rb"},"subjects":5,"roleRef":{"kind":"Role","name":"x"}}',
            "json: cannot unmarshal number into Go struct field RoleBinding.subjects of type "
            "[]v1.Subject",
        ),
        (
            CSRS,
            '{"metadata":{"name":"c"},"spec":{"usages":[{}]}}',
            "json: cannot unmarshal object into Go struct field "
            "CertificateSigningRequestSpec.spec.usages of type v1.KeyUsage",
        ),
        (
            CM,
            "[1]",
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get "
            "version/kind; json parse error: json: cannot unmarshal array into Go value of type "
            "struct { APIVersion string",
        ),
        (
            CLUSTERROLES,
            '{"metadata":{"name":"r"},"rules":[{"verbs":"get","resources":["x"]}]}',
            "json: cannot unmarshal string into Go struct field PolicyRule.rules.verbs of type "
            "[]string",
        ),
        (
            CM,
            '{"metadata":{"name":"o","ownerReferences":"x"}}',
            "json: cannot unmarshal string into Go struct field ObjectMeta.metadata."
            "ownerReferences of type []v1.OwnerReference",
        ),
        (
            CM,
            '{"metadata":{"name":"t","creationTimestamp":"yesterday"}}',
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" '
            'as "2006"',
        ),
        (
            CSRS,
            '{"metadata":{"name":"s"},"status":"approved"}',
            "json: cannot unmarshal string into Go struct field CertificateSigningRequest.status "
            "of type v1.CertificateSigningRequestStatus",
        ),
    ],
    ids=[
        "binaryData",
        "namespace-spec",
        "rules",
        "subjects",
        "usages",
        "array",
        "verbs-string",
        "owner-refs-string",
        "timestamp-yesterday",
        "csr-status-string",
    ],
)
async def test_type_errors_are_400_with_upstream_text(
    admin_http: aiohttp.ClientSession, path: str, body: str, message: str
) -> None:
    status, answer = await send(admin_http, "POST", path, body)
    assert status == 400, answer
    assert_status(answer, 400, "BadRequest")
    assert message in answer["message"]


async def test_namespace_without_a_name_is_422(admin_http: aiohttp.ClientSession) -> None:
    _, answer = await send(admin_http, "POST", NAMESPACES, '{"metadata":{}}')
    assert_status(answer, 422, "Invalid")
    assert answer["details"]["causes"][0]["field"] == "metadata.name"


async def test_approval_with_conditions_5_is_422_and_keeps_the_csr(
    admin_http: aiohttp.ClientSession,
) -> None:
    csr = {
        "metadata": {"name": "c1"},
        "spec": {
            "request": base64.b64encode(csr_pem(make_csr(cn="someone", orgs=()))).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
        },
    }
    assert (await send(admin_http, "POST", CSRS, json.dumps(csr)))[0] == 201
    async with admin_http.get(f"{CSRS}/c1") as resp:
        current = await resp.json()
    current["status"] = {"conditions": 5}
    _, answer = await send(admin_http, "PUT", f"{CSRS}/c1/approval", json.dumps(current))
    assert_status(answer, 400, "BadRequest")
    assert "CertificateSigningRequestStatus.status.conditions" in answer["message"]
    async with admin_http.get(f"{CSRS}/c1") as resp:
        assert (await resp.json())["metadata"]["resourceVersion"] == current["metadata"][
            "resourceVersion"
        ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1]", "json: cannot unmarshal array into Go value of type struct"),
        ('"x"', "json: cannot unmarshal string into Go value of type struct"),
        (
            '{"preconditions":"x"}',
            "json: cannot unmarshal string into Go struct field DeleteOptions.preconditions of "
            "type v1.Preconditions",
        ),
        ("{", "unexpected end of JSON input"),
    ],
)
async def test_bad_delete_bodies_are_400_and_delete_nothing(
    admin_http: aiohttp.ClientSession, body: str, message: str
) -> None:
    assert (await send(admin_http, "POST", CM, '{"metadata":{"name":"keep"}}'))[0] == 201
    _, answer = await send(admin_http, "DELETE", f"{CM}/keep", body)
    assert_status(answer, 400, "BadRequest")
    assert message in answer["message"]
    assert await _names(admin_http, CM) == ["keep"]


async def test_delete_options_precondition_still_works(admin_http: aiohttp.ClientSession) -> None:
    _, created = await send(admin_http, "POST", CM, '{"metadata":{"name":"pre"}}')
    wrong = json.dumps({"kind": "DeleteOptions", "preconditions": {"uid": "nope"}})
    assert (await send(admin_http, "DELETE", f"{CM}/pre", wrong))[0] == 409
    right = json.dumps({"preconditions": {"uid": created["metadata"]["uid"]}})
    assert (await send(admin_http, "DELETE", f"{CM}/pre", right))[0] == 200


# ---- fieldValidation ---------------------------------------------------------------------


async def test_strict_rejects_unknown_and_duplicate_fields_at_every_depth(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = '{"metadata":{"name":"s","name":"t","labelz":{}},"data":{"a":"b"},"extra":1}'
    _, answer = await send(admin_http, "POST", f"{CM}?fieldValidation=Strict", body)
    assert_status(answer, 400, "BadRequest")
    assert answer["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "metadata.name", unknown field "metadata.labelz", unknown field "extra"'
    )
    role = '{"metadata":{"name":"r"},"rules":[{"verbs":["get"],"resources":["x"],"verb":1}]}'
    _, answer = await send(admin_http, "POST", f"{CLUSTERROLES}?fieldValidation=Strict", role)
    assert 'unknown field "rules[0].verb"' in answer["message"]
    assert await _names(admin_http, CM) == []


async def test_warn_answers_one_warning_header_per_problem(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = '{"metadata":{"name":"w","name":"w"},"extra":"\\"q\\"","data":{"a":"b"}}'
    async with admin_http.post(
        f"{CM}?fieldValidation=Warn", data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 201
        warnings = resp.headers.getall("Warning")
        created = await resp.json()
    assert warnings == [  # in document order, as upstream
        '299 - "duplicate field \\"metadata.name\\""',
        '299 - "unknown field \\"extra\\""',
    ]
    assert "extra" not in created  # dropped, as upstream's decoder drops it


async def test_unknown_field_with_newline_never_splits_a_header(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = '{"metadata":{"name":"nl"},"x\\r\\nSet-Cookie: a=b":1}'
    async with admin_http.post(CM, data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 201
        assert "Set-Cookie" not in r.headers


async def test_field_validation_value_is_case_sensitive_422(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, answer = await send(
        admin_http, "POST", f"{CM}?fieldValidation=strict", '{"metadata":{"name":"c"}}'
    )
    assert_status(answer, 422, "Invalid")
    assert answer["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


# ---- query parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=²", 'strconv.ParseInt: parsing "²": invalid syntax'),
        ("limit=٣", 'strconv.ParseInt: parsing "٣": invalid syntax'),
        ("limit=9223372036854775808", "value out of range"),
        ("resourceVersion=²", 'strconv.ParseUint: parsing "²": invalid syntax'),
        ("resourceVersion=-1", "invalid syntax"),
        ("resourceVersion=18446744073709551616", "value out of range"),
        ("watch=1&timeoutSeconds=٣", "strconv.ParseInt"),
    ],
)
async def test_query_numbers_parse_as_go_strconv(
    admin_http: aiohttp.ClientSession, query: str, message: str
) -> None:
    async with admin_http.get(f"{CM}?{query}") as resp:
        answer = await resp.json()
    assert_status(answer, 400, "BadRequest")
    assert message in answer["message"]


async def test_continue_token_with_unicode_or_huge_revision_is_400(
    admin_http: aiohttp.ClientSession,
) -> None:
    for rv in ('"٣"', "9223372036854775808", "1e3"):
        token = base64.b64encode(
            f'{{"v":"meta.k8s.io/v1","rv":{rv},"start":"/core/configmaps/default/"}}'.encode()
        ).decode()
        async with admin_http.get(CM, params={"continue": token}) as resp:
            answer = await resp.json()
        assert_status(answer, 400, "BadRequest")


@pytest.mark.parametrize("verb", ["get", "list", "watch"])
async def test_future_resource_version_waits_then_504(
    admin_http: aiohttp.ClientSession, verb: str
) -> None:
    assert (await send(admin_http, "POST", CM, '{"metadata":{"name":"f"}}'))[0] == 201
    path = {"get": f"{CM}/f", "list": CM, "watch": CM}[verb]
    query = "resourceVersion=100000" + ("&watch=1" if verb == "watch" else "")
    started = time.monotonic()
    async with admin_http.get(f"{path}?{query}") as resp:
        answer = await resp.json()
        retry_after = resp.headers.get("Retry-After")
    assert time.monotonic() - started >= 2.5  # upstream's watch cache waits 3 s first
    assert_status(answer, 504, "Timeout")
    assert answer["message"].startswith("Timeout: Too large resource version: 100000, current: ")
    assert answer["details"]["causes"] == [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    ]
    assert answer["details"]["retryAfterSeconds"] == 1
    assert retry_after == "1"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "resourceVersionMatch=Exact",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
            "resourceVersion is provided",
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Sometimes",
            'resourceVersionMatch: Unsupported value: "Sometimes": supported values: "Exact", '
            '"NotOlderThan", ""',
        ),
    ],
)
async def test_resource_version_match_rules_are_upstreams_422(
    admin_http: aiohttp.ClientSession, query: str, detail: str
) -> None:
    async with admin_http.get(f"{CM}?{query}") as resp:
        answer = await resp.json()
    assert_status(answer, 422, "Invalid")
    assert answer["message"] == f'ListOptions.meta.k8s.io "" is invalid: {detail}'


# ---- CSR keys ----------------------------------------------------------------------------


def _csr_body(name: str, key: Any) -> str:

    builder = cx509.CertificateSigningRequestBuilder().subject_name(
        cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    pem = builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)
    return json.dumps(
        {
            "metadata": {"name": name},
            "spec": {
                "request": base64.b64encode(pem).decode(),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
            },
        }
    )


async def test_weak_csr_keys_are_422_naming_the_policy(admin_http: aiohttp.ClientSession) -> None:

    for name, key in (
        ("rsa1024", rsa.generate_private_key(65537, 1024)),  # noqa: S505 - refused
        ("k1", ec.generate_private_key(ec.SECP256K1())),
        ("dsa", dsa.generate_private_key(2048)),
    ):
        _, answer = await send(admin_http, "POST", CSRS, _csr_body(name, key))
        assert_status(answer, 422, "Invalid")
        cause = answer["details"]["causes"][0]
        assert cause["field"] == "spec.request"
        assert "public key policy: " in cause["message"]
        assert "kubeboot signs RSA keys of 2048 bits or more" in cause["message"]
    assert await _names(admin_http, CSRS) == []


async def test_ed25519_csr_is_signed(admin_http: aiohttp.ClientSession) -> None:

    body = _csr_body("ed", ed25519.Ed25519PrivateKey.generate())
    assert (await send(admin_http, "POST", CSRS, body))[0] == 201
    async with admin_http.get(f"{CSRS}/ed") as resp:
        csr = await resp.json()
    csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Test"}]}
    assert (await send(admin_http, "PUT", f"{CSRS}/ed/approval", json.dumps(csr)))[0] == 200
    for _ in range(100):
        async with admin_http.get(f"{CSRS}/ed") as resp:
            csr = await resp.json()
        if csr["status"].get("certificate"):
            break
        await asyncio.sleep(0.2)
    assert csr["status"].get("certificate"), csr["status"]


# ---- validation gaps (upstream's 422 paths and messages) ---------------------------------

_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


@pytest.mark.parametrize(
    ("path", "body", "causes"),
    [
        (
            CM,
            {"metadata": {"name": "v1", "labels": {"a" * 254 + "/b": "c"}}},
            [("metadata.labels", "prefix part must be no more than 253 bytes")],
        ),
        (
            CM,
            {"metadata": {"name": "v2", "finalizers": ["bad finalizer"]}},
            [
                ("metadata.finalizers", _QUALIFIED),
                (
                    "metadata.finalizers[0]",
                    "name is neither a standard finalizer name nor is it fully qualified",
                ),
            ],
        ),
        (
            CM,
            {
                "metadata": {
                    "name": "v3",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": "", "uid": ""}
                    ],
                }
            },
            [
                ("metadata.ownerReferences[0].name", "Required value: must not be empty"),
                ("metadata.ownerReferences[0].uid", "Required value: must not be empty"),
            ],
        ),
        (
            CM,
            {"metadata": {"name": "v5", "annotations": {"bad key!": "x"}}},
            [("metadata.annotations", _QUALIFIED)],
        ),
        (
            "/api/v1/namespaces/default/secrets",
            {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {}},
            [("data[tls.crt]", "Required value"), ("data[tls.key]", "Required value")],
        ),
        (
            LEASES,
            {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}},
            [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")],
        ),
        (
            EVENTS,
            {
                "metadata": {"name": "ev"},
                "involvedObject": {"kind": "Pod", "namespace": "other", "name": "p"},
                "reason": "R",
            },
            [
                (
                    "involvedObject.namespace",
                    'Invalid value: "other": does not match event.namespace',
                )
            ],
        ),
        (
            "/api/v1/namespaces/kube-system/events",
            {"metadata": {"name": "ev2"}, "involvedObject": {"kind": "Node", "name": "n"}},
            [("involvedObject.namespace", 'Invalid value: "": does not match event.namespace')],
        ),
    ],
    ids=[
        "label-prefix",
        "finalizer",
        "owner-refs",
        "annotation-key",
        "tls",
        "lease",
        "event",
        "event-ns",
    ],
)
async def test_validation_is_upstreams_422(
    admin_http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    causes: list[tuple[str, str]],
) -> None:
    _, answer = await send(admin_http, "POST", path, json.dumps(body))
    assert_status(answer, 422, "Invalid")
    got = [(c["field"], c["message"]) for c in answer["details"]["causes"]]
    for field, message in causes:
        assert any(f == field and message in m for f, m in got), (field, message, got)
    assert len(got) == len(causes), got
    assert body["metadata"]["name"] not in await _names(admin_http, path)


async def test_generate_name_is_cut_to_58_characters(admin_http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"generateName": "a" * 70 + "-"}}
    status, created = await send(admin_http, "POST", CM, json.dumps(body))
    assert status == 201, created
    name = created["metadata"]["name"]
    assert len(name) == 63 and name.startswith("a" * 58)
    assert created["metadata"]["generateName"] == "a" * 70 + "-"


async def test_node_events_in_default_namespace_stay_valid(
    admin_http: aiohttp.ClientSession,
) -> None:
    """What a kubelet writes: a Node's event in ``default`` with no involved namespace."""
    body = {
        "metadata": {"name": "n1.17a"},
        "involvedObject": {"kind": "Node", "name": "n1", "uid": "n1"},
        "reason": "Starting",
        "message": "Starting kubelet.",
        "source": {"component": "kubelet", "host": "n1"},
        "type": "Normal",
        "count": 1,
    }
    status, created = await send(
        admin_http, "POST", "/api/v1/namespaces/default/events", json.dumps(body)
    )
    assert status == 201, created
