"""``python -m kubeboot`` is the same as the ``kubeboot`` command."""

from kubeboot.cli.main import main

main()
