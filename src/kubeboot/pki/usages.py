"""``spec.usages`` strings of ``certificates.k8s.io/v1`` and their X.509 meaning.

The tables mirror upstream ``keyUsageDict`` / ``extKeyUsageDict``
(``pkg/controller/certificates/authority/policies.go``). ``EXT_KEY_USAGES`` is listed in Go's
``x509.ExtKeyUsage`` enum order because the signer sorts EKUs by that enum.
"""

from __future__ import annotations

from types import MappingProxyType

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

__all__ = [
    "ALL_USAGES",
    "EXT_KEY_USAGES",
    "KEY_USAGE_BITS",
    "USAGE_CLIENT_AUTH",
    "USAGE_DIGITAL_SIGNATURE",
    "USAGE_KEY_ENCIPHERMENT",
    "USAGE_SERVER_AUTH",
]

USAGE_DIGITAL_SIGNATURE = "digital signature"
USAGE_KEY_ENCIPHERMENT = "key encipherment"
USAGE_CLIENT_AUTH = "client auth"
USAGE_SERVER_AUTH = "server auth"

# usage string -> keyword of cryptography's ``x509.KeyUsage`` constructor.
KEY_USAGE_BITS = MappingProxyType(
    {
        "signing": "digital_signature",
        "digital signature": "digital_signature",
        "content commitment": "content_commitment",
        "key encipherment": "key_encipherment",
        "key agreement": "key_agreement",
        "data encipherment": "data_encipherment",
        "cert sign": "key_cert_sign",
        "crl sign": "crl_sign",
        "encipher only": "encipher_only",
        "decipher only": "decipher_only",
    }
)

# usage string -> EKU OID, in Go enum order of the OIDs (``s/mime`` and ``email protection``
# are the same EKU).
EXT_KEY_USAGES = MappingProxyType(
    {
        "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "ipsec end system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
        "ipsec tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
        "ipsec user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
        "microsoft sgc": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
        "netscape sgc": ObjectIdentifier("2.16.840.1.113730.4.1"),
    }
)

# Every value ``spec.usages`` may hold (server-facts §4.2), sorted as Go's ``sets.List``.
ALL_USAGES: tuple[str, ...] = tuple(sorted({*KEY_USAGE_BITS, *EXT_KEY_USAGES}))
