"""Build the configured backend, so the API layer never imports one directly.

The option names follow kube-apiserver's flags: ``--storage-backend`` (``etcd3``),
``--etcd-servers``, ``--etcd-cafile``, ``--etcd-certfile``, ``--etcd-keyfile``,
``--etcd-prefix``; ``sqlite`` is kubeboot's embedded default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kubeboot.pki.files import ensure_private_dir
from kubeboot.storage.interface import Store

__all__ = ["DEFAULT_ETCD_PREFIX", "StorageOptions", "open_store"]

DEFAULT_ETCD_PREFIX = "/registry"
"""kube-apiserver's ``--etcd-prefix`` default."""


@dataclass(frozen=True, slots=True)
class StorageOptions:
    backend: Literal["sqlite", "etcd3"] = "sqlite"
    sqlite_path: Path = Path("kubeboot-data/state.db")
    etcd_servers: tuple[str, ...] = ()
    """``https://host:port`` or ``http://host:port`` URLs, as ``--etcd-servers``."""
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    etcd_prefix: str = DEFAULT_ETCD_PREFIX
    watch_queue_limit: int = 1000
    """Undelivered events one watcher may hold before it is ended as lagging."""
    watch_cache: bool = True
    """etcd3: serve watches and consistent reads from a watch cache (``--watch-cache``)."""


async def open_store(options: StorageOptions) -> Store:
    """Open the backend ``options`` name; raises ValueError for an unusable combination."""
    if options.watch_queue_limit < 1:
        raise ValueError(f"watch_queue_limit must be >= 1, got {options.watch_queue_limit}")
    if options.backend == "sqlite":
        from kubeboot.storage.sqlite import SqliteStore

        ensure_private_dir(options.sqlite_path.parent)
        return await SqliteStore.open(
            options.sqlite_path, watch_queue_limit=options.watch_queue_limit
        )
    if options.backend == "etcd3":
        if not options.etcd_servers:
            raise ValueError(
                "storage backend etcd3 needs --etcd-servers (e.g. https://127.0.0.1:2379)"
            )
        from kubeboot.storage.etcd import EtcdStore  # optional dependency: the 'etcd' extra

        etcd = await EtcdStore.open(
            options.etcd_servers,
            prefix=options.etcd_prefix,
            cafile=options.etcd_cafile,
            certfile=options.etcd_certfile,
            keyfile=options.etcd_keyfile,
            watch_queue_limit=options.watch_queue_limit,
        )
        if not options.watch_cache:
            return etcd
        from kubeboot.storage.watchcache import CachedEtcdStore

        try:
            return await CachedEtcdStore.open(etcd, watch_queue_limit=options.watch_queue_limit)
        except BaseException:
            await etcd.close()
            raise
    raise ValueError(f"unknown storage backend {options.backend!r}; use 'sqlite' or 'etcd3'")
