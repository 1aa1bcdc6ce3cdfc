"""Audit log, impersonation and anonymous CIDRs against the real server, kubectl included.

The audit log is read back after real requests (good token, wrong token, a throttled source,
``kubectl create``, a watch, ``kubectl --as``) and checked field by field; no presented
credential may appear anywhere in it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from kubeboot.api.server.serve import Server
from kubeboot.cli.server import server as server_command
from kubeboot.resources import bootstrap_token as bt
from tests.conftest import (
    RunningServer,
    admin_ssl_context,
    anonymous_ssl_context,
    in_process_server,
    start_server_process,
    token_kubeconfig,
)

STATIC_TOKEN = "st4tic-t0ken-Qx81"  # a test credential that must never be logged
WRONG_TOKEN = "wr0ng-t0ken-Zk27"
BOOTSTRAP = "abcdef.0123456789abcdef"
SECRETS = "/api/v1/namespaces/kube-system/secrets"
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@dataclass
class Audited:
    running: RunningServer
    srv: Server
    log: Path

    async def events(self) -> list[dict[str, Any]]:
        assert self.srv.security is not None and self.srv.security.audit_log is not None
        await asyncio.to_thread(self.srv.security.audit_log.wait_written)
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[Audited]:
    tokens = tmp_path / "token.csv"
    tokens.write_text(f'{STATIC_TOKEN},ops,uid-ops,"ops-team"\n')
    log = tmp_path / "audit" / "audit.log"
    async with in_process_server(
        tmp_path / "data",
        token_auth_file=tokens,
        audit_log_path=log,
        failed_auth_burst=3,
        failed_auth_rate=0.01,
    ) as running:
        assert running.server is not None
        yield Audited(running, running.server, log)


async def _get(
    running: RunningServer,
    path: str,
    *,
    token: str | None = None,
    admin: bool = False,
    local: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    ctx = admin_ssl_context(running) if admin else anonymous_ssl_context(running)
    connector = aiohttp.TCPConnector(ssl=ctx, local_addr=(local, 0) if local else None)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(running.url + path, headers=hdrs) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


def _one(events: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [e for e in events if all(e.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


async def test_audit_log_records_requests_without_credentials(audited: Audited) -> None:
    running = audited.running
    status, headers, _ = await _get(
        running, SECRETS, token=STATIC_TOKEN, headers={"User-Agent": "probe/1"}
    )
    assert status == 403  # ops may not list secrets; audited all the same
    good_id = headers["Audit-ID"]
    assert (await _get(running, "/api", token=WRONG_TOKEN))[0] == 401
    for _ in range(4):  # burst 3, then the source is throttled
        code = (await _get(running, "/api", token=WRONG_TOKEN, local="127.0.0.3"))[0]
    assert code == 429
    secret = bt.build_secret(BOOTSTRAP, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    await asyncio.to_thread(running.kubectl, "create", "-f", "-", input=json.dumps(secret))
    await asyncio.to_thread(
        running.kubectl, "create", "configmap", "audited", "-n", "default", "--from-literal=k=v"
    )
    deadline = time.monotonic() + 5
    while (await _get(running, "/api", token=BOOTSTRAP))[0] != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    watch = "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    assert (await _get(running, watch, admin=True))[0] == 200
    status, headers, _ = await _get(running, watch, token=WRONG_TOKEN)
    assert status == 401
    bad_watch_id = headers["Audit-ID"]

    events = await audited.events()
    text = audited.log.read_text()
    for secret_text in (STATIC_TOKEN, WRONG_TOKEN, BOOTSTRAP, BOOTSTRAP.split(".")[1]):
        assert secret_text not in text
    for event in events:
        assert event["kind"] == "Event" and event["apiVersion"] == "audit.k8s.io/v1"
        assert event["level"] == "Metadata"
        assert MICRO.match(event["requestReceivedTimestamp"])
        assert MICRO.match(event["stageTimestamp"])
        assert event["stageTimestamp"] >= event["requestReceivedTimestamp"]
        assert event["sourceIPs"][0].startswith("127.0.0.")

    good = _one(events, auditID=good_id)
    assert good["stage"] == "ResponseComplete"
    assert good["verb"] == "list"
    assert good["requestURI"] == SECRETS
    assert good["userAgent"] == "probe/1"
    assert good["user"] == {
        "username": "ops",
        "uid": "uid-ops",
        "groups": ["ops-team", "system:authenticated"],
    }
    assert good["objectRef"] == {
        "resource": "secrets",
        "namespace": "kube-system",
        "apiVersion": "v1",
    }
    assert good["responseStatus"]["code"] == 403
    assert good["responseStatus"]["reason"] == "Forbidden"

    failed = [e for e in events if e["responseStatus"].get("code") == 401]
    assert len(failed) == 5  # two from 127.0.0.1, three from 127.0.0.3 before the 429
    bad_watch = _one(events, auditID=bad_watch_id)  # one event, though a watch was asked for
    assert bad_watch["verb"] == "watch"
    assert bad_watch["objectRef"] == {
        "resource": "configmaps",
        "namespace": "default",
        "apiVersion": "v1",
    }
    for event in failed:
        assert event["stage"] == "ResponseStarted"  # upstream's failed-authentication audit
        assert event["user"] == {}
        assert event["responseStatus"]["message"] == "Authentication failed, attempted: bearer"
    throttled = _one(events, sourceIPs=["127.0.0.3"], stage="ResponseComplete")
    assert throttled["responseStatus"]["code"] == 429
    assert throttled["responseStatus"]["reason"] == "TooManyRequests"

    created = _one(
        events,
        verb="create",
        objectRef={"resource": "configmaps", "namespace": "default", "apiVersion": "v1"},
    )
    assert created["user"]["username"] == "kubernetes-admin"
    assert created["userAgent"].startswith("kubectl/")
    assert created["responseStatus"]["code"] == 201

    bootstrapped = [e for e in events if e["user"].get("username") == "system:bootstrap:abcdef"]
    assert bootstrapped and bootstrapped[-1]["responseStatus"]["code"] == 200

    watches = [e for e in events if e["verb"] == "watch" and e["user"]]
    assert [e["stage"] for e in watches] == ["ResponseStarted", "ResponseComplete"]
    assert watches[0]["auditID"] == watches[1]["auditID"]
    assert all(e["responseStatus"]["code"] == 200 for e in watches)


async def test_kubectl_as_works_for_admins_and_is_refused_to_a_join_token(
    audited: Audited,
) -> None:
    running = audited.running
    who = await asyncio.to_thread(
        running.kubectl, "auth", "whoami", "--as=jane", "--as-group=devs", "-o", "json"
    )
    assert json.loads(who.stdout)["status"]["userInfo"] == {
        "username": "jane",
        "groups": ["devs", "system:authenticated"],
    }
    as_master = await asyncio.to_thread(
        running.kubectl,
        "get",
        "secrets",
        "-n",
        "kube-system",
        "--as=jane",
        "--as-group=system:masters",
    )
    assert as_master.returncode == 0
    made = await asyncio.to_thread(  # a body behind the impersonation: the request is re-made
        running.kubectl,
        "create",
        "configmap",
        "by-jane",
        "--from-literal=k=v",
        "--as=jane",
        "--as-group=system:masters",
        "-o",
        "jsonpath={.metadata.name}",
    )
    assert made.stdout == "by-jane"
    as_jane = await asyncio.to_thread(
        running.kubectl, "get", "secrets", "-n", "kube-system", "--as=jane", check=False
    )
    assert as_jane.returncode != 0
    assert 'User "jane" cannot list resource "secrets"' in as_jane.stderr

    secret = bt.build_secret(BOOTSTRAP, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    await asyncio.to_thread(running.kubectl, "create", "-f", "-", input=json.dumps(secret))
    joiner = token_kubeconfig(running, BOOTSTRAP)
    deadline = time.monotonic() + 5
    while True:
        refused = await asyncio.to_thread(
            running.kubectl,
            "get",
            "csr",
            "--as=kubernetes-admin",
            "--as-group=system:masters",
            check=False,
            kubeconfig=joiner,
        )
        if "Unauthorized" not in refused.stderr or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert refused.returncode != 0
    assert (
        'users "kubernetes-admin" is forbidden: User "system:bootstrap:abcdef" cannot '
        'impersonate resource "users" in API group "" at the cluster scope'
    ) in refused.stderr

    events = await audited.events()
    impersonated = [e for e in events if "impersonatedUser" in e]
    assert impersonated
    whoami = _one(
        impersonated,
        verb="create",
        objectRef={
            "resource": "selfsubjectreviews",
            "apiGroup": "authentication.k8s.io",
            "apiVersion": "v1",
        },
    )
    assert whoami["user"]["username"] == "kubernetes-admin"
    assert whoami["impersonatedUser"] == {
        "username": "jane",
        "groups": ["devs", "system:authenticated"],
    }
    denied = [
        e
        for e in events
        if e["user"].get("username") == "system:bootstrap:abcdef"
        and e["responseStatus"].get("code") == 403
    ]
    assert denied and "impersonatedUser" not in denied[-1]
    assert BOOTSTRAP not in audited.log.read_text()


@pytest.fixture
async def lan_only(tmp_path: Path) -> AsyncIterator[RunningServer]:
    tokens = tmp_path / "token.csv"
    tokens.write_text(f"{STATIC_TOKEN},ops,uid-ops\n")
    async with in_process_server(
        tmp_path / "data", token_auth_file=tokens, anonymous_allowed_cidrs=("127.0.0.2/32",)
    ) as running:
        yield running


async def test_anonymous_requests_only_from_allowed_cidrs(lan_only: RunningServer) -> None:
    assert (await _get(lan_only, "/healthz", local="127.0.0.2"))[0] == 200
    status, _, body = await _get(lan_only, "/healthz", local="127.0.0.1")
    assert status == 401
    message = json.loads(body)["message"]
    assert message.startswith("anonymous requests are not accepted from 127.0.0.1")
    assert "--anonymous-allowed-cidrs=127.0.0.2/32" in message
    assert (await _get(lan_only, "/healthz", token=STATIC_TOKEN, local="127.0.0.1"))[0] == 200
    assert (await _get(lan_only, "/healthz", admin=True, local="127.0.0.1"))[0] == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--anonymous-allowed-cidrs", "10.0.0.0/8,bogus"], '"bogus" is not a CIDR'),
        (["--anonymous-rate", "0"], "needs --anonymous-rate > 0"),
        (["--failed-auth-burst", "0"], "needs --failed-auth-rate > 0 and --failed-auth-burst >= 1"),
        (["--audit-log-maxsize", "-1"], "-1 is not in the range x>=0"),
        (["--audit-policy-file", "POLICY"], "level RequestResponse is not supported"),
    ],
)
def test_bad_flags_are_refused_before_start(tmp_path: Path, args: list[str], message: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
    )
    args = [str(policy) if a == "POLICY" else a for a in args]
    result = CliRunner().invoke(server_command, ["--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "d").exists()


def test_the_command_line_wires_audit_and_cidrs(tmp_path: Path) -> None:
    """``kubeboot server`` as a process: the flags reach the server."""
    log = tmp_path / "audit.log"
    running = start_server_process(
        tmp_path / "data",
        "--audit-log-path",
        str(log),
        "--audit-log-maxsize",
        "1",
        "--audit-log-maxbackup",
        "2",
        "--anonymous-allowed-cidrs",
        "10.0.0.0/8",
    )
    assert running.process is not None
    try:
        ctx = ssl.create_default_context(cafile=str(running.ca_file))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(running.url + "/healthz", context=ctx, timeout=10)  # noqa: S310
        with err.value as response:
            assert response.code == 401
            assert b"--anonymous-allowed-cidrs=10.0.0.0/8" in response.read()
        deadline = time.monotonic() + 10
        while not (log.exists() and log.read_text().strip()):
            assert time.monotonic() < deadline, "no audit line was written"
            time.sleep(0.05)
        event = json.loads(log.read_text().splitlines()[-1])
        assert event["requestURI"] == "/healthz"
        assert event["responseStatus"]["code"] == 401
        assert event["stage"] == "ResponseStarted"
    finally:
        running.process.kill()
        running.process.wait()


POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: None
  users: ["system:anonymous"]
  namespaces: ["kube-public"]
- level: Metadata
  verbs: ["watch"]
  omitStages: [ResponseStarted]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
"""


