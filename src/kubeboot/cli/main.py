"""Entry point. Subcommands are imported lazily so ``kubeboot agent`` never loads the server.

Each subcommand lives in its own module and is listed in ``_COMMANDS`` as
``name -> "module:attribute"``; the agent's memory target depends on this laziness.
"""

from __future__ import annotations

import importlib

import click

from kubeboot.cli.commandline import UpstreamGroup

__all__ = ["main"]

_COMMANDS: dict[str, tuple[str, str]] = {
    "agent": ("kubeboot.cli.agent", "agent"),
    "approver": ("kubeboot.cli.approver", "approver"),
    "ca": ("kubeboot.cli.ca", "ca"),
    "certs": ("kubeboot.cli.certs", "certs"),
    "console": ("kubeboot.cli.console", "console"),
    "csr": ("kubeboot.cli.csr", "csr"),
    "init": ("kubeboot.cli.init", "init"),
    "join": ("kubeboot.cli.join", "join"),
    "kubeconfig": ("kubeboot.cli.bootstrapconfig", "kubeconfig"),
    "server": ("kubeboot.cli.server", "server"),
    "storage": ("kubeboot.cli.storage", "storage"),
    "token": ("kubeboot.cli.token", "token"),
    "version": ("kubeboot.cli.version", "version"),
}


class _LazyGroup(UpstreamGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command = getattr(module, target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, name="kubeboot")
@click.version_option(package_name="kubeboot")
def cli() -> None:
    """kubeboot: Kubernetes TLS bootstrapping, server and node side.

    \b
    Start a control plane on this machine and print the join command:
      kubeboot server --data-dir ./kubeboot-data
    """


def main() -> None:
    cli(prog_name="kubeboot")
