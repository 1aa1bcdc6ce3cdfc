"""The differential tier: one request sequence, two servers, compared response by response.

Sequences are data (``cases/*.yaml``, format in ``tests/real/differential/README.md``). Each
runs against the real kube-apiserver and against kubeboot, step by step in lockstep, with the
same identity (admin, a bootstrap token, a node's client certificate, a user without
permissions, anonymous) and the same bytes: the CSRs and the token are made once and sent to
both. Each response is reduced to an :class:`Observation` — status code, content type, Warning
headers and the body decoded (JSON, YAML, JSON lines for watches, protobuf as a field tree,
text) with what must differ replaced by placeholders (:mod:`normalize`) — and a pair is the
same when the two observations are equal.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import http.client
import json
import re
import ssl
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from kubeboot.clock import SystemClock
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import dump_private_key_pem, generate_private_key
from kubeboot.pki.pem import encode_pem
from tests.real.controlplane import ControlPlane, wait_until
from tests.real.differential.normalize import normalize, normalize_text
from tests.real.differential.protowire import (
    ProtobufError,
    decode_k8s_protobuf,
    decode_message,
    normalize_envelopes,
)

__all__ = [
    "CASES_DIR",
    "IDENTITIES",
    "Observation",
    "PairResult",
    "RequestSequence",
    "Step",
    "load_cases",
    "prepare_plane",
    "run_sequences",
]

CASES_DIR = Path(__file__).parent / "cases"
IDENTITIES = ("admin", "bootstrap", "node", "user", "anonymous")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
NODE_NAME = "diff-node"
_VAR = re.compile(r"\$\(([a-z_][a-z0-9_]*)\)")
_REQUEST_TIMEOUT = 60.0
_UNTIL_TIMEOUT = 60.0


@dataclass(frozen=True)
class Step:
    method: str
    path: str  # may carry a query string
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # dict/list → JSON (or YAML by content type); str → sent as is
    identity: str | None = None  # overrides the sequence's
    capture: Mapping[str, str] = field(default_factory=dict)  # var → dotted path in the body
    compare: str = "full"  # full | status (code + content type only)
    ignore: tuple[str, ...] = ()  # dotted paths dropped from both bodies before comparing
    # re-send (for up to a minute) until every condition holds: a dotted path in the body is
    # set, or with a leading "!" is not ("\\." is a dot inside a key)
    until: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class RequestSequence:
    file: str
    name: str
    identity: str
    steps: tuple[Step, ...]
    namespace: bool = True  # create $(ns) first (as admin, not compared)

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:50]

    def pair_id(self, index: int) -> str:
        return f"{self.file}:{self.name}:{index + 1}"


@dataclass(frozen=True)
class Observation:
    code: int
    content_type: str
    warnings: tuple[str, ...]
    body: Any

    def render(self) -> list[str]:
        head = [f"HTTP {self.code}  Content-Type: {self.content_type or '-'}"]
        head += [f"Warning: {w}" for w in self.warnings]
        if isinstance(self.body, str):
            return head + self.body.splitlines()
        return head + json.dumps(self.body, indent=2, sort_keys=True).splitlines()


@dataclass(frozen=True)
class PairResult:
    pair_id: str
    request: str
    real: Observation
    kubeboot: Observation
    compare: str

    @property
    def same(self) -> bool:
        if self.compare == "status":
            return (self.real.code, self.real.content_type) == (
                self.kubeboot.code,
                self.kubeboot.content_type,
            )
        return self.real == self.kubeboot

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.real.render(), self.kubeboot.render(), "kube-apiserver", "kubeboot", lineterm=""
        )
        return "\n".join(lines)


# --- loading ---------------------------------------------------------------------------------


def _step(raw: Mapping[str, Any]) -> Step:
    raw = dict(raw)
    verbs = [m for m in METHODS if m in raw]
    if len(verbs) == 1:
        method, path = verbs[0], str(raw.pop(verbs[0]))
    elif not verbs and "method" in raw:
        method, path = str(raw.pop("method")).upper(), str(raw.pop("path"))
    else:
        raise ValueError(f"a step needs exactly one of {METHODS} (or method+path): {raw}")
    query = raw.pop("query", None)
    if query:
        sep = "&" if "?" in path else "?"
        path += sep + (query if isinstance(query, str) else urllib.parse.urlencode(query))
    step = Step(
        method,
        path,
        headers={str(k): str(v) for k, v in (raw.pop("headers", None) or {}).items()},
        body=raw.pop("body", None),
        identity=raw.pop("as", None),
        capture=dict(raw.pop("capture", None) or {}),
        compare=str(raw.pop("compare", "full")),
        ignore=tuple(raw.pop("ignore", None) or ()),
        until=_conditions(raw.pop("until", None)),
        note=str(raw.pop("note", "")),
    )
    if raw:
        raise ValueError(f"unknown step keys {sorted(raw)}")
    if step.compare not in ("full", "status"):
        raise ValueError(f"compare must be full or status, not {step.compare!r}")
    if step.identity is not None and step.identity not in IDENTITIES:
        raise ValueError(f"unknown identity {step.identity!r}; known: {IDENTITIES}")
    return step


def load_cases(directory: Path = CASES_DIR) -> list[RequestSequence]:
    """Every sequence of every ``*.yaml`` file, in file then document order."""
    sequences: list[RequestSequence] = []
    for path in sorted(directory.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text()) or []:
            identity = raw.get("as", "admin")
            if identity not in IDENTITIES:
                raise ValueError(f"{path.name}: unknown identity {identity!r}")
            sequences.append(
                RequestSequence(
                    path.stem,
                    str(raw["name"]),
                    identity,
                    tuple(_step(s) for s in raw["steps"]),
                    bool(raw.get("namespace", True)),
                )
            )
    names = [(s.file, s.name) for s in sequences]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate sequence names: {sorted(duplicates)}")
    return sequences


# --- shared material and per-plane clients ---------------------------------------------------


@dataclass(frozen=True)
class Material:
    """Bytes sent identically to both servers: the token and the CSRs."""

    token: str
    variables: dict[str, str]


def make_material() -> Material:
    token_id = "diffab"
    token = f"{token_id}.0123456789abcdef"
    client_csr = build_csr(
        generate_private_key(),
        common_name=f"system:node:{NODE_NAME}",
        organizations=["system:nodes"],
    )
    serving_csr = build_csr(
        generate_private_key(),
        common_name=f"system:node:{NODE_NAME}",
        organizations=["system:nodes"],
        dns_names=[NODE_NAME],
        ips=["192.0.2.10"],
    )
    other_csr = build_csr(generate_private_key(), common_name="diff-user", organizations=["diff"])
    variables = {
        "node": NODE_NAME,
        "token_id": token_id,
        "token": token,
        "client_csr": base64.b64encode(client_csr).decode(),
        "serving_csr": base64.b64encode(serving_csr).decode(),
        "user_csr": base64.b64encode(other_csr).decode(),
    }
    return Material(token, variables)


class PlaneClient:
    """HTTPS to one plane as each identity, plus the values that must be normalized there."""

    def __init__(self, plane: ControlPlane, material: Material, workdir: Path) -> None:
        self.plane = plane
        self.material = material
        workdir.mkdir(parents=True, exist_ok=True)
        self.contexts = {
            "admin": self._cert_context(workdir, "admin", "kubernetes-admin", ["system:masters"]),
            "node": self._cert_context(
                workdir, "node", f"system:node:{NODE_NAME}", ["system:nodes"]
            ),
            "user": self._cert_context(workdir, "user", "diff-user", []),
            "bootstrap": self._anonymous_context(),
            "anonymous": self._anonymous_context(),
        }
        self.captured: dict[str, str] = {}

    def _anonymous_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.plane.ca_file))

    def _cert_context(
        self, workdir: Path, name: str, common_name: str, groups: list[str]
    ) -> ssl.SSLContext:
        cert, key = self.plane.ca.issue_client_cert(
            common_name=common_name, organizations=groups, clock=SystemClock()
        )
        cert_file, key_file = workdir / f"{name}.crt", workdir / f"{name}.key"
        cert_file.write_bytes(
            encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER))
        )
        key_file.write_bytes(dump_private_key_pem(key))
        key_file.chmod(0o600)
        ctx = self._anonymous_context()
        ctx.load_cert_chain(str(cert_file), str(key_file))
        return ctx

    def replacements(self) -> dict[str, str]:
        out = {self.plane.url: "<server>", self.plane.endpoint: "<server>"}
        out |= {value: f"<{name}>" for name, value in self.captured.items()}
        return out

    def expand(self, value: Any, variables: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            return _VAR.sub(lambda m: _lookup(variables, self.captured, m.group(1)), value)
        if isinstance(value, list):
            return [self.expand(v, variables) for v in value]
        if isinstance(value, dict):
            return {self.expand(k, variables): self.expand(v, variables) for k, v in value.items()}
        return value

    def send(
        self, step: Step, identity: str, variables: Mapping[str, str]
    ) -> tuple[int, dict[str, list[str]], bytes]:
        path = self.expand(step.path, variables)
        headers = {k: self.expand(v, variables) for k, v in step.headers.items()}
        body: bytes | None = None
        if step.body is not None:
            content = self.expand(step.body, variables)
            ctype = headers.setdefault("Content-Type", "application/json")
            if isinstance(content, str):
                body = content.encode()
            elif "yaml" in ctype:
                body = yaml.safe_dump(content).encode()
            else:
                body = json.dumps(content).encode()
        if identity == "bootstrap":
            headers["Authorization"] = f"Bearer {self.material.token}"
        conn = http.client.HTTPSConnection(
            self.plane.host,
            self.plane.port,
            context=self.contexts[identity],
            timeout=_REQUEST_TIMEOUT,
        )
        try:
            conn.request(step.method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            got: dict[str, list[str]] = {}
            for key, value in resp.getheaders():
                got.setdefault(key.lower(), []).append(value)
            return resp.status, got, data
        finally:
            conn.close()

    def capture(self, step: Step, body: Any) -> None:
        for name, dotted in step.capture.items():
            value = _dig(body, dotted)
            if not isinstance(value, str):
                raise ValueError(f"[{self.plane.flavor}] capture {name}: {dotted} is {value!r}")
            self.captured[name] = value


def _lookup(variables: Mapping[str, str], captured: Mapping[str, str], name: str) -> str:
    if name in captured:
        return captured[name]
    if name in variables:
        return variables[name]
    raise KeyError(f"unknown variable $({name})")


def _conditions(raw: Any) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(str(c) for c in raw) if isinstance(raw, list) else (str(raw),)


def _holds(body: Any, condition: str) -> bool:
    if condition.startswith("!"):
        return not _dig(body, condition[1:])
    return bool(_dig(body, condition))


_DOT = re.compile(r"(?<!\\)\.")


def _dig(body: Any, dotted: str) -> Any:
    for part in (p.replace("\\.", ".") for p in _DOT.split(dotted)):
        if isinstance(body, list) and part.isdigit():
            body = body[int(part)] if int(part) < len(body) else None
        elif isinstance(body, dict):
            body = body.get(part)
        else:
            return None
    return body


def _drop(body: Any, dotted: str) -> None:
    head, _, last = dotted.rpartition(".")
    parent = _dig(body, head) if head else body
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and last == "*":
        parent.clear()


# --- decoding and observing ------------------------------------------------------------------


def decode_body(content_type: str, data: bytes) -> Any:
    """The body as a comparable value (raw, before normalization)."""
    if not data:
        return ""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "application/json" and "stream=watch" in content_type:
            return [json.loads(line) for line in data.splitlines() if line.strip()]
        if media == "application/json" or media.endswith("+json"):
            return _json_or_lines(data)
        if media in ("application/yaml", "application/x-yaml"):
            return {"yaml": yaml.safe_load(data)}
        if media == "application/vnd.kubernetes.protobuf":
            if "stream=watch" in content_type:
                return {"protobuf-stream": normalize_envelopes(_protobuf_frames(data))}
            return {"protobuf": normalize_envelopes(decode_k8s_protobuf(data))}
    except (ValueError, yaml.YAMLError, ProtobufError) as exc:
        return f"<undecodable {media}: {exc}>\n{data[:2000].decode(errors='replace')}"
    return data.decode(errors="replace")


def _json_or_lines(data: bytes) -> Any:
    """One JSON document, or a JSON watch (kube-apiserver answers a JSON watch as plain
    ``application/json``, one event per line)."""
    try:
        return json.loads(data)
    except ValueError:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [json.loads(line) for line in lines]


def _protobuf_frames(data: bytes) -> list[Any]:
    frames: list[Any] = []
    pos = 0
    while pos + 4 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        try:
            frames.append(decode_k8s_protobuf(chunk))
        except ProtobufError:
            frames.append(decode_message(chunk))
    return frames


def observe(
    code: int,
    headers: Mapping[str, list[str]],
    raw_body: Any,
    step: Step,
    replacements: Mapping[str, str],
) -> Observation:
    content_type = (headers.get("content-type") or [""])[0]
    body = normalize(raw_body, replacements)
    for dotted in step.ignore:
        _drop(body, dotted)
    warnings = tuple(normalize_text(w, replacements) for w in headers.get("warning", []))
    return Observation(code, content_type, warnings, body)


# --- running ---------------------------------------------------------------------------------


def prepare_plane(plane: ControlPlane, material: Material) -> None:
    """Same starting state on both: only the shared bootstrap token, cluster-info signed for it."""
    secrets_out = plane.kubectl(
        "get",
        "secrets",
        "-n",
        "kube-system",
        "--field-selector",
        "type=bootstrap.kubernetes.io/token",
        "-o",
        "name",
    ).stdout.split()
    for name in secrets_out:
        plane.kubectl("delete", "-n", "kube-system", name)
    token_id = material.token.split(".")[0]
    plane.create_token(token=material.token, ttl=None, description="differential tier")
    plane.wait_for_jws(material.token)

    def only_shared() -> bool:
        info = json.loads(
            plane.kubectl(
                "get", "configmap", "-n", "kube-public", "cluster-info", "-o", "json"
            ).stdout
        )
        keys = [k for k in info.get("data", {}) if k.startswith("jws-kubeconfig-")]
        return keys == [f"jws-kubeconfig-{token_id}"]

    wait_until(
        only_shared, "cluster-info signed for the shared token only", timeout=120, logs=plane.logs
    )


def _wait_for_root_ca(plane: ControlPlane, namespace: str) -> None:
    def published() -> bool:
        got = plane.kubectl("get", "configmap", "-n", namespace, "kube-root-ca.crt", check=False)
        return got.returncode == 0

    wait_until(published, f"kube-root-ca.crt in {namespace}", timeout=60, logs=plane.logs)


@contextlib.contextmanager
def _namespace(clients: Sequence[PlaneClient], name: str) -> Iterator[None]:
    """``name`` on both planes, each with its ``kube-root-ca.crt`` already published: the
    publishers (kube-controller-manager's, kubeboot's) run on their own time, and a first
    list of ConfigMaps would otherwise show it on one side only."""
    for client in clients:
        client.plane.kubectl("create", "namespace", name)
    for client in clients:
        _wait_for_root_ca(client.plane, name)
    try:
        yield
    finally:
        for client in clients:
            client.plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _exchange(
    client: PlaneClient, step: Step, identity: str, variables: Mapping[str, str]
) -> tuple[int, dict[str, list[str]], Any]:
    """Send the step; with ``until``, again until its conditions hold (or a minute passed)."""
    deadline = time.monotonic() + _UNTIL_TIMEOUT
    while True:
        code, headers, data = client.send(step, identity, variables)
        raw = decode_body((headers.get("content-type") or [""])[0], data)
        if all(_holds(raw, c) for c in step.until) or time.monotonic() > deadline:
            return code, headers, raw
        time.sleep(0.5)


def run_sequence(
    sequence: RequestSequence, real: PlaneClient, kubeboot: PlaneClient, material: Material
) -> list[PairResult]:
    variables = dict(material.variables)
    variables["ns"] = f"diff-{sequence.slug}"[:63].rstrip("-")
    for client in (real, kubeboot):
        client.captured = {}
    results: list[PairResult] = []
    scope = (
        _namespace((real, kubeboot), variables["ns"])
        if sequence.namespace
        else contextlib.nullcontext()
    )
    with scope:
        for index, step in enumerate(sequence.steps):
            identity = step.identity or sequence.identity
            observations: list[Observation] = []
            for client in (real, kubeboot):
                code, headers, raw = _exchange(client, step, identity, variables)
                if step.capture and 200 <= code < 300:
                    client.capture(step, raw)
                observations.append(observe(code, headers, raw, step, client.replacements()))
            request = f"{step.method} {step.path} as {identity}"
            results.append(
                PairResult(
                    sequence.pair_id(index), request, observations[0], observations[1], step.compare
                )
            )
    return results


def run_sequences(
    sequences: Sequence[RequestSequence],
    real: PlaneClient,
    kubeboot: PlaneClient,
    material: Material,
) -> list[PairResult]:
    results: list[PairResult] = []
    for sequence in sequences:
        results += run_sequence(sequence, real, kubeboot, material)
    return results
