"""Client-certificate authentication, and the server TLS context that makes it upstream-exact.

**The TLS problem.** kube-apiserver only *requests* a client certificate in the handshake and
verifies it in its authenticator, so an expired or foreign certificate gets an HTTP 401
(server-facts §3.2). Python's ``ssl`` has no "request but do not verify" mode: with
``CERT_OPTIONAL`` and a CA loaded, OpenSSL aborts the handshake for such a certificate and the
client sees a reset connection instead (deps-survey §2).

**What we do.** :func:`make_server_ssl_context` asks for a client certificate
(``SSL_VERIFY_PEER`` without ``FAIL_IF_NO_PEER_CERT``) and installs an OpenSSL verify callback
that accepts every certificate, through ``ctypes`` on the ``SSL_CTX`` of the Python context.
CPython's ``verify_mode`` setter keeps an installed callback, so later changes cannot undo it.
The certificate is then verified here, in :class:`ClientCertAuthenticator`, against the
``--client-ca-file`` bundle with the injected clock, exactly as Go's ``x509.Verify`` does for
the cases that matter: any certificate in the bundle is a trust anchor; leaf and anchor must
be valid now; the leaf's ExtKeyUsage must include ``clientAuth`` or ``any``, or be absent.
The result is upstream's: a bad certificate is a 401 from the authenticator, and a good bearer
token on the same request still succeeds (§3.5).

The ``SSL_CTX`` pointer is read from CPython's ``PySSLContext`` (the first field after the
object header, unchanged from 3.7 to 3.13). :func:`_accept_any_client_cert` proves the read
before writing: the pointer must report the same verify mode and options as the Python
object. If it cannot (another interpreter, another layout), the context falls back to
``CERT_OPTIONAL`` with the bundle loaded and ``X509_V_FLAG_NO_CHECK_TIME``: expired
certificates still reach the authenticator and get a 401, while a certificate from a foreign
CA fails the handshake (the documented deviation, logged at start; see ``docs/auth.md``).

**Invariant.** Because the handshake accepts any certificate, nothing may trust
``getpeercert()`` without this module's verification: the DER goes into
:class:`~kubeboot.auth.interface.Credentials` and only the authenticator decides.

**Known deviation.** Python 3.11 exposes only the leaf (``getpeercert``), not the chain the
peer sent, so intermediates must be in the CA bundle; Go also uses peer-supplied ones.
"""

from __future__ import annotations

import _ssl
import ctypes
import dataclasses
import datetime as dt
import hashlib
import logging
import ssl
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeboot.auth.interface import AuthenticationFailed, UserInfo
from kubeboot.clock import Clock, format_time
from kubeboot.metrics.apiserver import CLIENT_CERTIFICATE_EXPIRATION

__all__ = [
    "CREDENTIAL_ID_KEY",
    "ClientCertAuthenticator",
    "load_ca_bundle",
    "make_server_ssl_context",
]

log = logging.getLogger(__name__)

CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"

_SSL_VERIFY_PEER = 0x01  # OpenSSL: request a certificate; no FAIL_IF_NO_PEER_CERT (0x02)
_X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL: the handshake ignores validity dates

_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _libssl() -> ctypes.CDLL:
    # dlsym on _ssl's handle resolves through its dependencies: the very libssl CPython uses.
    lib = ctypes.CDLL(_ssl.__file__)
    lib.ERR_clear_error.argtypes = []
    lib.ERR_clear_error.restype = None
    lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
    lib.SSL_CTX_set_verify.restype = None
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    return lib


def _accept_any_client_cert(ctx: ssl.SSLContext) -> bool:
    """Make the handshake request a client certificate and accept any; False if not possible."""
    if sys.implementation.name != "cpython" or not hasattr(_ssl, "__file__"):
        return False
    try:
        lib = _libssl()
    except (OSError, AttributeError):
        return False
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        return False
    if lib.SSL_CTX_get_verify_mode(ptr) != _SSL_VERIFY_PEER or lib.SSL_CTX_get_options(ptr) != int(
        ctx.options
    ):
        return False
    lib.SSL_CTX_set_verify(ptr, _SSL_VERIFY_PEER, _accept_any_callback(lib))
    return True


