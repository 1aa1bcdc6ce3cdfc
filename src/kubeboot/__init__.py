"""kubeboot: Kubernetes TLS bootstrapping, re-implemented in Python, both sides of the wire."""

__all__ = ["__version__"]

__version__ = "0.1.0"
