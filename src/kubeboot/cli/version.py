"""``kubeboot version``: this kubeboot and the upstream release it follows, like ``kubectl
version``.

Text (default)::

    kubeboot Version: v0.1.0
    Kubernetes Version: v1.37.2

``-o json`` (indented by two spaces, as kubectl's) and ``-o yaml`` print the same as an
object: ``kubebootVersion`` (``gitVersion``, ``pythonVersion``, ``platform``) and
``kubernetesVersion`` (``major``, ``minor``, ``gitVersion``) — the release whose flags,
files and wire behaviour kubeboot is written and tested against.
"""

from __future__ import annotations

import json
import platform
from typing import Any

import click
import yaml

from kubeboot import KUBERNETES_VERSION, __version__
from kubeboot.cli.commandline import UpstreamCommand

__all__ = ["version", "version_info"]


def version_info() -> dict[str, Any]:
    major, minor, _patch = KUBERNETES_VERSION.removeprefix("v").split(".", 2)
    return {
        "kubebootVersion": {
            "gitVersion": f"v{__version__}",
            "pythonVersion": platform.python_version(),
            "platform": f"{platform.system().lower()}/{platform.machine()}",
        },
        "kubernetesVersion": {"major": major, "minor": minor, "gitVersion": KUBERNETES_VERSION},
    }


@click.command(cls=UpstreamCommand)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "yaml"]),
    default=None,
    help="One of 'yaml' or 'json' (default: two lines of text).",
)
def version(output: str | None) -> None:
    """Print the kubeboot version and the Kubernetes release it is compatible with.

    \b
    Example:
      kubeboot version -o json
    """
    info = version_info()
    if output == "json":
        click.echo(json.dumps(info, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(info, sort_keys=False), nl=False)
    else:
        click.echo(f"kubeboot Version: {info['kubebootVersion']['gitVersion']}")
        click.echo(f"Kubernetes Version: {KUBERNETES_VERSION}")
