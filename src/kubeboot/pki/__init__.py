"""PKI: keys, CSRs, issuance policy, SPKI pins, detached JWS and the server's own files.

Everything here is pure except :mod:`kubeboot.pki.files` (atomic writes) and
:mod:`kubeboot.pki.cluster` (the server's first-start PKI on disk).
"""
