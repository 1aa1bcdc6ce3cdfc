"""The flag reference (``docs/flags.md``), generated from the click commands themselves.

``python -m kubeboot.cli.reference > docs/flags.md`` rewrites it; a test regenerates it and
fails when the committed file is stale, so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from kubeboot.cli.main import cli

__all__ = ["render_reference"]

_HEADER = """# Flag reference

Generated from the code by `python -m kubeboot.cli.reference > docs/flags.md`; do not edit
by hand (`tests/integration/docs/test_flags_reference.py` fails when this file is stale).
Exit codes and the commands' behaviour are described in [cli.md](cli.md).
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
    kind = "flag" if param.is_flag else param.type.get_metavar(param, ctx) or param.type.name
    default = ""
    value = param.get_default(ctx, call=False)
    if param.is_flag and param.secondary_opts:
        default = param.opts[0] if value else param.secondary_opts[0]
    elif not param.is_flag and isinstance(value, str | int | float | list | tuple):
        default = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return f"| {names} | {_cell(kind)} | {_cell(default)} | {_cell(param.help or '')} |"


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
    return "\n".join(out)


if __name__ == "__main__":
    click.echo(render_reference(), nl=False)
