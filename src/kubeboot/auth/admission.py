"""Authorization-dependent admission: CSR approval/signing, subject restriction, NodeRestriction.

Each hook has the ``kubeboot.api.registry.rest.Admission`` shape ``(user, resource, verb,
subresource, new, old)`` and raises :class:`~kubeboot.resources.status.Forbidden` with
upstream's message:

* ``CertificateApproval``: writing ``/approval`` needs ``approve`` on ``signers`` for the
  **stored** signerName (server-facts §4.6, §4.8: the full name, then ``<domain>/*``);
* ``CertificateSigning``: a ``/status`` write that changes ``status.certificate`` needs
  ``sign`` the same way;
* ``CertificateSubjectRestriction``: a ``kube-apiserver-client`` CSR asking for
  ``system:masters`` is refused at creation;

Those are validating plugins (they see the object after defaulting and validation).
Mutating plugins — ``NodeRestriction`` (:mod:`kubeboot.auth.noderestriction`) — see the
object as sent, before the RBAC escalation check and validation, through
:class:`AdmissionRequest`, and also run on delete.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.pki.csr import subject_restriction_error
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Forbidden, qualified_resource

__all__ = [
    "AdmissionHook",
    "AdmissionRequest",
    "CsrAdmission",
    "MutatingAdmission",
    "signer_allowed",
]

JsonObj = dict[str, Any]
# The shape of ``kubeboot.api.registry.rest.Admission``, spelled here so auth does not import
# the API.
AdmissionHook = Callable[
    [UserInfo, ResourceInfo, str, str, JsonObj, JsonObj | None], Awaitable[None]
]
_CERTS = "certificates.k8s.io"


def signer_allowed(authorizer: Authorizer, user: UserInfo, verb: str, signer_name: str) -> bool:
    """Upstream's ``IsAuthorizedForSignerName``: the exact signer, then ``<domain>/*``."""
    names = [signer_name]
    domain, slash, _ = signer_name.partition("/")
    if slash:
        names.append(f"{domain}/*")
    return any(
        authorizer.authorize(
            Attributes(
                user=user,
                verb=verb,
                api_group=_CERTS,
                api_version="*",
                resource="signers",
                name=name,
            )
        ).allowed
        for name in names
    )


def _signer(obj: JsonObj | None) -> str:
    return str(((obj or {}).get("spec") or {}).get("signerName") or "")


class CsrAdmission:
    """The three CSR admission plugins over one authorizer."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    async def __call__(
        self,
        user: UserInfo,
        res: ResourceInfo,
        verb: str,
        subresource: str,
        obj: JsonObj,
        old: JsonObj | None,
    ) -> None:
        if res.group != _CERTS or res.plural != "certificatesigningrequests":
            return
        if verb == "create":
            try:
                request = base64.b64decode(str(obj.get("spec", {}).get("request") or ""))
            except (binascii.Error, ValueError):
                return  # validation reports the malformed request with a field error
            error = subject_restriction_error(_signer(obj), request)
            if error is not None:
                raise Forbidden(error)
            return
        signer = _signer(old)
        if subresource == "approval" and not signer_allowed(
            self._authorizer, user, "approve", signer
        ):
            raise Forbidden(f'user not permitted to approve requests with signerName "{signer}"')
        if subresource == "status":
            new_cert = (obj.get("status") or {}).get("certificate")
            old_cert = ((old or {}).get("status") or {}).get("certificate")
            if new_cert != old_cert and not signer_allowed(self._authorizer, user, "sign", signer):
                raise Forbidden(f'user not permitted to sign requests with signerName "{signer}"')


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """``admission.Attributes``: what a write is, by whom, with the object as sent.

    ``name`` is the request's name (on create: the object's, as upstream's handler sets it);
    ``obj`` is None on delete, ``old`` None on create.
    """

    user: UserInfo
    group: str
    resource: str
    operation: str  # "create", "update" or "delete"
    subresource: str
    namespace: str
    name: str
    obj: JsonObj | None
    old: JsonObj | None

    def forbidden(self, reason: str) -> Forbidden:
        """``admission.NewForbidden``: ``<resource> "<name>" is forbidden: <reason>``."""
        name = self.name or _name_or_generate_name(self.obj) or "Unknown"
        return Forbidden(
            f'{qualified_resource(self.resource, self.group)} "{name}" is forbidden: {reason}',
            name=name,
            group=self.group,
            kind=self.resource,
        )


MutatingAdmission = Callable[[AdmissionRequest], Awaitable[None]]


def _name_or_generate_name(obj: JsonObj | None) -> str:
    meta = (obj or {}).get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")
