"""Every upstream flag spelling of ``kubeboot.cli.upstreamflags`` through the real command.

The table in ``src/kubeboot/cli/upstreamflags.py`` (rendered into docs/flags.md) is the list;
``CASES`` here has one check per spelling, and a spelling without a check fails
``test_every_spelling_has_a_check``. Each check parses the command line with the command's own
parser (``make_context``: pflag rules, types, aliases) and asserts the *effect*: the server's
``ServerConfig``, the agent's plan, join's spec — what the flag means, not that it exits 0.
Refused spellings go through ``kubeboot`` itself and must exit 2 saying why. What a flag does
at run time (a server refusing anonymous requests, the insecure group approver, Krustlet's
files, ``join --no-daemon`` giving up) is checked against real processes in
``test_upstream_behaviour.py``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeboot.api.server.config import ServerConfig
from kubeboot.cli.agent import AgentPlan, agent, given_on, resolve_agent
from kubeboot.cli.join import JoinSpec, join, join_spec
from kubeboot.cli.main import cli
from kubeboot.cli.server import server, server_config
from kubeboot.cli.upstreamflags import UPSTREAM_FLAGS, UpstreamFlag
from kubeboot.pki.keys import dump_private_key_pem
from tests.unit.agent.agent_ca import NodeCA

TOKEN = "abcdef.0123456789abcdef"
TOKEN2 = "ghijkl.0123456789abcdef"
PIN = "sha256:" + "ab" * 32
PIN2 = "sha256:" + "cd" * 32


def server_cfg(tmp: Path, *args: str) -> tuple[ServerConfig, list[str]]:
    ctx = server.make_context("server", ["--data-dir", str(tmp / "data"), *args])
    return server_config(ctx.params), list(ctx.meta.get("kubeboot.deprecations", []))


def agent_plan(tmp: Path, *args: str, env: dict[str, str] | None = None) -> AgentPlan:
    ctx = agent.make_context("agent", list(args))
    environ = {"HOME": str(tmp / "home"), **(env or {})}
    return resolve_agent(
        ctx.params,
        given_on(ctx),
        environ,
        default_hostname=lambda: "Node-A",
        resolve_ip=lambda _h: "192.0.2.7",
    )


def join_of(*args: str) -> JoinSpec:
    ctx = join.make_context("join", list(args))
    return join_spec(ctx.params, given_on(ctx))


def refused(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def pem_files(tmp: Path) -> tuple[Path, Path]:
    ca = NodeCA()
    cert, key = tmp / "ca.crt", tmp / "ca.key"
    cert.write_bytes(ca.pem)
    key.write_bytes(dump_private_key_pem(ca.key))
    return cert, key


Check = Callable[[Path], None]
CASES: dict[str, Check] = {}


def case(spelling: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        assert spelling not in CASES, spelling
        CASES[spelling] = check
        return check

    return register


# -- kube-apiserver ---------------------------------------------------------------------------


@case("--enable-bootstrap-token-auth=true")
def _(tmp: Path) -> None:
    assert server_cfg(tmp, "--enable-bootstrap-token-auth=true")[0].enable_bootstrap_token_auth
    assert not server_cfg(tmp, "--enable-bootstrap-token-auth=false")[0].enable_bootstrap_token_auth
    assert not server_cfg(tmp, "--enable-bootstrap-token-auth=0")[0].enable_bootstrap_token_auth


@case("--anonymous-auth=false")
def _(tmp: Path) -> None:
    assert server_cfg(tmp)[0].anonymous_auth
    assert not server_cfg(tmp, "--anonymous-auth=false")[0].anonymous_auth
    assert not server_cfg(tmp, "--anonymous_auth=FALSE")[0].anonymous_auth  # WordSepNormalize
    assert not server_cfg(tmp, "--no-anonymous-auth")[0].anonymous_auth


@case("--token-auth-file=FILENAME")
def _(tmp: Path) -> None:
    tokens = tmp / "tokens.csv"
    tokens.write_text(
        '02b50b05283e98dd0fd71db496ef01e8,kubelet-bootstrap,10001,"system:bootstrappers"\n'
    )
    assert server_cfg(tmp, f"--token-auth-file={tokens}")[0].token_auth_file == tokens


@case("--client-ca-file=FILENAME")
def _(tmp: Path) -> None:
    cert, _ = pem_files(tmp)
    assert server_cfg(tmp, f"--client-ca-file={cert}")[0].client_ca_file == cert


@case("--authorization-mode=Node,RBAC")
def _(tmp: Path) -> None:
    assert server_cfg(tmp, "--authorization-mode=Node,RBAC")[0].authorization_mode == (
        "Node",
        "RBAC",
    )


@case("--tls-cert-file / --tls-private-key-file")
def _(tmp: Path) -> None:
    cert, key = pem_files(tmp)
    config, _ = server_cfg(tmp, f"--tls-cert-file={cert}", f"--tls-private-key-file={key}")
    assert (config.tls_cert_file, config.tls_private_key_file) == (cert, key)


@case("--secure-port=6443 --bind-address=0.0.0.0 --advertise-address=IP")
def _(tmp: Path) -> None:
    config, _ = server_cfg(
        tmp, "--secure-port=6444", "--bind-address=127.0.0.1", "--advertise-address=10.0.0.1"
    )
    assert (config.secure_port, config.bind_address, config.advertise_address) == (
        6444,
        "127.0.0.1",
        "10.0.0.1",
    )


@case("--etcd-servers= --etcd-cafile= --etcd-certfile= --etcd-keyfile= --etcd-prefix=")
def _(tmp: Path) -> None:
    cert, key = pem_files(tmp)
    config, _ = server_cfg(
        tmp,
        "--storage-backend=etcd3",
        "--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379",
        f"--etcd-cafile={cert}",
        f"--etcd-certfile={cert}",
        f"--etcd-keyfile={key}",
        "--etcd-prefix=/kb",
    )
    assert config.etcd_servers == ("https://10.0.0.1:2379", "https://10.0.0.2:2379")
    assert (config.etcd_cafile, config.etcd_keyfile, config.etcd_prefix) == (cert, key, "/kb")


@case("--watch-cache=false")
def _(tmp: Path) -> None:
    assert server_cfg(tmp, "--storage-backend=etcd3", "--etcd-servers=http://e:2379")[0].watch_cache
    config, _ = server_cfg(
        tmp, "--storage-backend=etcd3", "--etcd-servers=http://e:2379", "--watch-cache=false"
    )
    assert config.watch_cache is False


@case("--v=2 / --logging-format=json")
@case("-v 2 / --logging-format=json")
def _(tmp: Path) -> None:
    for command, extra in (("server", ["--data-dir", str(tmp)]), ("agent", []), ("join", [])):
        target = {"server": server, "agent": agent, "join": join}[command]
        for args, level in ((["--v=2"], 2), (["-v", "3"], 3), (["-v=4"], 4), (["-v5"], 5)):
            ctx = target.make_context(command, [*extra, *args, "--logging-format=json"])
            assert ctx.meta["kubeboot.verbosity"] == level
            assert ctx.meta["kubeboot.logging_format"] == "json"


@case("--service-account-key-file / --service-account-issuer")
def _(tmp: Path) -> None:
    _, key = pem_files(tmp)
    cfg = server_cfg(
        tmp,
        f"--service-account-key-file={key}",
        f"--service-account-key-file={key}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--service-account-issuer=https://old.example",
    )[0]
    assert cfg.service_account_key_files == (key, key)
    assert cfg.service_account_issuers == ("https://kubernetes.default.svc", "https://old.example")
    assert "is already specified" in refused(
        "server", "--service-account-issuer=https://a", "--service-account-issuer=https://a"
    )
    assert "should not be an empty string" in refused("server", "--service-account-issuer=")


@case("--service-account-signing-key-file=FILENAME")
def _(tmp: Path) -> None:
    _, key = pem_files(tmp)
    cfg = server_cfg(tmp, f"--service-account-signing-key-file={key}")[0]
    assert cfg.service_account_signing_key_file == key
    assert server_cfg(tmp)[0].service_account_signing_key_file is None  # generated at start


@case("--api-audiences= --service-account-max-token-expiration=")
def _(tmp: Path) -> None:
    cfg = server_cfg(tmp, "--api-audiences=a,b", "--service-account-max-token-expiration=48h")[0]
    assert cfg.api_audiences == ("a", "b")
    assert cfg.service_account_max_token_expiration == dt.timedelta(hours=48)
    assert "must be between 1 hour and 2^32 seconds" in refused(
        "server", "--service-account-max-token-expiration=30m"
    )


@case("--enable-admission-plugins")
def _(tmp: Path) -> None:
    assert "unknown flag: --enable-admission-plugins" in refused(
        "server", "--enable-admission-plugins=NodeRestriction"
    )


@case("--requestheader-client-ca-file / --proxy-client-cert-file")
def _(tmp: Path) -> None:
    assert "unknown flag" in refused("server", "--requestheader-client-ca-file=ca.crt")
    assert "unknown flag" in refused("server", "--proxy-client-cert-file=p.crt")


# -- kube-controller-manager ------------------------------------------------------------------


@case('--cluster-signing-cert-file="ca.crt" --cluster-signing-key-file="ca.key"')
def _(tmp: Path) -> None:
    cert, key = pem_files(tmp)
    config, _ = server_cfg(
        tmp, f"--cluster-signing-cert-file={cert}", f"--cluster-signing-key-file={key}"
    )
    assert (config.cluster_signing_cert_file, config.cluster_signing_key_file) == (cert, key)


@case("--cluster-signing-duration=8760h")
def _(tmp: Path) -> None:
    config, warned = server_cfg(tmp, "--cluster-signing-duration=720h")
    assert config.cluster_signing_duration == dt.timedelta(hours=720)
    assert warned == []


@case("--experimental-cluster-signing-duration=8760h")
def _(tmp: Path) -> None:
    config, warned = server_cfg(tmp, "--experimental-cluster-signing-duration=90m")
    assert config.cluster_signing_duration == dt.timedelta(minutes=90)
    assert warned == [
        "Flag --experimental-cluster-signing-duration has been deprecated, "
        "use --cluster-signing-duration instead"
    ]
    config, _ = server_cfg(tmp, "--experimental-cluster-signing-duration", "2h")  # space form
    assert config.cluster_signing_duration == dt.timedelta(hours=2)


@case('--insecure-experimental-approve-all-kubelet-csrs-for-group="system:bootstrappers"')
def _(tmp: Path) -> None:
    config, _ = server_cfg(
        tmp, "--insecure-experimental-approve-all-kubelet-csrs-for-group=system:bootstrappers"
    )
    assert config.approve_all_kubelet_csrs_for_group == "system:bootstrappers"
    assert server_cfg(tmp)[0].approve_all_kubelet_csrs_for_group == ""


@case("--controllers=*,bootstrapsigner,tokencleaner")
def _(tmp: Path) -> None:
    config, _ = server_cfg(tmp, "--controllers=*,bootstrapsigner,tokencleaner")
    assert config.controllers == ("*", "bootstrapsigner", "tokencleaner")


@case("--leader-elect=false")
def _(tmp: Path) -> None:
    assert not server_cfg(tmp, "--leader-elect=false")[0].leader_elect
    assert server_cfg(tmp, "--leader-elect=false", "--leader-elect")[0].leader_elect  # last wins


@case("--feature-gates=RotateKubeletServerCertificate=true")
def _(tmp: Path) -> None:
    server_cfg(tmp, "--feature-gates=RotateKubeletServerCertificate=true")
    assert "unrecognized feature gate: Bogus" in refused(
        "server", "--feature-gates=RotateKubeletServerCertificate=true,Bogus=true"
    )


@case("--cluster-signing-kubelet-client-cert-file (and the other per-signer pairs)")
def _(tmp: Path) -> None:
    cert, key = pem_files(tmp)
    config, _ = server_cfg(
        tmp,
        f"--cluster-signing-kubelet-client-cert-file={cert}",
        f"--cluster-signing-kubelet-client-key-file={key}",
    )
    assert config.signer_files == {"kubernetes.io/kube-apiserver-client-kubelet": (cert, key)}


@case("--kubeconfig / --authentication-kubeconfig / --authorization-kubeconfig")
def _(tmp: Path) -> None:
    for flag in ("--kubeconfig", "--authentication-kubeconfig", "--authorization-kubeconfig"):
        assert f"unknown flag: {flag}" in refused("server", f"{flag}=/etc/kubernetes/x.conf")


@case("--use-service-account-credentials=true")
def _(tmp: Path) -> None:
    assert "unknown flag" in refused("server", "--use-service-account-credentials=true")


# -- kubelet ----------------------------------------------------------------------------------


@case('--bootstrap-kubeconfig="/var/lib/kubelet/bootstrap-kubeconfig"')
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--bootstrap-kubeconfig=/var/lib/kubelet/bootstrap-kubeconfig")
    assert plan.bootstrap_kubeconfig == Path("/var/lib/kubelet/bootstrap-kubeconfig")
    assert not plan.krustlet


@case('--kubeconfig="/var/lib/kubelet/kubeconfig"')
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--kubeconfig=/var/lib/kubelet/kubeconfig", env={"KUBECONFIG": "/x"})
    assert plan.kubeconfig == Path("/var/lib/kubelet/kubeconfig")
    assert not plan.kubeconfig_guarded  # given explicitly: the operator's choice
    assert agent_plan(tmp).kubeconfig == Path("/etc/kubernetes/kubelet.conf")


@case('--experimental-bootstrap-kubeconfig="/path/to/bootstrap/kubeconfig"')
def _(tmp: Path) -> None:
    ctx = agent.make_context("agent", ["--experimental-bootstrap-kubeconfig=/p/boot.conf"])
    assert ctx.params["bootstrap_kubeconfig"] == Path("/p/boot.conf")
    assert ctx.meta["kubeboot.deprecations"] == [
        "Flag --experimental-bootstrap-kubeconfig has been deprecated, "
        "use --bootstrap-kubeconfig instead"
    ]


@case("--cert-dir=/var/lib/kubelet/pki")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--cert-dir=/srv/pki").cert_dir == Path("/srv/pki")
    assert agent_plan(tmp).cert_dir == Path("/var/lib/kubelet/pki")


@case("--rotate-certificates")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--rotate-certificates").rotate_certificates
    # pflag's NoOptDefVal rule: a value after a space is an argument, not the flag's value.
    with pytest.raises(Exception, match="unexpected extra argument"):
        agent.make_context("agent", ["--rotate-certificates", "false"])


@case("--rotate-certificates=true")
def _(tmp: Path) -> None:
    pairs = [("true", True), ("1", True), ("t", True), ("True", True), ("T", True)]
    pairs += [("false", False), ("0", False), ("f", False), ("F", False), ("FALSE", False)]
    for text, value in pairs:
        assert agent_plan(tmp, f"--rotate-certificates={text}").rotate_certificates is value
    message = refused("agent", "--rotate-certificates=yes")
    assert (
        'invalid argument "yes" for "--rotate-certificates" flag: '
        'strconv.ParseBool: parsing "yes": invalid syntax'
    ) in message


@case("--rotate-server-certificates")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--rotate-server-certificates").rotate_server_certificates
    assert not agent_plan(tmp).rotate_server_certificates


@case("--rotate-server-certificates=true")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--rotate-server-certificates=true").rotate_server_certificates
    assert not agent_plan(tmp, "--rotate-server-certificates=false").rotate_server_certificates


@case("--feature-gates=RotateKubeletClientCertificate=true,RotateKubeletServerCertificate=true")
def _(tmp: Path) -> None:
    plan = agent_plan(
        tmp,
        "--feature-gates=RotateKubeletClientCertificate=true,RotateKubeletServerCertificate=true",
        "--rotate-server-certificates",
    )
    assert plan.rotate_server_certificates
    assert any("RotateKubeletClientCertificate" in note for note in plan.notes)
    off = agent_plan(
        tmp, "--feature-gates=RotateKubeletServerCertificate=false", "--rotate-server-certificates"
    )
    assert not off.rotate_server_certificates


@case("--node-ip=10.0.0.1,fd00::1")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--node-ip=10.0.0.1,fd00::1").node_ips == ["10.0.0.1", "fd00::1"]
    assert agent_plan(tmp, "--node-ip", " 10.0.0.1 , fd00::1 ").node_ips == ["10.0.0.1", "fd00::1"]
    assert 'could not parse "10.0.0.300"' in refused("agent", "--node-ip=10.0.0.300")
    assert "dual-stack pair" in refused("agent", "--node-ip=10.0.0.1,10.0.0.2")


@case("--hostname-override=NAME")
def _(tmp: Path) -> None:
    assert agent_plan(tmp, "--hostname-override=worker-7").node_name == "worker-7"
    assert agent_plan(tmp).node_name == "node-a"  # the lower-cased hostname


@case("--config=kubelet.yaml")
def _(tmp: Path) -> None:
    config = tmp / "kubelet.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            rotateCertificates: false
            serverTLSBootstrap: true
            address: 0.0.0.0
            port: 10250
            authentication:
              anonymous:
                enabled: false
            cgroupDriver: systemd
            notAField: 1
            featureGates:
              RotateKubeletServerCertificate: true
            logging:
              format: json
              verbosity: 3
            """
        )
    )
    plan = agent_plan(tmp, f"--config={config}")
    assert (plan.rotate_certificates, plan.rotate_server_certificates) == (False, True)
    assert plan.logging == ("json", 3)
    assert f"{config}: authentication ignored: not used by kubeboot agent" in plan.notes
    assert f"{config}: cgroupDriver ignored: not used by kubeboot agent" in plan.notes
    assert f"{config}: unknown field notAField ignored" in plan.notes
    # Flags on the command line win over the file, as the kubelet's do.
    flagged = agent_plan(
        tmp, f"--config={config}", "--rotate-certificates=true", "--rotate-server-certificates=0"
    )
    assert (flagged.rotate_certificates, flagged.rotate_server_certificates) == (True, False)
    config.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "rotateCertificates: 'yes'\n"
    )
    message = refused("agent", f"--config={config}")
    assert message.count("\n") == 1 + 1  # one error line and the usage hint
    assert f'{config}: rotateCertificates: expected a boolean, got "yes"' in message


