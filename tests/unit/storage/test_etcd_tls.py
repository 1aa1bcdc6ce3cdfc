"""The etcd backend over mutual TLS, against a real etcd with ``--client-cert-auth``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import StoreUnavailable
from tests.unit.storage.conftest import free_port, make_tls, running_etcd


async def test_without_client_certificate_etcd_is_unavailable(
    mtls_etcd_options: StorageOptions,
) -> None:
    no_client_cert = dataclasses.replace(mtls_etcd_options, etcd_certfile=None, etcd_keyfile=None)
    with pytest.raises(StoreUnavailable):
        await open_store(no_client_cert)


async def test_mutual_tls_reads_and_writes(mtls_etcd_options: StorageOptions) -> None:
    store = await open_store(mtls_etcd_options)
    try:
        kv = await store.create("/tls/x", b"v")
        assert await store.get("/tls/x") == kv
    finally:
        await store.close()


async def test_a_dead_member_first_in_the_list_is_skipped_over_tls(
    mtls_etcd_options: StorageOptions,
) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    options = dataclasses.replace(
        mtls_etcd_options, etcd_servers=(dead, *mtls_etcd_options.etcd_servers)
    )
    store = await open_store(options)
    try:
        kv = await store.create("/tls/failover", b"v")
        assert await store.get("/tls/failover") == kv
    finally:
        await store.close()


async def test_each_member_is_verified_against_the_host_in_its_own_url(
    mtls_etcd_options: StorageOptions, etcd_binary: str, tmp_path: Path
) -> None:
    # the first member's certificate names IP 127.0.0.1 only: reached as "localhost", refused
    port = mtls_etcd_options.etcd_servers[0].rsplit(":", 1)[1]
    by_name = dataclasses.replace(mtls_etcd_options, etcd_servers=(f"https://localhost:{port}",))
    with pytest.raises(StoreUnavailable):
        await open_store(by_name)
    # a member whose certificate also names "localhost" is accepted under that name
    tls = make_tls(tmp_path, dns_names=("localhost",))
    with running_etcd(etcd_binary, tmp_path, tls) as url:
        named = StorageOptions(
            backend="etcd3",
            etcd_servers=(url.replace("127.0.0.1", "localhost"),),
            etcd_cafile=tls.ca,
            etcd_certfile=tls.client_cert,
            etcd_keyfile=tls.client_key,
        )
        store = await open_store(named)
        try:
            assert await store.get("/tls/absent") is None
        finally:
            await store.close()
