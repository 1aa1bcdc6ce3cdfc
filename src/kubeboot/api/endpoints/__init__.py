"""HTTP endpoints (upstream ``k8s.io/apiserver/pkg/endpoints``): the aiohttp application and
its routes, request info, filters (credentials, non-resource authorization), handlers per
verb, body decoding and content negotiation (JSON, YAML, protobuf, Table), field validation,
discovery and OpenAPI.

May import ``kubeboot.api.registry``; must not import ``kubeboot.api.server``.
"""
