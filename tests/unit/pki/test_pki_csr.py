"""CSR validation with upstream's exact messages, and every in-tree signer rule."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.pki.csr import (
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    LEGACY_UNKNOWN_SIGNER,
    CsrError,
    build_csr,
    csr_facts,
    parse_csr_pem,
    signer_validation_error,
    subject_restriction_error,
    validate_csr_spec,
    validate_issued_certificate,
)
from kubeboot.pki.keys import generate_private_key
from tests.unit.pki.pki_helpers import csr_pem, make_csr, tamper_signature

CLIENT = ["digital signature", "client auth"]
CLIENT_RSA = ["digital signature", "key encipherment", "client auth"]
SERVING = ["digital signature", "server auth"]
SERVING_RSA = ["key encipherment", "digital signature", "server auth"]
NODE_CSR = build_csr(
    generate_private_key(), common_name="system:node:w1", organizations=["system:nodes"]
)


def _spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "request": base64.b64encode(NODE_CSR).decode(),
        "signerName": KUBELET_CLIENT_SIGNER,
        "usages": list(CLIENT),
    }
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


def _messages(spec: dict[str, Any]) -> list[str]:
    return [e.render() for e in validate_csr_spec(spec)]


# --- parse: unhappy paths first ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "PEM block type must be CERTIFICATE REQUEST"),
        (b"not pem at all", "PEM block type must be CERTIFICATE REQUEST"),
        (
            b"-----BEGIN NEW CERTIFICATE REQUEST-----\nAAAA\n"
            b"-----END NEW CERTIFICATE REQUEST-----\n",
            "PEM block type must be CERTIFICATE REQUEST",
        ),
        (
            # the *first* block decides, even if a good request follows
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + NODE_CSR,
            "PEM block type must be CERTIFICATE REQUEST",
        ),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "x509: malformed certificate request",
        ),
        (csr_pem(tamper_signature(make_csr())), "x509: ECDSA verification failure"),
    ],
)
def test_parse_rejects(data: bytes, message: str) -> None:
    with pytest.raises(CsrError) as info:
        parse_csr_pem(data)
    assert str(info.value) == message


def test_parse_skips_leading_text_like_go() -> None:
    assert parse_csr_pem(b"comment line\n" + NODE_CSR).subject.rfc4514_string() == (
        "CN=system:node:w1,O=system:nodes"
    )


def test_build_csr_shape_and_rsa_key() -> None:
    pem = build_csr(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        common_name="system:node:w1",
        organizations=["system:nodes"],
        dns_names=["w1.example"],
        ips=["10.1.2.3", "fd00::1"],
    )
    facts = csr_facts(parse_csr_pem(pem))
    assert facts.common_name == "system:node:w1"
    assert facts.organizations == ("system:nodes",)
    assert facts.dns_names == ("w1.example",)
    assert facts.ips == ("10.1.2.3", "fd00::1")
    assert [a.oid._name for a in parse_csr_pem(pem).subject] == ["organizationName", "commonName"]


# --- spec validation ---------------------------------------------------------------------


def test_request_error_shows_the_bytes_as_upstream_v137() -> None:
    """field.Error prints a []byte as JSON: base64 quoted, and null when absent."""
    errors = validate_csr_spec(_spec(request=base64.b64encode(b"-x").decode()))
    assert [(e.type, e.field) for e in errors] == [("FieldValueInvalid", "spec.request")]
    assert errors[0].message == 'Invalid value: "LXg=": PEM block type must be CERTIFICATE REQUEST'
    missing = validate_csr_spec(_spec(request=None))
    assert missing[0].message == "Invalid value: null: PEM block type must be CERTIFICATE REQUEST"


def test_request_that_is_not_base64() -> None:
    assert [e.field for e in validate_csr_spec(_spec(request="***"))] == ["spec.request"]


@pytest.mark.parametrize(
    ("usages", "expected"),
    [
        (None, ["spec.usages: Required value"]),
        ([], ["spec.usages: Required value"]),
        (
            ["client auth", "digital signature", "client auth"],
            ['spec.usages[2]: Duplicate value: "client auth"'],
        ),
        (
            ["client auth", "bogus"],
            [
                'spec.usages[1]: Unsupported value: "bogus": supported values: "any", '
                '"cert sign", "client auth", "code signing", "content commitment", "crl sign", '
                '"data encipherment", "decipher only", "digital signature", "email protection", '
                '"encipher only", "ipsec end system", "ipsec tunnel", "ipsec user", '
                '"key agreement", "key encipherment", "microsoft sgc", "netscape sgc", '
                '"ocsp signing", "s/mime", "server auth", "signing", "timestamping"'
            ],
        ),
    ],
)
def test_usages(usages: list[str] | None, expected: list[str]) -> None:
    spec = _spec()
    if usages is None:
        del spec["usages"]
    else:
        spec["usages"] = usages
    assert _messages(spec) == expected


LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("signer", "expected"),
    [
        (
            LEGACY_UNKNOWN_SIGNER,
            [
                'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": '
                "the legacy signerName is not allowed via this API version"
            ],
        ),
        ("", ["spec.signerName: Required value"]),
        (
            "example.com",
            [
                'spec.signerName: Invalid value: "example.com": must be a fully qualified '
                "domain and path of the form 'example.com/signer-name'"
            ],
        ),
        (
            "a/b/c",
            [
                'spec.signerName: Invalid value: "a/b/c": must be a fully qualified '
                "domain and path of the form 'example.com/signer-name'"
            ],
        ),
        (
            "example/signer",
            [
                'spec.signerName: Invalid value: "example": should be a domain with at '
                "least two segments separated by dots"
            ],
        ),
        (
            "Example.com/signer",
            [
                'spec.signerName: Invalid value: "Example.com": validating label "Example": '
                + LABEL_MSG
            ],
        ),
        (
            "example.com/Signer",
            [
                'spec.signerName: Invalid value: "Signer": validating label "Signer": '
                + SUBDOMAIN_MSG
            ],
        ),
        (
            "example.com/",
            [f'spec.signerName: Invalid value: "": validating label "": {SUBDOMAIN_MSG}'],
        ),
        (
            ("a" * 64) + ".com/x",
            [
                f'spec.signerName: Invalid value: "{"a" * 64}.com": validating label '
                f'"{"a" * 64}": must be no more than 63 characters'
            ],
        ),
        ("example.com/my-signer.ns.name", []),
    ],
)
def test_signer_name(signer: str, expected: list[str]) -> None:
    assert _messages(_spec(signerName=signer)) == expected


def test_signer_name_too_long() -> None:
    domain = ".".join(["a" * 63] * 4)[:253]
    signer = f"{domain}/{'b' * 253}.{'c' * 63}x"
    assert _messages(_spec(signerName=signer))[-1] == (
        "spec.signerName: Too long: may not be more than 571 bytes"
    )


@pytest.mark.parametrize(("seconds", "ok"), [(599, False), (0, False), (-1, False), (600, True)])
def test_expiration_seconds(seconds: int, ok: bool) -> None:
    expected = (
        []
        if ok
        else [
            f"spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration "
            "less than 600 seconds (10 minutes)"
        ]
    )
    assert _messages(_spec(expirationSeconds=seconds)) == expected


def test_all_errors_are_reported_together_in_upstream_order() -> None:
    spec = {"request": "", "usages": [], "signerName": "", "expirationSeconds": 1}
    assert [e.field for e in validate_csr_spec(spec)] == [
        "spec.request",
        "spec.usages",
        "spec.signerName",
        "spec.expirationSeconds",
    ]


# --- status.certificate --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"junk", "must contain at least one CERTIFICATE PEM block"),
        (NODE_CSR, 'only CERTIFICATE PEM blocks are allowed, found "CERTIFICATE REQUEST"'),
        (
            b"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n"
            b"-----END CERTIFICATE-----\n",
            "no PEM block headers are permitted",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "x509: malformed certificate",
        ),
    ],
)
def test_issued_certificate_rejects(data: bytes, detail: str) -> None:
    errors = validate_issued_certificate(_b64(data))
    assert [e.render() for e in errors] == [
        f'status.certificate: Invalid value: "<certificate data>": {detail}'
    ]


def test_issued_certificate_accepts_empty_and_real() -> None:
    from kubeboot.clock import FakeClock
    from kubeboot.pki.authority import create_self_signed_ca

    ca = create_self_signed_ca(clock=FakeClock())
    assert validate_issued_certificate("") == []
    assert validate_issued_certificate(_b64(b"text\n" + ca.certificate_pem * 2)) == []


# --- signer rules --------------------------------------------------------------------------

NODE = {"cn": "system:node:w1", "orgs": ("system:nodes",)}


@pytest.mark.parametrize(
    ("csr_args", "usages", "error"),
    [
        ({"orgs": ()}, CLIENT, "subject organization is not system:nodes"),
        ({"orgs": ("system:nodes", "x")}, CLIENT, "subject organization is not system:nodes"),
        (
            {"orgs": ("system:nodes", "system:nodes")},
            CLIENT,
            "subject organization is not system:nodes",
        ),
        ({"dns": ["a"]}, CLIENT, "DNS subjectAltNames are not allowed"),
        ({"emails": ["a@b.c"]}, CLIENT, "Email subjectAltNames are not allowed"),
        ({"ips": ["1.2.3.4"]}, CLIENT, "IP subjectAltNames are not allowed"),
        ({"uris": ["spiffe://x/y"]}, CLIENT, "URI subjectAltNames are not allowed"),
        ({"cn": "node:w1"}, CLIENT, "subject common name does not begin with system:node:"),
        (
            {},
            ["client auth"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
        (
            {},
            [*CLIENT, "server auth"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
        ({}, CLIENT, None),
        ({}, CLIENT_RSA, None),
        ({}, [*CLIENT, "client auth"], None),  # a set: duplicates collapse as in Go
    ],
)
def test_kubelet_client_rules(
    csr_args: dict[str, Any], usages: list[str], error: str | None
) -> None:
    facts = csr_facts(make_csr(**{**NODE, **csr_args}))
    assert signer_validation_error(KUBELET_CLIENT_SIGNER, facts, usages) == error


@pytest.mark.parametrize(
    ("csr_args", "usages", "error"),
    [
        ({"orgs": ("other",), "dns": ["a"]}, SERVING, "subject organization is not system:nodes"),
        ({}, SERVING, "DNS or IP subjectAltName is required"),
        ({"dns": ["a"], "emails": ["a@b.c"]}, SERVING, "Email subjectAltNames are not allowed"),
        (
            {"ips": ["1.2.3.4"], "uris": ["https://x"]},
            SERVING,
            "URI subjectAltNames are not allowed",
        ),
        (
            {"dns": ["a"], "cn": "bad"},
            CLIENT,
            "usages did not match [digital signature key encipherment server auth]",
        ),
        (
            {"dns": ["a"], "cn": "bad"},
            SERVING,
            "subject common name does not begin with system:node:",
        ),
        ({"dns": ["a"]}, SERVING, None),
        ({"ips": ["10.0.0.1"]}, SERVING_RSA, None),
    ],
)
def test_kubelet_serving_rules(
    csr_args: dict[str, Any], usages: list[str], error: str | None
) -> None:
    facts = csr_facts(make_csr(**{**NODE, **csr_args}))
    assert signer_validation_error(KUBELET_SERVING_SIGNER, facts, usages) == error


@pytest.mark.parametrize(
    ("usages", "error"),
    [
        (["client auth", "server auth"], "invalid usage for client certificate: server auth"),
        (["digital signature"], "missing required usage for client certificate: client auth"),
        (["key encipherment", "digital signature", "client auth"], None),
        (["client auth"], None),
    ],
)
def test_apiserver_client_rules(usages: list[str], error: str | None) -> None:
    facts = csr_facts(make_csr(cn="anyone", orgs=("any",), dns=["x"]))
    assert signer_validation_error(KUBE_APISERVER_CLIENT_SIGNER, facts, usages) == error


def test_legacy_unknown_has_no_rules_and_unknown_signers_are_not_ours() -> None:
    facts = csr_facts(make_csr(cn="x", orgs=()))
    assert signer_validation_error(LEGACY_UNKNOWN_SIGNER, facts, ["any"]) is None
    assert signer_validation_error("example.com/x", facts, CLIENT) == (
        'unrecognized signerName: "example.com/x"'
    )


def test_subject_restriction() -> None:
    masters = csr_pem(make_csr(cn="eve", orgs=("dev", "system:masters")))
    assert subject_restriction_error(KUBE_APISERVER_CLIENT_SIGNER, masters) == (
        "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    )
    assert subject_restriction_error(KUBE_APISERVER_CLIENT_SIGNER, b"junk") == (
        "PEM block type must be CERTIFICATE REQUEST"
    )
    assert subject_restriction_error(KUBELET_CLIENT_SIGNER, masters) is None
    assert subject_restriction_error(KUBE_APISERVER_CLIENT_SIGNER, NODE_CSR) is None


def test_last_common_name_wins_as_in_go() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "first"),
            x509.NameAttribute(NameOID.COMMON_NAME, "system:node:last"),
        ]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    assert csr_facts(csr).common_name == "system:node:last"
