"""The HTTPS API server, in upstream k8s.io/apiserver's three layers.

* ``server``: lifecycle, TLS, listening, worker processes, security wiring (``pkg/server``).
* ``endpoints``: HTTP routing from the resource table, request info, handlers, filters,
  discovery, OpenAPI, content negotiation (``pkg/endpoints``).
* ``registry``: the REST service over the store, per-kind strategies, list/watch, patch,
  review resources (``pkg/registry``).

Imports only go down: ``server`` → ``endpoints`` → ``registry``
(``tests/unit/api/test_layering.py`` enforces it).
"""