async def test_an_audit_policy_file_decides_what_is_logged(tmp_path: Path) -> None:
    """The upstream shape of policy: quiet health checks and discovery, secrets logged."""
    policy, log = tmp_path / "policy.yaml", tmp_path / "audit.log"
    policy.write_text(POLICY)
    async with in_process_server(
        tmp_path / "data", audit_log_path=log, audit_policy_file=policy
    ) as running:
        assert running.server is not None
        audited = Audited(running, running.server, log)
        assert (await _get(running, "/healthz"))[0] == 200
        assert (await _get(running, "/version", admin=True))[0] == 200
        info = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
        assert (await _get(running, info))[0] == 200
        assert (await _get(running, SECRETS, admin=True))[0] == 200
        assert (await _get(running, "/api/v1/namespaces", admin=True))[0] == 200  # no rule
        status, headers, _ = await _get(running, SECRETS + "?watch=1&timeoutSeconds=1", admin=True)
        assert status == 200 and headers["Audit-ID"]
        events = await audited.events()
        logged = [(e["requestURI"], e["stage"]) for e in events]
        assert logged == [
            (SECRETS, "ResponseComplete"),
            (SECRETS + "?watch=1&timeoutSeconds=1", "ResponseComplete"),
        ], logged
        assert all(e["level"] == "Metadata" for e in events)
