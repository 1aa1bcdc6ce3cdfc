"""Compact JWS for ServiceAccount tokens: upstream key-id vectors, strict parsing, refusals,
and joserfc as an independent signer and verifier."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from kubeboot.pki.jwt import (
    JwtError,
    algorithm_for,
    jwk,
    key_id,
    parse_jwt,
    sign_jwt,
    verify_jwt,
)
from kubeboot.pki.keys import PrivateKey, load_private_key_pem

# Vectors from upstream pkg/serviceaccount (keyid_test.go, jwt_test.go): the key id of a key
# must never change, or tokens already handed out stop finding their key.
UPSTREAM_RSA_PUBLIC = b"""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA249XwEo9k4tM8fMxV7zx
OhcrP+WvXn917koM5Qr2ZXs4vo26e4ytdlrV0bQ9SlcLpQVSYjIxNfhTZdDt+ecI
zshKuv1gKIxbbLQMOuK1eA/4HALyEkFgmS/tleLJrhc65tKPMGD+pKQ/xhmzRuCG
51RoiMgbQxaCyYxGfNLpLAZK9L0Tctv9a0mJmGIYnIOQM4kC1A1I1n3EsXMWmeJU
j7OTh/AjjCnMnkgvKT2tpKxYQ59PgDgU8Ssc7RDSmSkLxnrv+OrN80j6xrw0OjEi
B4Ycr0PqfzZcvy8efTtFQ/Jnc4Bp1zUtFXt7+QeevePtQ2EcyELXE0i63T1CujRM
WwIDAQAB
-----END PUBLIC KEY-----
"""
UPSTREAM_RSA_KID = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU"
UPSTREAM_EC_PRIVATE = b"""-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIEZmTmUhuanLjPA2CLquXivuwBDHTt5XYwgIr/kA1LtRoAoGCCqGSM49
AwEHoUQDQgAEH6cuzP8XuD5wal6wf9M6xDljTOPLX2i8uIp/C/ASqiIGUeeKQtX0
/IR3qCXyThP/dbCiHrF3v1cuhBOHY8CLVg==
-----END EC PRIVATE KEY-----
"""
UPSTREAM_EC_KID = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEYS = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
}
ALL_KEYS: dict[str, PrivateKey] = {"RS256": RSA_KEY, **EC_KEYS}
CLAIMS = {
    "sub": "system:serviceaccount:ns:sa",
    "aud": ["api"],
    "exp": 2000000000,
    "z": {"b": 1, "a": 2},
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jose_jwk(key: PrivateKey) -> dict[str, str | list[str]]:
    """Our JWK of ``key``'s public half, typed as joserfc takes it."""
    return dict(jwk(key.public_key()))


