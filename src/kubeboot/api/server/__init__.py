"""Serving (upstream ``k8s.io/apiserver/pkg/server``): configuration, the security stack's
wiring, the HTTPS site and listening socket, the event loop, worker processes, and ``serve``,
which owns the server's lifecycle from first-start init to graceful shutdown.

May import ``kubeboot.api.endpoints`` and ``kubeboot.api.registry``; nothing below imports it.
"""
