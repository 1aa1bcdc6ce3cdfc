"""The serving certificate without restarts: renewed by the primary, reloaded by every server
process (the primary without ``--workers``, else each worker).

:class:`ServingCertReloader` watches the serving pair's files (a ``stat`` every few
seconds, as upstream's dynamic serving certificate controller does for ``--tls-cert-file``)
and loads a changed pair into the *live* ``ssl.SSLContext``: every TLS handshake after that
presents the new certificate; connections already open keep theirs. A pair is loaded only
once the certificate and key on disk belong together (a renewal writes the key first, then
the certificate; an operator may copy them one by one), and from one snapshot of their bytes
(through an anonymous in-memory file), so a half-written pair can never reach the context —
OpenSSL would otherwise be left with the new certificate and no key.

:class:`CertificateMaintenance` (primary only) renews a kubeboot-made serving certificate at
2/3 of its life (:mod:`kubeboot.pki.renewal`), warns in the log when any of the server's
certificates or the CA nears expiry, and reports each one's expiry to ``on_checked``
(metrics). Time is the injected clock; the loop sleeps until the next renewal deadline, at
most ``check_interval`` seconds, so a clock that jumps is noticed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeboot.clock import Clock, format_time
from kubeboot.pki.authority import CertificateAuthority, load_certificate_pem
from kubeboot.pki.keys import load_private_key_pem
from kubeboot.pki.renewal import (
    APISERVER,
    CertificateFiles,
    ManagedCertificate,
    expiry_warning,
    managed_certificates,
    renew_serving,
    renewal_deadline,
    renewal_due,
)

__all__ = ["CertificateMaintenance", "ServingCertReloader"]

log = logging.getLogger("kubeboot.server.certificates")

_MIN_SLEEP = 1.0


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class ServingCertReloader:
    def __init__(self, ctx: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
        self._ctx = ctx
        self._files = (cert_file, key_file)
        self._stamps = self._read_stamps()

    def _read_stamps(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return tuple(_stamp(p) for p in self._files)
        except OSError:
            return None

    def check(self) -> bool:
        """Load the pair if it changed and is whole; True when a new pair was loaded."""
        stamps = self._read_stamps()
        if stamps is None or stamps == self._stamps:
            return False
        cert_file, key_file = self._files
        try:
            cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
            cert = load_certificate_pem(cert_pem)
            key = load_private_key_pem(key_pem)
        except (OSError, ValueError) as exc:
            log.warning("serving certificate %s changed but cannot be read yet: %s", cert_file, exc)
            return False
        if cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            # Mid-write (key first, then certificate): try again at the next check.
            log.debug("serving key and certificate do not match yet; keeping the current pair")
            return False
        _load_from_memory(self._ctx, key_pem + b"\n" + cert_pem)
        self._stamps = stamps
        log.info(
            "serving certificate reloaded from %s: serial %x, valid until %s",
            cert_file,
            cert.serial_number,
            format_time(cert.not_valid_after_utc),
        )
        return True

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except (OSError, ssl.SSLError, ValueError) as exc:
                log.error("reloading the serving certificate failed; keeping the current: %s", exc)


def _load_from_memory(ctx: ssl.SSLContext, pem: bytes) -> None:
    """``load_cert_chain`` from bytes: an anonymous file, never a path on disk."""
    fd = os.memfd_create("kubeboot-serving", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


class CertificateMaintenance:
    def __init__(
        self,
        files: CertificateFiles,
        clock: Clock,
        *,
        check_interval: float = 3600.0,
        on_checked: Callable[[list[ManagedCertificate]], None] | None = None,
    ) -> None:
        self._files = files
        self._clock = clock
        self._interval = check_interval
        self._on_checked = on_checked
        self._warned: dict[str, dt.date] = {}

    def check(self) -> list[ManagedCertificate]:
        """Renew what is due, warn about what expires soon; returns the certificates seen."""
        now = self._clock.now()
        certs = managed_certificates(self._files)
        for entry in certs:
            if entry.certificate is None:
                continue
            managed_here = entry.name == APISERVER and not entry.externally_managed
            if managed_here and renewal_due(entry.certificate, now):
                self._renew_serving(entry.certificate)
                return self.check()
            warning = expiry_warning(entry.name, entry.certificate, now)
            if warning is not None and self._warned.get(entry.name) != now.date():
                self._warned[entry.name] = now.date()  # once a day per certificate
                log.warning("%s", warning)
        if self._on_checked is not None:
            self._on_checked(certs)
        return certs

    def _renew_serving(self, old: x509.Certificate) -> None:
        files = self._files
        ca = CertificateAuthority.load(files.ca_cert, files.ca_key)
        new = renew_serving(ca, files.serving_cert, files.serving_key, self._clock)
        log.info(
            "renewed the serving certificate %s at 2/3 of its life: serial %x (was %x), valid "
            "%s to %s; every server process reloads it without a restart",
            files.serving_cert,
            new.serial_number,
            old.serial_number,
            format_time(new.not_valid_before_utc),
            format_time(new.not_valid_after_utc),
        )

    def _sleep_seconds(self, certs: list[ManagedCertificate]) -> float:
        seconds = self._interval
        for entry in certs:
            if entry.name == APISERVER and not entry.externally_managed and entry.certificate:
                due = renewal_deadline(entry.certificate) - self._clock.now()
                seconds = min(seconds, due.total_seconds())
        return max(_MIN_SLEEP if self._interval >= _MIN_SLEEP else self._interval, seconds)

    async def run(self) -> None:
        while True:
            try:
                certs = self.check()
            except (OSError, ValueError) as exc:
                log.error("checking the server's certificates failed: %s", exc)
                certs = []
            await asyncio.sleep(self._sleep_seconds(certs))
