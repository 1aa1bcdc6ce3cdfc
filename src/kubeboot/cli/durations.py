"""Go ``time.Duration`` strings (``8760h``, ``1h30m``, ``90s``, ``500ms``), as upstream flags take.

kubeadm and kube-controller-manager flags such as ``--ttl`` and ``--cluster-signing-duration``
are Go durations; accepting the same spelling lets upstream command lines work verbatim.
"""

from __future__ import annotations

import datetime as dt

import click

from kubeboot.durations import parse_go_duration

__all__ = ["GoDuration"]


class GoDuration(click.ParamType[dt.timedelta]):
    """A click parameter type for Go duration flags."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_go_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
