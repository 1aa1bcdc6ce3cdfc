"""The node agent: discovery, client and serving certificate bootstrap and rotation.

Pure decisions (``naming``, ``rotation``, ``templates``, ``validity``) are functions of data
and an injected clock; ``certstore``, ``csrflow``, ``bootstrap``, ``discovery`` and
``daemon`` move bytes between them, the disk and an ``ApiClient``.
"""
