"""kubeboot: Kubernetes TLS bootstrapping, re-implemented in Python, both sides of the wire."""

__all__ = ["KUBERNETES_VERSION", "__version__"]

__version__ = "0.1.0"
# The upstream release whose command lines, wire behaviour and files kubeboot follows and is
# tested against (the real binaries of tests/real); `kubeboot version` prints it.
KUBERNETES_VERSION = "v1.37.2"
