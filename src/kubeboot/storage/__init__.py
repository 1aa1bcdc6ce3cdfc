"""Revisioned key-value storage with etcd v3 semantics (SQLite embedded, etcd distributed)."""
