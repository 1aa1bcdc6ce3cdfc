"""What every admin command shares: kubeconfig flags, exit codes, error translation, progress.

Exit codes (documented in ``docs/cli.md``; scripts may rely on them):

* ``0`` — success;
* ``1`` — the command ran and failed: the server refused (``Forbidden``, ``NotFound``,
  ``AlreadyExists``…), it could not be reached, the kubeconfig cannot be used, or the request
  makes no sense for the objects found (approving a denied CSR);
* ``2`` — bad flags or arguments, found before anything was sent (click's usage errors and
  :class:`click.BadParameter`).

Errors are translated once, here (:func:`run_api`), into :class:`CommandError` whose message
says what to do next; nothing secret (tokens) goes into a message.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kubeboot.agent.kubeconfigs import ca_pem_of
from kubeboot.client.http import ApiUnreachable, HttpApiClient, user_agent
from kubeboot.client.kubeconfig import ClientConfig, KubeconfigError, load_client_config
from kubeboot.resources.status import Forbidden, StatusError, Unauthorized

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "KubeconfigRef",
    "Progress",
    "kubeconfig_options",
    "output_option",
    "run_api",
]

log = logging.getLogger("kubeboot.cli")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # click.UsageError.exit_code

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A failure after the flags were accepted; exit code 1, message printed as ``error: …``."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class KubeconfigRef:
    """``--kubeconfig`` / ``--context`` as given; resolved like kubectl on first use."""

    def __init__(self, path: Path | None, context: str | None) -> None:
        self.path = path
        self.context = context
        self._config: ClientConfig | None = None

    def config(self) -> ClientConfig:
        if self._config is None:
            try:
                self._config = load_client_config(self.path, context=self.context)
            except KubeconfigError as e:
                raise CommandError(str(e)) from e
        return self._config

    def ca_pem(self, purpose: str) -> bytes:
        """The CA bundle of the current cluster, or an error that says how to add one."""
        config = self.config()
        try:
            pem = ca_pem_of(config.cluster)
        except (OSError, ValueError) as e:
            raise CommandError(f"cannot read the CA of context {config.context_name!r}: {e}") from e
        if not pem:
            raise CommandError(
                f"the cluster of kubeconfig context {config.context_name!r} has no "
                f"certificate-authority or certificate-authority-data, so {purpose}; add the CA "
                "with `kubectl config set-cluster <cluster> --certificate-authority=ca.crt "
                "--embed-certs=true`, or use the admin kubeconfig kubeboot server wrote "
                "(<data-dir>/admin.conf)"
            )
        return pem

    def client(self) -> HttpApiClient:
        return HttpApiClient(self.config(), user_agent=user_agent("cli"))


def kubeconfig_options(f: F) -> F:
    """Add ``--kubeconfig`` and ``--context`` (the command builds a :class:`KubeconfigRef`)."""
    f = click.option(
        "--context",
        default=None,
        help="Kubeconfig context to use (default: current-context).",
    )(f)
    return click.option(
        "--kubeconfig",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Kubeconfig file (default: $KUBECONFIG, merged as kubectl does, else ~/.kube/config).",
    )(f)


def output_option(*choices: str, default: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


def _describe_status(error: StatusError, server: str) -> str:
    if isinstance(error, Unauthorized):
        return (
            f"{server} rejected the credentials in the kubeconfig (401 Unauthorized): "
            f"{error.message}; use an admin kubeconfig "
            "(kubeboot server writes <data-dir>/admin.conf)"
        )
    if isinstance(error, Forbidden):
        return f"{error.message} (403 Forbidden; use a kubeconfig with more rights)"
    return error.message


def run_api(kube: KubeconfigRef, work: Callable[[HttpApiClient], Awaitable[T]]) -> T:
    """Run ``work`` with a client from ``kube``, translating every failure to exit code 1."""

    async def main() -> T:
        async with kube.client() as client:
            return await work(client)

    config = kube.config()
    try:
        return asyncio.run(main())
    except StatusError as e:
        raise CommandError(_describe_status(e, config.server)) from e
    except ApiUnreachable as e:
        raise CommandError(
            f"cannot reach the API server: {e}; is it running, and is this the right kubeconfig?"
        ) from e
    except KubeconfigError as e:
        raise CommandError(str(e)) from e


class Progress:
    """One line on stderr that says what we wait for and for how long, updated in place.

    On a terminal the line is rewritten with ``\\r``; otherwise (logs, tests) one log line
    (:mod:`kubeboot.logs`) when waiting starts and one when it ends.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._shown = False

    def tick(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.tty:
            click.echo(f"\r{self.what}... {elapsed:.0f}s", err=True, nl=False)
        elif not self._shown:
            log.info(f"{self.what}...")
        self._shown = True

    def done(self, outcome: str) -> None:
        elapsed = time.monotonic() - self.start
        if self._shown and self.tty:
            click.echo(f"\r{self.what}: {outcome} after {elapsed:.0f}s", err=True)
        elif self._shown:
            log.info(f"{self.what}: {outcome} after {elapsed:.0f}s")
