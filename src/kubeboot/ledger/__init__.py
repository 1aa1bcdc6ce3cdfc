"""The issuance ledger, revocation and node-bound tokens (issue 21; docs/beyond-upstream.md).

``entries`` builds the objects (pure), ``recorder`` writes them when the registry stores an
issued certificate, ``revocations`` is the authenticator's O(1) index of revoked serials.
"""
