"""The flag reference (``docs/flags.md``), generated from the click commands themselves.

``python -m kubeboot.cli.reference > docs/flags.md`` rewrites it; a test regenerates it and
fails when the committed file is stale, so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from kubeboot.cli.main import cli
from kubeboot.cli.upstreamflags import COMPONENTS, UPSTREAM_FLAGS

__all__ = ["render_reference"]

_HEADER = """# Flag reference

Generated from the code by `python -m kubeboot.cli.reference > docs/flags.md`; do not edit
by hand (`tests/integration/docs/test_flags_reference.py` fails when this file is stale).
Exit codes and the commands' behaviour are described in [cli.md](cli.md).

Every command reads its command line as Kubernetes components do (spf13/pflag):

* booleans: `--x`, `--x=true|false` (also `1 0 t f T F TRUE FALSE True False`); a value
  after a space is not taken (`--x true` is `--x` and the argument `true`); `--no-x` is
  kubeboot's extra spelling of `--x=false`; the last one given wins;
* `_` and `-` are the same in flag names (`--node_ip` is `--node-ip`);
* durations are Go's (`300ms`, `90s`, `1h30m`, `8760h`; a bare number is an error);
* `-v N` / `-v=N` / `--v=N` is klog's verbosity and `--logging-format text|json` the log
  format, on every command (log lines go to stderr, a command's result to stdout);
* errors: `error: <message>` on stderr (pflag's texts for flag errors), exit 2 for bad
  flags; values of `--token`, `--tls-bootstrap-token` and `--discovery-token` are never
  echoed.

[Upstream flags](#upstream-flags) at the end lists, per upstream component, which of its
flags kubeboot accepts, reads under an old name, or refuses, and why.
"""


def _walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, [*path, name])


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").replace("<", "&lt;").split())


def _option_row(ctx: click.Context, param: click.Parameter) -> str:
    assert isinstance(param, click.Option)
    names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    kind = "bool" if param.is_flag else param.type.get_metavar(param, ctx) or param.type.name
    default = ""
    value = param.get_default(ctx, call=False)
    if param.is_flag:
        default = "true" if value else "false"
    elif isinstance(value, str | int | float | list | tuple):
        default = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return f"| {names} | {_cell(kind)} | {_cell(default)} | {_cell(param.help or '')} |"


def _upstream_section() -> str:
    out = [
        "## Upstream flags\n",
        "Spellings from issue 15 and from the seed documents the guides replay (the TLS "
        "bootstrapping docs of Kubernetes 1.4-1.6, 1.7-1.8 and today, the kubeadm join "
        "reference, Krustlet's bootstrapping how-to). **accepted**: the upstream meaning, or "
        "accepted with no effect where kubeboot has nothing to apply it to (said so); "
        "**aliased**: an old name read as today's, with pflag's deprecation warning; "
        "**refused**: exit 2, `unknown flag` (or the reason). "
        "`tests/integration/cli/test_upstream_spellings.py` runs each accepted and aliased "
        "spelling through the real command and checks its effect.\n",
    ]
    for component in COMPONENTS:
        out.append(f"### {component}\n")
        out.append("| flag | status | kubeboot | why |\n|---|---|---|---|")
        out.extend(
            f"| `{_cell(f.spelling)}` | {f.status} | `{f.command}` | {_cell(f.why)} |"
            for f in UPSTREAM_FLAGS
            if f.component == component
        )
        out.append("")
    return "\n".join(out)


def render_reference() -> str:
    out = [_HEADER]
    for path, command in _walk(cli, ["kubeboot"]):
        if len(path) == 1:
            continue
        ctx = click.Context(command, info_name=" ".join(path))
        out.append(f"## {' '.join(path)}\n")
        summary = (command.help or "").split("\n\n")[0].strip()
        if summary:
            out.append(_cell(summary) + "\n")
        pieces = command.collect_usage_pieces(ctx)
        out.append(f"```\n{' '.join(path)} {' '.join(pieces)}\n```\n")
        if isinstance(command, click.Group):
            continue
        rows = [
            _option_row(ctx, p)
            for p in command.params
            if isinstance(p, click.Option) and not p.hidden
        ]
        if rows:
            out.append("| flag | value | default | meaning |\n|---|---|---|---|")
            out.append("\n".join(rows) + "\n")
    out.append(_upstream_section())
    return "\n".join(out)


if __name__ == "__main__":
    click.echo(render_reference(), nl=False)
