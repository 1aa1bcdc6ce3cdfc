"""The admin commands against a real ``kubeboot server`` process, happy and failure paths.

Commands run in-process through click's runner (``asyncio.run`` inside, as from a shell),
a few through the installed ``kubeboot`` entry point to pin the exit codes a script sees.
One server for the module; each test uses its own token descriptions / node names.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kubeboot.cli.main import cli
from kubeboot.clock import format_time
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import generate_private_key
from kubeboot.pki.pins import spki_pin
from tests.conftest import RunningServer, server_process_running

SERVING = "kubernetes.io/kubelet-serving"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # tokencleaner off: an expired token must stay around long enough to be listed.
    with server_process_running(
        tmp_path_factory.mktemp("cli") / "data", "--controllers", "*,bootstrapsigner"
    ) as running:
        yield running


def kb(cluster: RunningServer, *args: str, env: dict[str, str] | None = None) -> Result:
    """``kubeboot <args>`` with KUBECONFIG pointing at the admin kubeconfig."""
    runner = CliRunner()
    full_env = {"KUBECONFIG": str(cluster.kubeconfig), **(env or {})}
    return runner.invoke(cli, list(args), env=full_env, catch_exceptions=False)


def out(result: Result) -> str:
    return f"exit {result.exit_code}\n{result.stdout}{result.stderr}"


def token_ids(cluster: RunningServer) -> set[str]:
    listed = cluster.kubectl(
        "-n", "kube-system", "get", "secrets", "--field-selector",
        "type=bootstrap.kubernetes.io/token", "-o", "json",
    )  # fmt: skip
    return {item["metadata"]["name"].removeprefix("bootstrap-token-") for item in
            json.loads(listed.stdout)["items"]}  # fmt: skip


def secret_data(cluster: RunningServer, token_id: str) -> dict[str, str]:
    got = cluster.kubectl("-n", "kube-system", "get", "secret", f"bootstrap-token-{token_id}",
                          "-o", "json")  # fmt: skip
    data = json.loads(got.stdout)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def no_ca_kubeconfig(cluster: RunningServer, path: Path) -> Path:
    """The admin kubeconfig with its CA removed (TLS unverified instead)."""
    conf = yaml.safe_load(cluster.kubeconfig.read_text())
    cluster_entry = conf["clusters"][0]["cluster"]
    del cluster_entry["certificate-authority-data"]
    cluster_entry["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(conf))
    return path


# -- token ----------------------------------------------------------------------------------


def test_token_create_list_delete_round_trip(cluster: RunningServer) -> None:
    created = kb(cluster, "token", "create", "--ttl", "2h", "--description", "round trip")
    assert created.exit_code == 0, out(created)
    token = created.stdout.strip()
    token_id = token.split(".")[0]
    data = secret_data(cluster, token_id)
    assert data["usage-bootstrap-signing"] == "true"
    assert data["usage-bootstrap-authentication"] == "true"
    assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    assert data["description"] == "round trip"
    expires = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=118) < left <= dt.timedelta(hours=2)

    listed = kb(cluster, "token", "list")
    assert listed.exit_code == 0, out(listed)
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "TOKEN",
        "TTL",
        "EXPIRES",
        "USAGES",
        "DESCRIPTION",
        "EXTRA",
        "GROUPS",
    ]
    row = next(line for line in lines if line.startswith(token))
    assert "authentication,signing" in row
    assert "round trip" in row
    assert row.split()[1] in ("1h", "2h")
    # kubeadm's tabwriter: every column starts where the header's does
    assert row.index("authentication") == lines[0].index("USAGES")

    as_json = kb(cluster, "token", "list", "-o", "json")
    assert as_json.exit_code == 0
    assert '"apiVersion": "output.kubeadm.k8s.io/v1alpha3"' in as_json.stdout
    docs = list(yaml.safe_load_all(kb(cluster, "token", "list", "-o", "yaml").stdout))
    mine = next(d for d in docs if d["token"] == token)
    assert mine["kind"] == "BootstrapToken"
    assert mine["usages"] == ["authentication", "signing"]
    assert mine["groups"] == ["system:bootstrappers:kubeadm:default-node-token"]

    deleted = kb(cluster, "token", "delete", token)  # the full token works as well as the id
    assert deleted.exit_code == 0, out(deleted)
    assert deleted.stdout == f'bootstrap token "{token_id}" deleted\n'
    assert token_id not in token_ids(cluster)


def test_token_create_with_ttl_zero_never_expires_and_custom_usages(cluster: RunningServer) -> None:
    created = kb(cluster, "token", "create", "--ttl", "0", "--usages", "signing", "--groups", "")
    assert created.exit_code == 0, out(created)
    token = created.stdout.strip()
    data = secret_data(cluster, token.split(".")[0])
    assert "expiration" not in data
    assert "usage-bootstrap-authentication" not in data
    assert "auth-extra-groups" not in data
    row = next(r for r in kb(cluster, "token", "list").stdout.splitlines() if r.startswith(token))
    assert row.split()[1:3] == ["<forever>", "<never>"]


def test_token_create_given_token_twice_is_refused(cluster: RunningServer) -> None:
    token = "dupdup.0123456789abcdef"
    assert kb(cluster, "token", "create", token).exit_code == 0
    again = kb(cluster, "token", "create", token)
    assert again.exit_code == 1
    assert 'error: a token with id "dupdup" already exists' in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--groups", "system:nodes"], "bootstrap group 'system:nodes' is invalid"),
        (["--groups", "system:bootstrappers:ok", "--usages", "signing"], "--groups cannot be"),
        (["--usages", "signing,login"], "invalid bootstrap token usage string: login"),
        (["--ttl", "1d"], 'time: unknown unit "d" in duration "1d"'),
        (["--ttl", "-1h"], "must not be negative"),
        (["not-a-token"], 'the bootstrap token "not-a-token" was not of the form'),
    ],
)
def test_token_create_bad_flags_exit_2_before_contacting_the_server(
    cluster: RunningServer, args: list[str], message: str
) -> None:
    before = token_ids(cluster)
    result = kb(cluster, "token", "create", *args)
    assert result.exit_code == 2, out(result)
    assert message in result.stderr
    assert token_ids(cluster) == before


def test_token_delete_unknown_id_exits_1_and_stops_at_the_first_error(
    cluster: RunningServer,
) -> None:
    token = kb(cluster, "token", "create").stdout.strip()
    result = kb(cluster, "token", "delete", "zzzzzz", token)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        'error: failed to delete bootstrap token "zzzzzz": secrets "bootstrap-token-zzzzzz" '
        "not found"
    )
    assert token.split(".")[0] in token_ids(cluster)  # not reached
    bad = kb(cluster, "token", "delete", "UPPER")
    assert bad.exit_code == 2
    assert "given token didn't match pattern" in bad.stderr


def test_expired_token_is_listed_invalid_and_rejected_by_the_server(
    cluster: RunningServer, tmp_path: Path
) -> None:
    past = format_time(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bootstrap-token-exp123", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "token-id": "exp123",
            "token-secret": "0123456789abcdef",
            "expiration": past,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(secret))
    row = next(
        r for r in kb(cluster, "token", "list").stdout.splitlines() if r.startswith("exp123.")
    )
    assert row.split()[1:3] == ["<invalid>", past]

    # A kubeconfig carrying the expired token: the server answers 401, the CLI says so.
    conf = yaml.safe_load(cluster.kubeconfig.read_text())
    conf["users"][0]["user"] = {"token": "exp123.0123456789abcdef"}
    expired_conf = tmp_path / "expired.conf"
    expired_conf.write_text(yaml.safe_dump(conf))
    result = kb(cluster, "token", "list", "--kubeconfig", str(expired_conf))
    assert result.exit_code == 1
    assert "rejected the credentials in the kubeconfig (401 Unauthorized)" in result.stderr
    assert "0123456789abcdef" not in result.stderr  # never echo a secret


def test_print_join_command_pins_the_cluster_ca(cluster: RunningServer) -> None:
    result = kb(cluster, "token", "create", "--print-join-command", "--ttl", "10m")
    assert result.exit_code == 0, out(result)
    ca = x509.load_pem_x509_certificate(cluster.ca_file.read_bytes())
    endpoint = cluster.url.removeprefix("https://")
    words = result.stdout.split()
    assert words[:3] == ["kubeboot", "join", endpoint]
    assert words[words.index("--discovery-token-ca-cert-hash") + 1] == spki_pin(ca)
    assert words[words.index("--token") + 1].split(".")[0] in token_ids(cluster)


def test_token_generate_prints_a_fresh_token_without_a_server() -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["token", "generate"], env={"KUBECONFIG": "/nonexistent"})
    second = runner.invoke(cli, ["token", "generate"])
    assert first.exit_code == 0
    assert first.stdout != second.stdout
    assert len(first.stdout.strip()) == 23


# -- init, ca hash ---------------------------------------------------------------------------


def test_init_is_idempotent_and_prints_the_same_join_command(cluster: RunningServer) -> None:
    first = kb(cluster, "init")
    second = kb(cluster, "init")
    assert first.exit_code == 0, out(first)
    assert "reused (still valid)" in second.stdout
    join_first = [line for line in first.stdout.splitlines() if "kubeboot join" in line]
    join_second = [line for line in second.stdout.splitlines() if "kubeboot join" in line]
    assert join_first == join_second
    assert len(join_first) == 1


def test_ca_hash_agrees_across_file_kubeconfig_and_cluster_info(cluster: RunningServer) -> None:
    expected = spki_pin(x509.load_pem_x509_certificate(cluster.ca_file.read_bytes())) + "\n"
    assert kb(cluster, "ca", "hash", "--ca-file", str(cluster.ca_file)).stdout == expected
    assert kb(cluster, "ca", "hash").stdout == expected
    assert kb(cluster, "ca", "hash", "--cluster-info").stdout == expected


def test_kubeconfig_without_ca_data_is_refused_with_a_fix(
    cluster: RunningServer, tmp_path: Path
) -> None:
    conf = no_ca_kubeconfig(cluster, tmp_path / "noca.conf")
    before = token_ids(cluster)
    for args in (
        ["kubeconfig", "bootstrap", "--output", str(tmp_path / "b.conf")],
        ["init"],
        ["ca", "hash"],
        ["token", "create", "--print-join-command"],
    ):
        result = kb(cluster, *args, "--kubeconfig", str(conf))
        assert result.exit_code == 1, out(result)
        assert "has no certificate-authority or certificate-authority-data" in result.stderr
        assert "--embed-certs=true" in result.stderr
    assert not (tmp_path / "b.conf").exists()
    assert token_ids(cluster) == before  # refused before any token was created


def test_missing_kubeconfig_and_unreachable_server_exit_1(
    cluster: RunningServer, tmp_path: Path
) -> None:
    missing = kb(cluster, "token", "list", "--kubeconfig", str(tmp_path / "nope.conf"))
    assert missing.exit_code == 1
    assert "nope.conf does not exist" in missing.stderr
    conf = yaml.safe_load(cluster.kubeconfig.read_text())
    conf["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "down.conf").write_text(yaml.safe_dump(conf))
    down = kb(cluster, "token", "list", "--kubeconfig", str(tmp_path / "down.conf"))
    assert down.exit_code == 1
    assert "cannot reach the API server: connection refused to https://127.0.0.1:1" in down.stderr


# -- kubeconfig bootstrap -------------------------------------------------------------------


def test_kubeconfig_bootstrap_honours_config_dir_and_file_name(
    cluster: RunningServer, tmp_path: Path
) -> None:
    env = {"CONFIG_DIR": str(tmp_path / "cfg"), "FILE_NAME": "node.conf", "HOME": str(tmp_path)}
    result = kb(cluster, "kubeconfig", "bootstrap", env=env)
    assert result.exit_code == 0, out(result)
    path = tmp_path / "cfg" / "node.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conf = yaml.safe_load(path.read_text())
    assert conf["current-context"] == "tls-bootstrap-token-user@kubernetes"
    (context,) = conf["contexts"]
    assert context["context"] == {
        "cluster": "kubernetes",
        "namespace": "kube-system",
        "user": "tls-bootstrap-token-user",
    }
    (cluster_entry,) = conf["clusters"]
    assert cluster_entry["cluster"]["server"] == cluster.url
    ca_pem = base64.b64decode(cluster_entry["cluster"]["certificate-authority-data"])
    assert ca_pem == cluster.ca_file.read_bytes()
    token = conf["users"][0]["user"]["token"]
    data = secret_data(cluster, token.split(".")[0])
    expires = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
    assert expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)  # bootstrap.sh's 1h
    whoami = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=path)
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
        f"system:bootstrap:{token.split('.')[0]}"
    )

    default = kb(cluster, "kubeconfig", "bootstrap", env={"HOME": str(tmp_path / "h")})
    assert default.exit_code == 0, out(default)
    assert (tmp_path / "h" / ".kubeboot" / "config" / "bootstrap.conf").exists()


def test_kubeconfig_bootstrap_to_stdout(cluster: RunningServer) -> None:
    result = kb(cluster, "kubeconfig", "bootstrap", "--output", "-", "--ttl", "5m")
    assert result.exit_code == 0, out(result)
    conf = yaml.safe_load(result.stdout)
    assert conf["users"][0]["name"] == "tls-bootstrap-token-user"
    assert "expires" in result.stderr


# -- csr ---------------------------------------------------------------------------------------


def make_csr(cluster: RunningServer, name: str, node: str, signer: str = SERVING) -> None:
    key = generate_private_key()
    pem = build_csr(
        key,
        common_name=f"system:node:{node}",
        organizations=["system:nodes"],
        dns_names=[node],
        ips=["10.9.9.9"],
    )
    obj = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "usages": ["digital signature", "server auth"],
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(obj))


def csr_conditions(cluster: RunningServer, name: str) -> list[dict[str, str]]:
    got = json.loads(cluster.kubectl("get", "csr", name, "-o", "json").stdout)
    return list(got.get("status", {}).get("conditions") or [])


def test_csr_approve_deny_and_the_opposite_decision_is_refused(cluster: RunningServer) -> None:
    make_csr(cluster, "cli-approve-1", "cli-node-a")
    make_csr(cluster, "cli-deny-1", "cli-node-b")

    listed = kb(cluster, "csr", "list", "--node", "cli-node-a")
    assert listed.exit_code == 0, out(listed)
    assert listed.stdout.splitlines()[0].split() == [
        "NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION",
    ]  # fmt: skip
    assert [r.split()[0] for r in listed.stdout.splitlines()[1:]] == ["cli-approve-1"]
    assert listed.stdout.splitlines()[1].split()[-1] == "Pending"

    approved = kb(cluster, "csr", "approve", "cli-approve-1")
    assert approved.exit_code == 0, out(approved)
    assert approved.stdout == (
        "certificatesigningrequest.certificates.k8s.io/cli-approve-1 approved\n"
    )
    (cond,) = csr_conditions(cluster, "cli-approve-1")
    assert cond["type"] == "Approved"
    assert cond["status"] == "True"
    assert cond["reason"] == "KubebootApprove"
    assert cond["message"] == "This CSR was approved by kubeboot csr approve."
    assert cond["lastUpdateTime"]

    denied = kb(
        cluster, "csr", "deny", "--node", "cli-node-b", "--reason", "Nope", "--message", "no"
    )
    assert denied.exit_code == 0, out(denied)
    (cond,) = csr_conditions(cluster, "cli-deny-1")
    assert (cond["type"], cond["reason"], cond["message"]) == ("Denied", "Nope", "no")

    refused = kb(cluster, "csr", "approve", "cli-deny-1")
    assert refused.exit_code == 1
    assert "cli-deny-1 is already Denied and cannot be approved" in refused.stderr
    assert "send a new request" in refused.stderr
    assert [c["type"] for c in csr_conditions(cluster, "cli-deny-1")] == ["Denied"]

    refused = kb(cluster, "csr", "deny", "cli-approve-1")
    assert refused.exit_code == 1
    assert "already Approved and cannot be denied" in refused.stderr

    again = kb(cluster, "csr", "approve", "cli-approve-1")  # same decision: nothing to do
    assert again.exit_code == 0
    assert len(csr_conditions(cluster, "cli-approve-1")) >= 1

    as_json = kb(cluster, "csr", "list", "cli-approve-1", "cli-deny-1", "-o", "json")
    items = json.loads(as_json.stdout)["items"]
    assert [i["metadata"]["name"] for i in items] == ["cli-approve-1", "cli-deny-1"]


def test_csr_usage_errors_and_unknown_names(cluster: RunningServer) -> None:
    bare = kb(cluster, "csr", "approve")
    assert bare.exit_code == 2
    assert "select pending ones with --node, --signer or --all-pending" in bare.stderr
    unknown = kb(cluster, "csr", "approve", "no-such-csr")
    assert unknown.exit_code == 1
    assert '"no-such-csr" not found' in unknown.stderr
    # The progress line comes after the first list if the wait is not over by then: 3 s, so
    # that a slow first list on a loaded machine cannot use up the whole wait.
    waited = kb(cluster, "csr", "approve", "--node", "nobody", "--wait", "3s")
    assert waited.exit_code == 1
    assert "waiting for pending CSRs (node nobody)" in waited.stderr
    assert "no pending CSR matched the selection within" in waited.stderr


def test_installed_entry_point_exit_codes(cluster: RunningServer) -> None:
    """What a shell script sees: 0, 1 and 2 from the real ``kubeboot`` executable."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def run(*args: str) -> int:
        cmd = [sys.executable, "-m", "kubeboot", *args]
        return subprocess.run(cmd, env=env, capture_output=True, timeout=60).returncode

    assert run("token", "list") == 0
    assert run("token", "delete", "qqqqqq") == 1
    assert run("token", "create", "--usages", "bogus") == 2


def test_help_texts_carry_an_example() -> None:
    runner = CliRunner()
    for args in (
        ["init"], ["token", "create"], ["token", "list"], ["token", "delete"],
        ["token", "generate"], ["kubeconfig", "bootstrap"], ["csr", "list"],
        ["csr", "approve"], ["csr", "deny"], ["ca", "hash"], ["approver"],
    ):  # fmt: skip
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.stdout, args
        assert "kubeboot " in result.stdout.split("Example")[1], args


def test_csr_subject_helper_reads_the_node_name() -> None:
    from kubeboot.cli.csr import csr_node_name

    key = generate_private_key()
    pem = build_csr(key, common_name="system:node:w1", organizations=["system:nodes"])
    obj = {"spec": {"request": base64.b64encode(pem).decode()}}
    assert csr_node_name(obj) == "w1"
    parsed = x509.load_pem_x509_csr(pem)
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:w1"
    assert parsed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