def _segments(token: str) -> list[str]:
    return token.split(".")


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_key_ids_match_upstream_vectors() -> None:
    public = serialization.load_pem_public_key(UPSTREAM_RSA_PUBLIC)
    assert isinstance(public, rsa.RSAPublicKey)
    assert key_id(public) == UPSTREAM_RSA_KID
    private = load_private_key_pem(UPSTREAM_EC_PRIVATE)
    assert key_id(private) == key_id(private.public_key()) == UPSTREAM_EC_KID


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_sign_then_verify_and_joserfc_agrees(alg: str) -> None:
    key = ALL_KEYS[alg]
    token = sign_jwt(CLAIMS, key)
    header, payload, _ = _segments(token)
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
        "alg": alg,
        "kid": key_id(key),
    }
    # Keys sorted at every level and compact, as go-jose's claim merging serialises them.
    assert base64.urlsafe_b64decode(payload + "==") == (
        b'{"aud":["api"],"exp":2000000000,"sub":"system:serviceaccount:ns:sa","z":{"a":2,"b":1}}'
    )
    parsed = parse_jwt(token)
    verify_jwt(parsed, key.public_key())
    assert parsed.claims == CLAIMS
    assert parsed.kid == key_id(key)
    # An independent implementation accepts what we sign, from our own JWK.
    jose_key = (RSAKey if alg == "RS256" else ECKey).import_key(_jose_jwk(key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = jose_jwt.decode(token, jose_key, algorithms=[alg])
    assert decoded.claims == CLAIMS


@pytest.mark.parametrize("alg", sorted(ALL_KEYS))
def test_tokens_joserfc_signs_verify_here(alg: str) -> None:
    key = ALL_KEYS[alg]
    jose_key = (RSAKey if alg == "RS256" else ECKey).import_key(_pem(key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jose_jwt.encode({"alg": alg, "kid": "k"}, CLAIMS, jose_key, algorithms=[alg])
    verify_jwt(parse_jwt(token), key.public_key())


def test_jwks_entries_import_as_a_key_set() -> None:
    keys = KeySet.import_key_set({"keys": [_jose_jwk(k) for k in ALL_KEYS.values()]})
    assert [k.kid for k in keys.keys] == [key_id(k) for k in ALL_KEYS.values()]
    rsa_jwk = jwk(RSA_KEY.public_key())
    assert list(rsa_jwk) == ["use", "kty", "kid", "alg", "n", "e"]
    assert rsa_jwk["e"] == "AQAB"
    ec_jwk = jwk(EC_KEYS["ES512"].public_key())
    assert list(ec_jwk) == ["use", "kty", "kid", "crv", "alg", "x", "y"]
    assert ec_jwk["crv"] == "P-521"
    assert len(base64.urlsafe_b64decode(ec_jwk["x"] + "==")) == 66  # fixed size, leading zeros


# --- refusals, unhappy paths first ------------------------------------------------------------


def test_signature_by_another_key_is_refused() -> None:
    token = sign_jwt(CLAIMS, RSA_KEY)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(JwtError, match="does not verify"):
        verify_jwt(parse_jwt(token), other.public_key())


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "ES256", "PS256", None])
def test_an_algorithm_other_than_the_keys_is_refused(alg: str | None) -> None:
    _, payload, signature = _segments(sign_jwt(CLAIMS, RSA_KEY))
    forged = _b64(json.dumps({"alg": alg, "kid": "x"}).encode())
    with pytest.raises(JwtError, match="is not the key's RS256"):
        verify_jwt(parse_jwt(f"{forged}.{payload}.{signature}"), RSA_KEY.public_key())


def test_tampered_payload_is_refused() -> None:
    header, _, signature = _segments(sign_jwt(CLAIMS, EC_KEYS["ES256"]))
    payload = _b64(json.dumps({**CLAIMS, "sub": "system:serviceaccount:kube-system:x"}).encode())
    with pytest.raises(JwtError, match="does not verify"):
        verify_jwt(parse_jwt(f"{header}.{payload}.{signature}"), EC_KEYS["ES256"].public_key())


def test_wrong_signature_length_for_the_curve_is_refused() -> None:
    header, payload, signature = _segments(sign_jwt(CLAIMS, EC_KEYS["ES256"]))
    short = _b64(base64.urlsafe_b64decode(signature + "==")[:-1])
    with pytest.raises(JwtError, match="does not verify"):
        verify_jwt(parse_jwt(f"{header}.{payload}.{short}"), EC_KEYS["ES256"].public_key())


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "three dot-separated parts"),
        ("a.b.c.d", "three dot-separated parts"),
        ("!!.e30.AA", "header is not base64url"),
        (f"{_b64(b'[]')}.e30.AA", "header is not a JSON object"),
        (f"{_b64(b'{')}.e30.AA", "header is not JSON"),
        (f"{_b64(b'{}')}.{_b64(b'1')}.AA", "payload is not a JSON object"),
        (f"{_b64(b'{}')}.e30.A", "signature is not base64url"),
        (f"{_b64(json.dumps({'alg': 'RS256', 'crit': ['x']}).encode())}.e30.AA", "critical"),
    ],
)
def test_malformed_tokens_are_refused_with_a_safe_message(token: str, message: str) -> None:
    with pytest.raises(JwtError, match=message) as info:
        parse_jwt(token)
    assert token not in str(info.value)


def test_unsupported_curves_have_no_algorithm() -> None:
    with pytest.raises(JwtError, match="must be 256, 384, or 521"):
        algorithm_for(ec.generate_private_key(ec.SECP256K1()))
    assert algorithm_for(RSA_KEY.public_key()) == "RS256"
