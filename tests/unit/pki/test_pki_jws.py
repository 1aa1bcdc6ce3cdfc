"""Detached JWS: upstream known-answer vectors, strict parsing, joserfc as independent oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings

import pytest
from joserfc import jws as jose_jws
from joserfc.jwk import OctKey

from kubeboot.pki.jws import JwsError, detached_jws, verify_detached_jws

CONTENT = "Hello from the other side. I must have called a thousand times."
SHORT_SECRET = "my voice is my passcode"
LONG_SECRET = "my voice is my passcode. my voice is my passcode"
KID = "joshua"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Vectors from upstream cluster-bootstrap jws_test.go (several versions of the file).
@pytest.mark.parametrize(
    ("content", "secret", "expected"),
    [
        (
            CONTENT,
            SHORT_SECRET,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8",
        ),
        (
            "",
            SHORT_SECRET,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk",
        ),
        (
            CONTENT,
            "",
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8",
        ),
        (
            CONTENT,
            LONG_SECRET,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..SFoKn0-YxqnvpSExt4LuCZ_7pvIBdX3SoUO_NsTpkdg",
        ),
        (
            "",
            LONG_SECRET,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..kzZha466Sbz_vFhUBjjYp2rl3F7yHgdDdUIBGxQg4js",
        ),
    ],
)
def test_upstream_vectors(content: str, secret: str, expected: str) -> None:
    assert detached_jws(content, KID, secret) == expected
    verify_detached_jws(expected, content, KID, secret)


def test_header_of_a_real_cluster() -> None:
    """deps-survey §3: token id abcdef gives this header segment on a real cluster."""
    jws = detached_jws("apiVersion: v1\n", "abcdef", "0123456789abcdef")
    assert jws.startswith("eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..")


# --- strict verification: unhappy paths ------------------------------------------------------

GOOD = detached_jws(CONTENT, KID, SHORT_SECRET)
HEADER, _, SIG = GOOD.split(".")


def _with_header(header: object) -> str:
    return f"{_b64(json.dumps(header, separators=(',', ':')).encode())}..{SIG}"


@pytest.mark.parametrize(
    ("jws", "content", "kid", "secret", "message"),
    [
        (GOOD, CONTENT + "!", KID, SHORT_SECRET, "signature does not verify"),
        (GOOD, CONTENT, KID, SHORT_SECRET + "x", "signature does not verify"),
        (GOOD, CONTENT, "abcdef", SHORT_SECRET, "key id does not match"),
        (f"{HEADER}.{_b64(CONTENT.encode())}.{SIG}", CONTENT, KID, SHORT_SECRET, "detached"),
        (f"{HEADER}..{SIG}.", CONTENT, KID, SHORT_SECRET, "detached"),
        (f"{HEADER}..{SIG}=", CONTENT, KID, SHORT_SECRET, "base64url"),
        (f"{HEADER}..{SIG[:-1]}", CONTENT, KID, SHORT_SECRET, "signature"),
        (f"{HEADER}..{SIG}A", CONTENT, KID, SHORT_SECRET, "signature does not verify"),
        (f"{HEADER}x..{SIG}", CONTENT, KID, SHORT_SECRET, "base64url"),
        (f"{_b64(b'not json')}..{SIG}", CONTENT, KID, SHORT_SECRET, "not JSON"),
        (_with_header(["HS256"]), CONTENT, KID, SHORT_SECRET, "exactly"),
        (_with_header({"alg": "none", "kid": KID}), CONTENT, KID, SHORT_SECRET, "HS256"),
        (_with_header({"alg": "HS512", "kid": KID}), CONTENT, KID, SHORT_SECRET, "HS256"),
        (_with_header({"alg": "HS256"}), CONTENT, KID, SHORT_SECRET, "exactly"),
        (
            _with_header({"alg": "HS256", "kid": KID, "crit": ["b64"]}),
            CONTENT,
            KID,
            SHORT_SECRET,
            "exactly",
        ),
        (_with_header({"alg": "HS256", "kid": 7}), CONTENT, KID, SHORT_SECRET, "key id"),
    ],
)
def test_verify_rejects(jws: str, content: str, kid: str, secret: str, message: str) -> None:
    with pytest.raises(JwsError) as info:
        verify_detached_jws(jws, content, kid, secret)
    assert message in str(info.value)
    assert secret not in str(info.value) or secret == ""


def test_other_json_spelling_of_the_header_still_verifies() -> None:
    """A signer that serialises the header differently is judged by its MAC, not its bytes."""
    header = _b64(b'{"kid":"joshua", "alg":"HS256"}')
    mac = hmac.new(
        SHORT_SECRET.encode(),
        f"{header}.{_b64(CONTENT.encode())}".encode(),
        hashlib.sha256,
    ).digest()
    verify_detached_jws(f"{header}..{_b64(mac)}", CONTENT, KID, SHORT_SECRET)


# --- joserfc as an independent oracle ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kid", "secret"),
    [
        ("apiVersion: v1\nclusters: []\n", "abcdef", "0123456789abcdef"),
        (CONTENT, KID, LONG_SECRET),
        ("ünïcode ✓", "a1b2c3", "z" * 16),
    ],
)
def test_joserfc_agrees(content: str, kid: str, secret: str) -> None:
    # joserfc warns on keys under 256 bits; upstream pads to 32 bytes, HMAC-equivalent.
    key = OctKey.import_key(secret.encode().ljust(32, b"\0"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compact = jose_jws.serialize_compact(
            {"alg": "HS256", "kid": kid}, content.encode(), key, algorithms=["HS256"]
        )
        theirs = jose_jws.detach_content(compact)
        ours = detached_jws(content, kid, secret)
        verify_detached_jws(theirs, content, kid, secret)
        obj = jose_jws.deserialize_compact(
            ours, key, payload=content.encode(), algorithms=["HS256"]
        )
    assert obj.payload == content.encode()
    assert obj.protected == {"alg": "HS256", "kid": kid}
    assert theirs == ours
