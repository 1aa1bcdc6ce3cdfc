"""The CSR key policy: what kubeboot certifies, refused at create with a 422 that names it.

RSA of 2048 bits or more, ECDSA on P-256/P-384/P-521 and Ed25519 are signed; RSA-512/1024,
secp256k1, P-224, explicit-parameter curves and DSA are refused (issue 14). A request that
slipped in before the policy is marked Failed once by the signer, never retried.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from kubeboot.client.interface import ApiClient
from kubeboot.clock import FakeClock
from kubeboot.controllers.csrsigning import Fail, sign_csr, signing_decision
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.csr import (
    KEY_POLICY,
    KUBE_APISERVER_CLIENT_SIGNER,
    CsrError,
    parse_csr_pem,
    validate_csr_spec,
)

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | dsa.DSAPrivateKey


def _pem(key: Key) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def _spec(pem: bytes) -> dict[str, Any]:
    return {
        "request": base64.b64encode(pem).decode(),
        "signerName": KUBE_APISERVER_CLIENT_SIGNER,
        "usages": ["client auth"],
    }


REFUSED: dict[str, Callable[[], Key]] = {
    "rsa-1024": lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - refused, the point
    "rsa-2047": lambda: rsa.generate_private_key(65537, 2047),  # noqa: S505
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "p-224": lambda: ec.generate_private_key(ec.SECP224R1()),
    "dsa": lambda: dsa.generate_private_key(2048),
}
ACCEPTED: dict[str, Callable[[], Key]] = {
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "p-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p-521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_weak_or_unsupported_keys_are_refused_naming_the_policy(name: str) -> None:
    pem = _pem(REFUSED[name]())
    with pytest.raises(CsrError) as excinfo:
        parse_csr_pem(pem)
    assert excinfo.value.args[0].startswith("public key policy: ")
    assert KEY_POLICY in str(excinfo.value)
    (error,) = validate_csr_spec(_spec(pem))
    assert error.field == "spec.request"
    assert KEY_POLICY in error.message


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_policy_keys_are_accepted_and_signed(name: str) -> None:
    key = ACCEPTED[name]()
    pem = _pem(key)
    assert validate_csr_spec(_spec(pem)) == []
    ca = create_self_signed_ca(clock=FakeClock(NOW))
    cert = ca.sign_request_pem(
        pem, usages=["client auth"], ttl=dt.timedelta(hours=1), clock=FakeClock(NOW)
    )
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_explicit_parameter_curve_is_refused(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make an explicit-parameter EC key")
    key = tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "ecparam",
            "-name",
            "prime256v1",
            "-param_enc",
            "explicit",
            "-genkey",
            "-noout",
            "-out",
            str(key),
        ],
        check=True,
        capture_output=True,
    )
    csr = subprocess.run(
        [openssl, "req", "-new", "-key", str(key), "-subj", "/CN=someone"],
        check=True,
        capture_output=True,
    ).stdout
    (error,) = validate_csr_spec(_spec(csr))
    assert KEY_POLICY in error.message


class _Writes:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    async def update(self, resource: object, obj: dict[str, Any], subresource: str = "") -> Any:
        assert subresource == "status"
        self.written.append(obj)
        return obj


def _approved(pem: bytes) -> dict[str, Any]:
    return {
        "metadata": {"name": "c", "uid": "u"},
        "spec": {**_spec(pem), "username": "someone"},
        "status": {"conditions": [{"type": "Approved", "status": "True"}]},
    }


async def test_signer_marks_a_pre_policy_request_failed_once() -> None:
    """A DSA CSR stored before the policy (or by another server): Failed, never retried."""
    csr = _approved(_pem(REFUSED["dsa"]()))
    decision = signing_decision(csr, (KUBE_APISERVER_CLIENT_SIGNER,))
    assert isinstance(decision, Fail) and KEY_POLICY in decision.message
    client = _Writes()
    ca = create_self_signed_ca(clock=FakeClock(NOW))
    await sign_csr(
        cast(ApiClient, client),
        csr,
        {KUBE_APISERVER_CLIENT_SIGNER: lambda: ca},
        dt.timedelta(hours=1),
        FakeClock(NOW),
    )
    (written,) = client.written
    failed = written["status"]["conditions"][-1]
    assert (failed["type"], failed["status"], failed["reason"]) == (
        "Failed",
        "True",
        "SignerValidationFailure",
    )
    assert "certificate" not in written["status"]
    # The written CSR now has Failed=True: the signer leaves it alone from then on.
    assert signing_decision(written, (KUBE_APISERVER_CLIENT_SIGNER,)) is None
