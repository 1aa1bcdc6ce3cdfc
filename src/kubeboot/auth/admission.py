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
* ``NodeRestriction``: a node writes only its own Node object and its own CSINode.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.auth.node import node_restriction
from kubeboot.auth.node_scoped import csinode_restriction
from kubeboot.pki.csr import subject_restriction_error
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Forbidden, qualified_resource

__all__ = ["AdmissionHook", "CsrAdmission", "node_restriction_admission", "signer_allowed"]

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


async def node_restriction_admission(
    user: UserInfo,
    res: ResourceInfo,
    verb: str,
    subresource: str,
    obj: JsonObj,
    old: JsonObj | None,
) -> None:
    name = str(((old or obj).get("metadata") or {}).get("name") or "")
    if (res.group, res.plural) == ("storage.k8s.io", "csinodes"):
        reason = csinode_restriction(user, name)
        if reason is not None:
            raise Forbidden(
                f'{qualified_resource(res.plural, res.group)} "{name}" is forbidden: {reason}',
                name=name,
                group=res.group,
                kind=res.plural,
            )
        return
    if res.group != "" or res.plural != "nodes":
        return
    message = node_restriction(user, name)
    if message is not None:
        raise Forbidden(message)
