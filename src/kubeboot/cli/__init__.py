"""The ``kubeboot`` command line: server, init, join, agent, token, kubeconfig, csr, ca."""
