"""kube-controller-manager's bootstrapping controllers over one runtime (design rule 4).

Controllers talk to an :class:`~kubeboot.client.interface.ApiClient`, never to the store, so
the same code runs inside ``kubeboot server`` and against any cluster. Entry point:
:func:`kubeboot.controllers.manager.run_controllers`.
"""