@case("--tls-cert-file= --tls-private-key-file=")
def _(tmp: Path) -> None:
    cert, key = pem_files(tmp)
    plan = agent_plan(tmp, f"--tls-cert-file={cert}", f"--tls-private-key-file={key}")
    assert (plan.tls_cert_file, plan.tls_private_key_file) == (cert, key)
    ignored = agent_plan(
        tmp,
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        "--rotate-server-certificates",
    )
    assert ignored.tls_cert_file is None  # the serving CSR wins, as in the kubelet
    assert "go together" in refused("agent", f"--tls-cert-file={cert}")


@case("--address=0.0.0.0 --port=10250")
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--address=0.0.0.0", "--port=10250")
    assert "--address 0.0.0.0: no effect (kubeboot agent serves no kubelet API)" in plan.notes
    assert not plan.krustlet


@case("--container-runtime-endpoint / --cgroup-driver / --pod-infra-container-image")
def _(tmp: Path) -> None:
    for flag in ("--container-runtime-endpoint", "--cgroup-driver", "--pod-infra-container-image"):
        assert f"unknown flag: {flag}" in refused("agent", f"{flag}=x")


@case("--node-labels / --register-with-taints")
def _(tmp: Path) -> None:
    assert "unknown flag: --node-labels" in refused("agent", "--node-labels=a=b")
    assert "unknown flag: --register-with-taints" in refused(
        "agent", "--register-with-taints=a=b:NoSchedule"
    )


