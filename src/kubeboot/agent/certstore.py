"""The cert-dir in the kubelet's exact layout (node-facts §1.9, design "On disk").

::

    <prefix>-YYYY-MM-DD-HH-MM-SS.pem   certificate chain, then the key; 0600; local time
    <prefix>-current.pem               symlink to the absolute path of the pair in use
    <prefix>-updated.pem               the new symlink, renamed over -current.pem
    <prefix>.key.tmp                   the key of a request still pending (0600)

Invariants: a pair file is complete before any symlink names it (atomic write, fsync, and a
re-read check that the key matches the certificate); ``-current.pem`` is replaced by one
``rename(2)``, so readers see the old pair or the new one, never none (upstream removes it
first, leaving a window); a crash between the two steps is repaired by :meth:`recover`, as
upstream does. Unlike upstream, old pairs are pruned: the newest ``keep`` stay, and the one
in use is never deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kubeboot.agent.constants import KEEP_PAIRS
from kubeboot.agent.validity import PairVerdict, check_pair
from kubeboot.pki.files import ensure_private_dir, fsync_dir, write_atomic
from kubeboot.pki.keys import (
    InvalidKeyError,
    PrivateKey,
    dump_private_key_pem,
    generate_private_key,
    load_private_key_pem,
)
from kubeboot.pki.pem import decode_pem_blocks, encode_pem

__all__ = [
    "CertStore",
    "CertStoreError",
    "StoredPair",
    "pair_file_name",
    "pairs_to_prune",
    "path_problems",
]

_TIMESTAMP = "%Y-%m-%d-%H-%M-%S"  # Go layout 2006-01-02-15-04-05


class CertStoreError(Exception):
    """The cert-dir is in a state the agent must not repair silently."""


def pair_file_name(prefix: str, when: dt.datetime) -> str:
    """``kubelet-client-2024-01-04-22-29-37.pem``: the timestamp in local time, as upstream."""
    return f"{prefix}-{when.astimezone().strftime(_TIMESTAMP)}.pem"


def pairs_to_prune(prefix: str, names: Iterable[str], in_use: str | None, keep: int) -> list[str]:
    """Timestamped pair files beyond the newest ``keep``; ``in_use`` is always kept."""
    pattern = re.compile(re.escape(prefix) + r"-\d{4}(-\d{2}){5}\.pem")
    pairs = sorted((n for n in names if pattern.fullmatch(n)), reverse=True)
    return [n for n in pairs[keep:] if n != in_use]


@dataclass(frozen=True, slots=True)
class StoredPair:
    path: Path  # the timestamped file the current symlink resolves to
    cert_pem: bytes
    key_pem: bytes


def path_problems(cert_dir: Path, prefixes: Iterable[str], files: Iterable[Path] = ()) -> list[str]:
    """What in the way of the cert dir and the agent's files must be fixed first, in words.

    A cert dir that is a file, a parent that is a file, or a directory where a pem or a
    kubeconfig goes would otherwise surface as ``[Errno 17] File exists`` or ``[Errno 21]
    Is a directory`` halfway through a join. Checked before anything is written.
    """
    problems: list[str] = []
    if cert_dir.exists() and not cert_dir.is_dir():
        problems.append(
            f"--cert-dir {cert_dir} is a file, not a directory: move it away or choose "
            "another --cert-dir"
        )
    else:
        problems += _parent_problems(cert_dir, "--cert-dir")
        for prefix in prefixes:
            for name in (f"{prefix}-current.pem", f"{prefix}-updated.pem", f"{prefix}.key.tmp"):
                path = cert_dir / name
                if path.is_dir() and not path.is_symlink():
                    problems.append(
                        f"{path} is a directory where the agent keeps a certificate or key: "
                        "remove it"
                    )
    for path in files:
        if path.is_dir():
            problems.append(f"{path} is a directory where a kubeconfig file goes: remove it")
        else:
            problems += _parent_problems(path.parent, str(path))
    return problems


def _parent_problems(path: Path, what: str) -> list[str]:
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return [f"{what}: {parent} is a file, so {path} cannot be created: move it away"]
            return []
    return []


class CertStore:
    def __init__(self, cert_dir: Path, prefix: str, *, keep: int = KEEP_PAIRS) -> None:
        self.cert_dir = cert_dir.absolute()
        self.prefix = prefix
        self.keep = keep

    @property
    def current_path(self) -> Path:
        return self.cert_dir / f"{self.prefix}-current.pem"

    @property
    def updated_path(self) -> Path:
        return self.cert_dir / f"{self.prefix}-updated.pem"

    @property
    def pending_key_path(self) -> Path:
        return self.cert_dir / f"{self.prefix}.key.tmp"

    def recover(self) -> None:
        """Finish a symlink switch a crash interrupted (upstream's recovery rule)."""
        if not self.current_path.exists() and self.updated_path.is_symlink():
            os.replace(self.updated_path, self.current_path)

    def read_current(self) -> StoredPair | None:
        """The pair in use, or None if there is none (no file, dangling link, no key)."""
        self.recover()
        if not self.current_path.exists():
            return None
        data = self.current_path.read_bytes()
        blocks = decode_pem_blocks(data)
        certs = b"".join(encode_pem(b.type, b.der) for b in blocks if b.type == "CERTIFICATE")
        keys = [encode_pem(b.type, b.der) for b in blocks if b.type.endswith("PRIVATE KEY")]
        if not certs or not keys:
            return None
        return StoredPair(self.current_path.resolve(), certs, keys[0])

    def install(self, cert_pem: bytes, key_pem: bytes, when: dt.datetime) -> Path:
        """Write a new pair and make it current; returns the pair file's path."""
        verdict: PairVerdict = check_pair(cert_pem, key_pem, None, when)
        if verdict.reason is not None and "expired" not in verdict.reason:
            raise CertStoreError(f"refusing to store the issued certificate: {verdict.reason}")
        ensure_private_dir(self.cert_dir)
        if self.current_path.exists() and not self.current_path.is_symlink():
            raise CertStoreError(
                f"{self.current_path} is a regular file; move it away so the agent can manage it"
            )
        pair_path = self.cert_dir / pair_file_name(self.prefix, when)
        write_atomic(pair_path, cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        if self.updated_path.is_symlink():
            self.updated_path.unlink()
        elif self.updated_path.exists():
            raise CertStoreError(f"{self.updated_path} is a regular file; move it away")
        os.symlink(pair_path, self.updated_path)
        os.replace(self.updated_path, self.current_path)
        fsync_dir(self.cert_dir)
        self.prune()
        return pair_path

    def prune(self) -> list[str]:
        in_use = self.current_path.resolve().name if self.current_path.exists() else None
        names = [p.name for p in self.cert_dir.iterdir()] if self.cert_dir.exists() else []
        doomed = pairs_to_prune(self.prefix, names, in_use, self.keep)
        for name in doomed:
            with contextlib.suppress(FileNotFoundError):
                (self.cert_dir / name).unlink()
        return doomed

    def pending_key(self) -> PrivateKey:
        """The key of the request in flight: reused after a restart, else made and saved.

        A corrupt file is replaced rather than fatal (upstream fails start-up on it): a key
        that cannot be read cannot have signed anything we could still use.
        """
        if self.pending_key_path.exists():
            with contextlib.suppress(InvalidKeyError):
                return load_private_key_pem(self.pending_key_path.read_bytes())
        key = generate_private_key()
        ensure_private_dir(self.cert_dir)
        write_atomic(self.pending_key_path, dump_private_key_pem(key))
        return key

    def discard_pending_key(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pending_key_path.unlink()