_CALLBACKS: list[Any] = []  # OpenSSL keeps raw pointers: the ctypes objects must stay alive


def _accept_any_callback(lib: ctypes.CDLL) -> Any:
    def accept(preverify_ok: int, store_ctx: int | None) -> int:
        if not preverify_ok:
            # The failed check left an error on OpenSSL's per-thread queue; CPython's next
            # SSL_read would report it as fatal ("[ASN1] EVP lib") and drop the connection.
            lib.ERR_clear_error()
        return 1

    if not _CALLBACKS:
        _CALLBACKS.append(_VerifyCallback(accept))
    return _CALLBACKS[0]


def make_server_ssl_context(
    cert_file: str | Path,
    key_file: str | Path,
    client_ca_file: str | Path,
    *,
    verify_in_application: bool = True,
) -> ssl.SSLContext:
    """The API server's TLS context: TLS >= 1.2, client certificate requested, never required.

    With ``verify_in_application`` (the default, and the only upstream-exact mode) any client
    certificate passes the handshake and :class:`ClientCertAuthenticator` decides. ``False``
    forces the fallback described in the module docstring (used when the ``ctypes`` route is
    unavailable, and by tests of that route). Session tickets are off: kubelets never resume,
    and each ticket costs about 0.35 ms per handshake (perf-notes).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.num_tickets = 0
    if verify_in_application and _accept_any_client_cert(ctx):
        return ctx
    if verify_in_application:
        log.warning(
            "cannot defer client-certificate verification to the application on this Python; "
            "certificates from a CA other than %s will fail the TLS handshake instead of "
            "getting HTTP 401",
            client_ca_file,
        )
    ctx.load_verify_locations(str(client_ca_file))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= _X509_V_FLAG_NO_CHECK_TIME
    return ctx


def load_ca_bundle(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle file; ValueError naming the file if there is none."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except ValueError as e:
        raise ValueError(f"client CA file {path}: no PEM certificate could be read ({e})") from e


def _short(cert: x509.Certificate) -> str:
    return f"SN={cert.serial_number:x} subject={cert.subject.rfc4514_string()!r}"


_VERIFIED_CACHE_SIZE = 4096
"""Client certificates whose verification :class:`ClientCertAuthenticator` remembers."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Verified:
    """A leaf that verified: its window, the anchor that signed it, and the resulting user."""

    not_before: dt.datetime
    not_after: dt.datetime
    anchor: x509.Certificate
    user: UserInfo | None
    serial: int
    subject: str


RevocationCheck = Callable[[int, str], None]
"""(serial, subject) -> None, or raises CredentialRevoked (kubeboot.auth.revocation)."""


