"""The REST registry (upstream ``k8s.io/apiserver/pkg/registry`` and kube-apiserver's
``pkg/registry``): the generic store over ``kubeboot.storage`` (``rest``), per-kind strategies
and the table that picks them, list/watch, selectors, patch, object metadata, the review
resources answered by the authorizer, and the in-process client the controllers use.

Knows nothing of HTTP: must not import ``kubeboot.api.endpoints`` or ``kubeboot.api.server``.
"""
