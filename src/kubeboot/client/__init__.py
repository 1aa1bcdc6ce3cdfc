"""API clients: one protocol, two transports (in-process inside the server, HTTPS outside)."""