# -- kubeadm join -----------------------------------------------------------------------------


@case("kubeadm join 10.0.0.1:6443 --token T --discovery-token-ca-cert-hash sha256:H")
def _(tmp: Path) -> None:
    spec = join_of("10.0.0.1:6443", "--token", TOKEN, "--discovery-token-ca-cert-hash", PIN)
    assert (spec.endpoint, spec.discovery_token, spec.tls_bootstrap_token) == (
        "10.0.0.1:6443",
        TOKEN,
        TOKEN,
    )
    assert spec.pins == [PIN]
    assert spec.agent is not None
    assert spec.agent.kubeconfig == Path("/etc/kubernetes/kubelet.conf")


@case("--discovery-token=T --tls-bootstrap-token=T2")
def _(tmp: Path) -> None:
    spec = join_of(
        "10.0.0.1:6443", f"--discovery-token={TOKEN}", f"--tls-bootstrap-token={TOKEN2}",
        "--discovery-token-unsafe-skip-ca-verification",
    )  # fmt: skip
    assert (spec.discovery_token, spec.tls_bootstrap_token) == (TOKEN, TOKEN2)
    # --token fills in only what is not given apart.
    spec = join_of("10.0.0.1:6443", f"--token={TOKEN}", f"--tls-bootstrap-token={TOKEN2}")
    assert (spec.discovery_token, spec.tls_bootstrap_token) == (TOKEN, TOKEN2)


