"""Kubernetes object models, the resource table and pure validators (no I/O)."""
