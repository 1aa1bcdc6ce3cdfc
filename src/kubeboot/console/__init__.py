"""``kubeboot console``: a local web page over any cluster, acting with a kubeconfig's identity.

``model`` turns API objects into what the page shows (pure), ``chart`` draws the certificate
timeline as inline SVG (pure), ``pages`` renders HTML (pure), ``app`` is the aiohttp shell:
access token, CSRF, the approve/deny actions.
"""