@case("--discovery-token-ca-cert-hash=sha256:A,sha256:B")
def _(tmp: Path) -> None:
    spec = join_of("e:6443", "--token", TOKEN, f"--discovery-token-ca-cert-hash={PIN},{PIN2}")
    assert spec.pins == [PIN, PIN2]
    spec = join_of(
        "e:6443", "--token", TOKEN, "--discovery-token-ca-cert-hash", PIN,
        "--discovery-token-ca-cert-hash", PIN2,
    )  # fmt: skip
    assert spec.pins == [PIN, PIN2]


@case("--discovery-token-unsafe-skip-ca-verification")
def _(tmp: Path) -> None:
    assert join_of(
        "e:6443", "--token", TOKEN, "--discovery-token-unsafe-skip-ca-verification"
    ).unsafe_skip_ca_verification
    assert not join_of(
        "e:6443", "--token", TOKEN, "--discovery-token-unsafe-skip-ca-verification=false"
    ).unsafe_skip_ca_verification


@case("--discovery-file=FILE|https://URL")
def _(tmp: Path) -> None:
    spec = join_of("--discovery-file=https://example.test/cluster-info.yaml")
    assert spec.discovery_file == "https://example.test/cluster-info.yaml"
    assert spec.endpoint is None


@case("--node-name=NAME")
def _(tmp: Path) -> None:
    spec = join_of("e:6443", "--token", TOKEN, "--node-name=worker-3")
    assert spec.agent is not None and spec.agent.node_name == "worker-3"


