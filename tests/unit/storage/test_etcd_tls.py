"""The etcd backend over mutual TLS, against a real etcd with ``--client-cert-auth``."""

from __future__ import annotations

import dataclasses

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import StoreUnavailable


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
