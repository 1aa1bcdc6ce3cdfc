"""Kubeconfig loading as kubectl does it: merge rules, relative paths, credentials.

Real files in a temp dir and a real exec plugin script; the TLS part loads a real CA and
client pair, so a wrong path or a dropped field fails here rather than at connect time.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeboot.client.kubeconfig import (
    KubeconfigError,
    kubeconfig_paths,
    load_client_config,
    merge_kubeconfigs,
)


def _write_pair(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA plus a client cert/key issued by it, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "user")]))
        .issuer_name(name)
        .public_key(client_key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.crt", directory / "client.crt", directory / "client.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


def _config(
    cluster: dict[str, Any], user: dict[str, Any], *, name: str = "c", current: str | None = "c"
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }
    if current:
        conf["current-context"] = current
    return conf


def _dump(path: Path, conf: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(conf))
    return path


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist"):
        load_client_config(tmp_path / "nope")


def test_undefined_context_names_the_file(tmp_path: Path) -> None:
    path = _dump(tmp_path / "k", _config({"server": "https://h"}, {}, current="other"))
    with pytest.raises(KubeconfigError, match=str(path)):
        load_client_config(path)


def test_non_url_server_is_refused(tmp_path: Path) -> None:
    path = _dump(tmp_path / "k", _config({"server": "h:6443"}, {}))
    with pytest.raises(KubeconfigError, match="not an http"):
        load_client_config(path)


def test_kubeconfig_env_merges_first_wins_and_skips_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _dump(tmp_path / "a" / "k", _config({"server": "https://first"}, {"token": "t1"}))
    second_conf = _config({"server": "https://second"}, {"token": "t2"}, current="other")
    second_conf["clusters"].append({"name": "x", "cluster": {"server": "https://x"}})
    second = _dump(tmp_path / "b" / "k", second_conf)
    env = os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)])
    monkeypatch.setenv("KUBECONFIG", env)
    assert kubeconfig_paths()[1:] == [first, second]
    merged = merge_kubeconfigs(
        [(first, yaml.safe_load(first.read_text())), (second, yaml.safe_load(second.read_text()))]
    )
    assert merged["current-context"] == "c"
    assert [c["name"] for c in merged["clusters"]] == ["c", "x"]
    assert merged["clusters"][0]["cluster"]["server"] == "https://first"
    config = load_client_config()
    assert config.server == "https://first"


async def test_relative_paths_resolve_against_their_own_file(tmp_path: Path) -> None:
    ca, _crt, key = _write_pair(tmp_path / "pki")
    conf = _config(
        {
            "server": "https://h:6443/",
            "certificate-authority": "../pki/ca.crt",
            "tls-server-name": "kubernetes",
            "proxy-url": "http://proxy:3128",
        },
        {"client-certificate": "../pki/client.crt", "client-key": "../pki/client.key"},
    )
    path = _dump(tmp_path / "conf" / "kubeconfig", conf)
    config = load_client_config(path)
    assert config.server == "https://h:6443"
    assert config.ssl_context is not None
    assert config.ssl_context.cert_store_stats()["x509_ca"] == 1
    assert config.cluster["certificate-authority"] == str(ca)
    assert config.user["client-key"] == str(key)
    assert config.tls_server_name == "kubernetes"
    assert config.proxy == "http://proxy:3128"
    assert await config.auth.value() is None


def test_key_not_matching_cert_is_reported(tmp_path: Path) -> None:
    ca, crt, _ = _write_pair(tmp_path / "one")
    _, _, other_key = _write_pair(tmp_path / "two")
    conf = _config(
        {"server": "https://h", "certificate-authority": str(ca)},
        {"client-certificate": str(crt), "client-key": str(other_key)},
    )
    with pytest.raises(KubeconfigError, match="cannot load TLS files"):
        load_client_config(_dump(tmp_path / "k", conf))


async def test_token_file_is_reread_on_refresh(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    path = _dump(
        tmp_path / "k",
        _config({"server": "https://h", "insecure-skip-tls-verify": True}, {"tokenFile": "token"}),
    )
    config = load_client_config(path)
    assert config.auth.refreshable
    assert await config.auth.value() == "Bearer first"
    token_file.write_text("second\n")
    assert await config.auth.value() == "Bearer first"
    assert await config.auth.refresh() == "Bearer second"


async def test_exec_plugin_token(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json\n"
        'print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",'
        ' "kind": "ExecCredential", "status": {"token": "from-exec"}}))\n'
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}}
    path = _dump(tmp_path / "k", _config({"server": "http://h"}, user))
    config = load_client_config(path)
    assert config.ssl_context is None
    assert await config.auth.value() == "Bearer from-exec"


@pytest.mark.parametrize(
    ("cluster_keys", "user_keys"),
    [
        (("certificate-authority",), ("client-certificate", "client-key")),
        (("certificate-authority-data", "insecure-skip-tls-verify"), ("token",)),
        (("certificate-authority", "tls-server-name", "proxy-url"), ()),
        (("insecure-skip-tls-verify",), ()),
    ],
    ids=["ca-file-client-pair", "ca-data-token", "ca-only", "insecure-anonymous"],
)
async def test_plain_kubeconfigs_resolve_as_lightkube_resolves_them(
    tmp_path: Path, cluster_keys: tuple[str, ...], user_keys: tuple[str, ...]
) -> None:
    import base64

    from kubeboot.client.kubeconfig import _lightkube_client_config, _plain_client_config

    ca, crt, key = _write_pair(tmp_path)
    every_cluster = {
        "server": "https://h:6443",
        "certificate-authority": str(ca),
        "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
        "insecure-skip-tls-verify": True,
        "tls-server-name": "kubernetes",
        "proxy-url": "http://proxy:3128",
    }
    every_user = {"client-certificate": str(crt), "client-key": str(key), "token": "abc.def"}
    conf = _config(
        {"server": "https://h:6443", **{k: every_cluster[k] for k in cluster_keys}},
        {k: every_user[k] for k in user_keys},
    )
    plain = _plain_client_config(conf, None, "k")
    assert plain is not None
    reference = _lightkube_client_config(conf, None, "k")
    assert plain.ssl_context is not None
    assert reference.ssl_context is not None
    for attr in ("verify_mode", "check_hostname", "minimum_version", "options"):
        assert getattr(plain.ssl_context, attr) == getattr(reference.ssl_context, attr), attr
    assert plain.ssl_context.cert_store_stats() == reference.ssl_context.cert_store_stats()
    assert await plain.auth.value() == await reference.auth.value()
    assert plain.auth.refreshable == reference.auth.refreshable
    for field_name in ("server", "namespace", "tls_server_name", "proxy", "context_name"):
        assert getattr(plain, field_name) == getattr(reference, field_name), field_name
    assert (plain.cluster, plain.user) == (reference.cluster, reference.user)


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        ({"server": "https://h"}, {}),  # no CA: the system trust store, lightkube decides
        ({"server": "https://h", "certificate-authority": "/ca"}, {"tokenFile": "/t"}),
        ({"server": "https://h", "certificate-authority": "/ca"}, {"client-certificate": "/c"}),
        ({"server": "http://h", "certificate-authority": "/ca"}, {}),
    ],
)
def test_anything_else_goes_through_lightkube(
    cluster: dict[str, Any], user: dict[str, Any]
) -> None:
    from kubeboot.client.kubeconfig import _plain_client_config

    assert _plain_client_config(_config(cluster, user), None, "k") is None
    assert _plain_client_config(_config(cluster, user, current=None), None, "k") is None


def test_loading_the_agents_kubeconfig_does_not_import_lightkube(tmp_path: Path) -> None:
    import subprocess

    ca, crt, key = _write_pair(tmp_path)
    path = _dump(
        tmp_path / "kubelet.conf",
        _config(
            {"server": "https://h", "certificate-authority": str(ca)},
            {"client-certificate": str(crt), "client-key": str(key)},
        ),
    )
    code = (
        "import sys\n"
        "from kubeboot.client.kubeconfig import load_client_config\n"
        f"load_client_config({str(path)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightkube', 'httpx2')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