@case("--ignore-preflight-errors=all")
def _(tmp: Path) -> None:
    assert join_of("e:6443", "--ignore-preflight-errors=all").ignore_preflight_errors == ["all"]
    assert join_of(
        "e:6443", "--ignore-preflight-errors=Swap,IsPrivilegedUser"
    ).ignore_preflight_errors == ["isprivilegeduser", "swap"]
    assert "don't specify individual checks if 'all' is used" in refused(
        "join", "e:6443", "--token", TOKEN, "--ignore-preflight-errors=all,Swap"
    )


@case("--dry-run")
def _(tmp: Path) -> None:
    assert join_of("e:6443", "--dry-run").dry_run
    assert not join_of("e:6443").dry_run


@case("--config=join.yaml")
def _(tmp: Path) -> None:
    config = tmp / "join.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: kubeadm.k8s.io/v1beta4
            kind: JoinConfiguration
            discovery:
              bootstrapToken:
                apiServerEndpoint: 10.0.0.1:6443
                token: {TOKEN}
                caCertHashes: [{PIN}]
              tlsBootstrapToken: {TOKEN2}
            nodeRegistration:
              name: worker-9
              criSocket: unix:///run/containerd/containerd.sock
              kubeletExtraArgs:
              - name: node-ip
                value: 10.0.0.9,fd00::9
              - name: rotate-server-certificates
                value: "true"
              - name: cgroup-driver
                value: systemd
            timeouts:
              tlsBootstrap: 2m
              discovery: 30s
            ---
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            """
        )
    )
    spec = join_of(f"--config={config}", "--dry-run")
    assert (spec.endpoint, spec.discovery_token, spec.tls_bootstrap_token) == (
        "10.0.0.1:6443",
        TOKEN,
        TOKEN2,
    )
    assert spec.pins == [PIN] and spec.dry_run
    assert spec.discovery_timeout == dt.timedelta(seconds=30)
    plan = spec.agent
    assert plan is not None
    assert (plan.node_name, plan.node_ips, plan.rotate_server_certificates) == (
        "worker-9",
        ["10.0.0.9", "fd00::9"],
        True,
    )
    assert plan.bootstrap_wait_seconds == 120.0
    assert (
        "kubeletExtraArgs: --cgroup-driver is not a flag of kubeboot agent; ignored" in spec.notes
    )
    assert any("Ignored configuration document 2" in n for n in spec.notes)
    assert "can not mix '--config' with arguments [discovery-token-ca-cert-hash token]" in refused(
        "join", f"--config={config}", "--token", TOKEN, "--discovery-token-ca-cert-hash", PIN
    )
    config.write_text("apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n")
    assert 'uses an old API spec: "kubeadm.k8s.io/v1beta3"' in refused("join", f"--config={config}")


@case("--cri-socket=unix:///run/containerd/containerd.sock")
def _(tmp: Path) -> None:
    spec = join_of("e:6443", "--cri-socket=unix:///run/containerd/containerd.sock")
    assert any(
        "--cri-socket unix:///run/containerd/containerd.sock: no effect" in n for n in spec.notes
    )


@case("--v=5")
def _(tmp: Path) -> None:
    assert join.make_context("join", ["--v=5"]).meta["kubeboot.verbosity"] == 5
    assert 'invalid argument "five" for "-v, --v" flag' in refused("join", "--v=five")


@case("--control-plane")
def _(tmp: Path) -> None:
    assert "joins worker nodes only" in refused(
        "join", "e:6443", "--token", TOKEN, "--control-plane"
    )


@case("--certificate-key / --apiserver-advertise-address / --apiserver-bind-port")
def _(tmp: Path) -> None:
    for flag in ("--certificate-key", "--apiserver-advertise-address", "--apiserver-bind-port"):
        assert f"unknown flag: {flag}" in refused("join", f"{flag}=x")


@case("--skip-phases / --patches")
def _(tmp: Path) -> None:
    assert "unknown flag: --skip-phases" in refused("join", "--skip-phases=preflight")
    assert "unknown flag: --patches" in refused("join", "--patches=/p")


# -- Krustlet ---------------------------------------------------------------------------------


@case("KUBECONFIG=~/.krustlet/config/kubeconfig")
def _(tmp: Path) -> None:
    env = {"KUBECONFIG": str(tmp / "k1")}
    plan = agent_plan(tmp, "--bootstrap-file=/b.conf", env=env)
    assert (plan.kubeconfig, plan.kubeconfig_guarded) == (tmp / "k1", True)
    # Several files: the first that exists, else the last (kubectl's rule for writing).
    (tmp / "k2").write_text("")
    env = {"KUBECONFIG": f"{tmp / 'k1'}:{tmp / 'k2'}:{tmp / 'k3'}"}
    assert agent_plan(tmp, env=env).kubeconfig == tmp / "k2"
    env = {"KUBECONFIG": f"{tmp / 'k1'}:{tmp / 'k3'}"}
    assert agent_plan(tmp, env=env).kubeconfig == tmp / "k3"
    # Krustlet without KUBECONFIG: ~/.kube/config, as the kube crate reads it.
    assert agent_plan(tmp, "--bootstrap-file=/b.conf").kubeconfig == tmp / "home/.kube/config"


@case("--bootstrap-file /path/to/bootstrap.conf")
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--bootstrap-file", "/path/to/bootstrap.conf")
    assert plan.krustlet and plan.bootstrap_kubeconfig == Path("/path/to/bootstrap.conf")
    assert plan.rotate_server_certificates  # Krustlet always bootstraps its serving cert
    assert plan.serving_cert_file == tmp / "home/.krustlet/config/krustlet.crt"
    assert plan.serving_key_file == tmp / "home/.krustlet/config/krustlet.key"
    assert plan.cert_dir == tmp / "home/.krustlet/pki"
    assert plan.node_ips == ["192.0.2.7"]  # the hostname's address, as Krustlet
    assert "give one of them" in refused(
        "agent", "--bootstrap-file=/a", "--bootstrap-kubeconfig=/b", "--kubeconfig=/k"
    )


@case("--cert-file / --private-key-file")
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--cert-file=/srv/k.crt", "--private-key-file=/srv/k.key")
    assert (plan.serving_cert_file, plan.serving_key_file) == (
        Path("/srv/k.crt"),
        Path("/srv/k.key"),
    )
    assert plan.krustlet and plan.bootstrap_kubeconfig == Path(
        "/etc/kubernetes/bootstrap-kubelet.conf"
    )


@case("--hostname NAME")
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--hostname", "Krusty-1", "--node-ip=10.0.0.4")
    assert (plan.hostname, plan.node_name, plan.node_ips) == ("Krusty-1", "krusty-1", ["10.0.0.4"])


@case("--port 3000 / --addr 0.0.0.0")
def _(tmp: Path) -> None:
    plan = agent_plan(tmp, "--port", "3000", "--addr", "0.0.0.0", "--bootstrap-file=/b")  # noqa: S104
    assert "--port 3000: no effect (kubeboot agent serves no kubelet API)" in plan.notes
    assert agent_plan(tmp, "-p", "3000", "-a", "::").krustlet


@case("--node-ip / --node-name / --data-dir, KRUSTLET_DATA_DIR")
def _(tmp: Path) -> None:
    plan = agent_plan(
        tmp, "--node-ip", "10.0.0.5", "--node-name", "k9", "--data-dir", str(tmp / "dd")
    )
    assert (plan.node_ips, plan.node_name, plan.cert_dir) == (["10.0.0.5"], "k9", tmp / "dd/pki")
    env = {"KRUSTLET_DATA_DIR": str(tmp / "env")}
    plan = agent_plan(tmp, "--bootstrap-file=/b", env=env)
    assert plan.serving_cert_file == tmp / "env/config/krustlet.crt"


@case("--max-pods / --node-labels / --x-allow-local-modules")
def _(tmp: Path) -> None:
    for flag in ("--max-pods", "--node-labels", "--x-allow-local-modules"):
        assert f"unknown flag: {flag}" in refused("agent", f"{flag}=1")


# -- the tests --------------------------------------------------------------------------------


def test_every_spelling_has_a_check() -> None:
    spellings = [f.spelling for f in UPSTREAM_FLAGS]
    assert len(spellings) == len(set(spellings))
    assert set(spellings) == set(CASES), (
        sorted(set(spellings) - set(CASES)),
        sorted(set(CASES) - set(spellings)),
    )


@pytest.mark.parametrize("flag", UPSTREAM_FLAGS, ids=lambda f: f"{f.component}: {f.spelling}")
def test_spelling(flag: UpstreamFlag, tmp_path: Path) -> None:
    CASES[flag.spelling](tmp_path)
