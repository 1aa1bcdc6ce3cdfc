"""Schema of ``ledger.kubeboot.io/v1``: kubeboot's own kinds (not upstream's, not generated).

The issuance ledger (``IssuedCertificate``), the revocation list (``CertificateRevocation``)
and the nodes refused a re-join (``RejoinDenial``); docs/beyond-upstream.md describes each
field. Written by hand in the generated modules' shape so that decoding, OpenAPI and field
validation treat them like any kind. No protobuf numbers: like a CustomResource upstream,
they are served as JSON and YAML only. Fields are only ever added here, never renamed or
removed (other tools, the console among them, read them).
"""

from __future__ import annotations

from kubeboot.resources.schema import GVK, STRING, TIME, Field, ListOf, Struct
from kubeboot.resources.schemas import meta_v1

GROUP = "ledger.kubeboot.io"

ISSUED_CERTIFICATE_SPEC = Struct(
    "io.kubeboot.ledger.v1.IssuedCertificateSpec",
    "v1.IssuedCertificateSpec",
    (
        Field("serialNumber", STRING, required=True, omitempty=False),
        Field("subject", STRING),
        Field("commonName", STRING),
        Field("organizations", ListOf(STRING, list_type="atomic")),
        Field("dnsNames", ListOf(STRING, list_type="atomic")),
        Field("ipAddresses", ListOf(STRING, list_type="atomic")),
        Field("signerName", STRING),
        Field("usages", ListOf(STRING, list_type="atomic")),
        Field("notBefore", TIME),
        Field("notAfter", TIME),
        Field("sha256Fingerprint", STRING),
        Field("csrName", STRING),
        Field("csrUID", STRING),
        Field("requestingUser", STRING),
        Field("requestingGroups", ListOf(STRING, list_type="atomic")),
        Field("approver", STRING),
        Field("approvalReason", STRING),
        Field("approvalMessage", STRING),
        Field("nodeName", STRING),
        Field("sourceAddress", STRING),
    ),
)

ISSUED_CERTIFICATE = Struct(
    "io.kubeboot.ledger.v1.IssuedCertificate",
    "v1.IssuedCertificate",
    (
        Field("kind", STRING),
        Field("apiVersion", STRING),
        Field("metadata", meta_v1.OBJECT_META),
        Field("spec", ISSUED_CERTIFICATE_SPEC),
    ),
    gvk=GVK(GROUP, "v1", "IssuedCertificate"),
)

CERTIFICATE_REVOCATION_SPEC = Struct(
    "io.kubeboot.ledger.v1.CertificateRevocationSpec",
    "v1.CertificateRevocationSpec",
    (
        Field("serialNumber", STRING, required=True, omitempty=False),
        Field("nodeName", STRING),
        Field("subject", STRING),
        Field("notAfter", TIME),
        Field("reason", STRING),
        Field("revokedBy", STRING),
        Field("revokedAt", TIME),
    ),
)

CERTIFICATE_REVOCATION = Struct(
    "io.kubeboot.ledger.v1.CertificateRevocation",
    "v1.CertificateRevocation",
    (
        Field("kind", STRING),
        Field("apiVersion", STRING),
        Field("metadata", meta_v1.OBJECT_META),
        Field("spec", CERTIFICATE_REVOCATION_SPEC),
    ),
    gvk=GVK(GROUP, "v1", "CertificateRevocation"),
)

REJOIN_DENIAL_SPEC = Struct(
    "io.kubeboot.ledger.v1.RejoinDenialSpec",
    "v1.RejoinDenialSpec",
    (
        Field("nodeName", STRING, required=True, omitempty=False),
        Field("reason", STRING),
        Field("deniedBy", STRING),
        Field("deniedAt", TIME),
    ),
)

REJOIN_DENIAL = Struct(
    "io.kubeboot.ledger.v1.RejoinDenial",
    "v1.RejoinDenial",
    (
        Field("kind", STRING),
        Field("apiVersion", STRING),
        Field("metadata", meta_v1.OBJECT_META),
        Field("spec", REJOIN_DENIAL_SPEC),
    ),
    gvk=GVK(GROUP, "v1", "RejoinDenial"),
)