class ClientCertAuthenticator:
    """``x509.Verify`` + ``CommonNameUserConversion`` over the leaf the client presented.

    ``authenticate`` returns None for "no certificate" and raises
    :class:`AuthenticationFailed` for a certificate that does not verify, the distinction the
    chain needs to answer 401 rather than anonymous.

    Successful verifications are remembered by the SHA-256 of the leaf's DER (a bounded LRU),
    because a node presents the same certificate on every request and parsing it and checking
    its signature is the bulk of authentication (~0.15 ms). Only what can change is checked
    again on a hit: the clock against the leaf's and its anchor's validity windows. The rest
    cannot change for these exact bytes: the signature, the EKU and the subject are in them,
    and the bundle is fixed for the life of this object (it is loaded at start). A hit whose
    anchor has left its window goes through the full verification again, so another anchor
    in the bundle is tried and errors are reported exactly as without the cache. Failures are
    never remembered. Not thread-safe: it is called on the event loop only.

    ``revoked`` (kubeboot's revocation list) is asked on every request, hit or miss, after
    the certificate verified: a revocation takes effect on the next request.
    """

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        clock: Clock,
        *,
        cache_size: int = _VERIFIED_CACHE_SIZE,
        revoked: RevocationCheck | None = None,
    ) -> None:
        if not roots:
            raise ValueError("a client CA bundle needs at least one certificate")
        self._roots = tuple(roots)
        self._clock = clock
        self._cache_size = cache_size
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._revoked = revoked

    def authenticate(self, der: bytes | None) -> UserInfo | None:
        if der is None:
            return None
        digest = hashlib.sha256(der).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            now = self._clock.now()
            if now < hit.not_before or now > hit.not_after:
                # The full path below raises the leaf's expiry error, word for word.
                del self._verified[digest]
            elif hit.anchor.not_valid_before_utc <= now <= hit.anchor.not_valid_after_utc:
                if self._revoked is not None:
                    self._revoked(hit.serial, hit.subject)
                self._verified.move_to_end(digest)
                CLIENT_CERTIFICATE_EXPIRATION.observe((hit.not_after - now).total_seconds())
                return _fresh(hit.user)
        try:
            leaf = x509.load_der_x509_certificate(der)
        except ValueError as e:
            raise AuthenticationFailed(f"client certificate does not parse: {e}") from None
        anchor = self._verify(leaf)
        user = _user(leaf, "X509SHA256=" + digest.hex())
        verified = _Verified(
            leaf.not_valid_before_utc,
            leaf.not_valid_after_utc,
            anchor,
            user,
            leaf.serial_number,
            leaf.subject.rfc4514_string(),
        )
        self._verified[digest] = verified
        self._verified.move_to_end(digest)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        if self._revoked is not None:
            self._revoked(verified.serial, verified.subject)
        remaining = leaf.not_valid_after_utc - self._clock.now()
        CLIENT_CERTIFICATE_EXPIRATION.observe(remaining.total_seconds())
        return _fresh(user)

    def _verify(self, leaf: x509.Certificate) -> x509.Certificate:
        """The trust anchor that signed ``leaf``, or AuthenticationFailed."""
        now = self._clock.now()
        _check_validity(leaf, now, "client certificate")
        _check_client_auth_usage(leaf)
        # Like Go's chain building, an issuer that is itself out of its validity window is
        # skipped in favour of another one; its error is reported only if none is left.
        issuer_error: AuthenticationFailed | None = None
        for root in self._roots:
            try:
                leaf.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            try:
                _check_validity(root, now, "client CA certificate")
            except AuthenticationFailed as e:
                issuer_error = issuer_error or e
                continue
            return root
        raise issuer_error or AuthenticationFailed(
            f"verifying certificate {_short(leaf)} failed: x509: certificate signed by unknown "
            "authority"
        )


def _fresh(user: UserInfo | None) -> UserInfo | None:
    """A copy whose ``extra`` dict is not the cached one, so no caller can change the cache."""
    return None if user is None else dataclasses.replace(user, extra=dict(user.extra))


def _user(leaf: x509.Certificate, credential_id: str) -> UserInfo | None:
    cn = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not cn or not cn[0]:
        return None  # upstream: an empty CN is "not authenticated", not an error
    groups = tuple(
        str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    )
    return UserInfo(name=cn[0], groups=groups, extra={CREDENTIAL_ID_KEY: (credential_id,)})


def _check_validity(cert: x509.Certificate, now: dt.datetime, what: str) -> None:
    if now < cert.not_valid_before_utc or now > cert.not_valid_after_utc:
        raise AuthenticationFailed(
            f"verifying certificate {_short(cert)} failed: x509: {what} has expired or is not "
            f"yet valid: current time {format_time(now)} is outside "
            f"{format_time(cert.not_valid_before_utc)}..{format_time(cert.not_valid_after_utc)}"
        )


def _check_client_auth_usage(leaf: x509.Certificate) -> None:
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return
    raise AuthenticationFailed(
        f"verifying certificate {_short(leaf)} failed: x509: certificate specifies an "
        "incompatible key usage"
    )
