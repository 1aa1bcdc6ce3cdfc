"""Upstream command-line syntax for every kubeboot command: pflag's rules, klog's ``-v``,
one error style.

Kubernetes components parse flags with spf13/pflag, and people paste those lines (systemd
units, kubeadm output, docs) into kubeboot. :class:`UpstreamCommand` (every command) and
:class:`UpstreamGroup` (every group) make click read them the same way:

* **Booleans** (every ``is_flag`` option): bare ``--x`` is true; ``--x=<v>`` takes Go's
  ``strconv.ParseBool`` values (``1 t T TRUE true True``, ``0 f F FALSE false False``);
  a value after a space is *not* taken (pflag's ``NoOptDefVal`` rule: ``--x true`` is
  ``--x`` followed by the argument ``true``); ``--no-x`` is kubeboot's extra spelling of
  ``--x=false``; the last occurrence wins. An explicit ``--x=false`` counts as given on the
  command line (it overrides a config file).
* **Names**: ``_`` and ``-`` are the same in flag names (``cliflag.WordSepNormalizeFunc``:
  ``--node_ip`` is ``--node-ip``).
* **Verbosity**: klog's ``-v``/``--v`` (``-v=3``, ``-v 3``, ``-v3``, ``--v=3``), an int32
  as klog parses it; levels above 10 log as 10. With ``--logging-format text|json`` it is
  added to every command, and :func:`kubeboot.logs.setup_logging` runs before the command.
* **Deprecated aliases** (:class:`UpstreamOption` ``deprecated_aliases``): an old spelling is
  read as the new flag, with pflag's warning ``Flag --old has been deprecated, use --new``.
* **Errors**, one style for all commands, as kubectl prints them: ``error: <message>`` on
  stderr, plus ``See 'kubeboot join --help' for usage.`` after a usage error (exit 2);
  parse errors read as pflag's (``unknown flag: --tokn``, ``flag needs an argument:
  --token``, ``invalid argument "x" for "--v" flag: …``). A message never echoes a secret:
  the values of :class:`UpstreamOption` ``secret`` flags and anything shaped like a
  bootstrap token are redacted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from kubeboot.logs import LOG_FORMATS, redact, setup_logging

__all__ = [
    "SECRET_FLAGS",
    "UpstreamCommand",
    "UpstreamGroup",
    "UpstreamOption",
    "parse_bool",
    "report_error",
]

log = logging.getLogger("kubeboot.cli")

EXIT_USAGE = 2
_DEPRECATIONS = "kubeboot.deprecations"
_VERBOSITY = "kubeboot.verbosity"
_LOG_FORMAT = "kubeboot.logging_format"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INT32 = (-(1 << 31), (1 << 31) - 1)
# Flags whose values are secrets, on any command: never echoed in an error message.
SECRET_FLAGS = frozenset({"--token", "--tls-bootstrap-token", "--discovery-token"})


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``; ValueError with Go's message."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _normalize(name: str) -> str:
    """pflag's ``WordSepNormalizeFunc`` as click's token normalizer: ``_`` reads as ``-``."""
    return name.replace("_", "-")


def _flag_display(option: click.Option) -> str:
    """How pflag names a flag in an error: ``-v, --v`` with a shorthand, else ``--name``."""
    longs = [o for o in option.opts if o.startswith("--")]
    shorts = [o for o in option.opts if not o.startswith("--")]
    return f"{shorts[0]}, {longs[0]}" if shorts and longs else (longs or shorts)[0]


class UpstreamOption(click.Option):
    """A click option with what upstream flags need besides a type.

    ``secret``: the value is a credential (``--token``), never shown in errors or help
    defaults. ``deprecated_aliases``: old spellings read as this flag with a warning.
    """

    def __init__(
        self,
        param_decls: Sequence[str] | None = None,
        *,
        secret: bool = False,
        deprecated_aliases: Sequence[str] = (),
        **attrs: Any,
    ) -> None:
        super().__init__(param_decls, **attrs)
        self.secret = secret
        self.deprecated_aliases = tuple(deprecated_aliases)


def _is_bool(param: click.Parameter) -> bool:
    return (
        isinstance(param, click.Option)
        and param.is_flag
        and not param.is_eager
        and param.expose_value
        and isinstance(param.type, click.types.BoolParamType)
    )


class KlogLevel(click.ParamType[int]):
    """klog's ``Level``: ``strconv.ParseInt(value, 10, 32)``."""

    name = "int"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        text = str(value)
        try:
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
            level = int(text)
            if not _INT32[0] <= level <= _INT32[1]:
                raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
        except ValueError as e:
            shown = _flag_display(param) if isinstance(param, click.Option) else "--v"
            raise click.UsageError(f'invalid argument "{text}" for "{shown}" flag: {e}', ctx) from e
        return level


def _remember(key: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value
        return value

    return callback


def logging_params() -> list[click.Parameter]:
    """``-v``/``--v`` and ``--logging-format``, as every Kubernetes component has them."""
    return [
        UpstreamOption(
            ["-v", "--v", "v"],
            type=KlogLevel(),
            default=0,
            show_default=True,
            expose_value=False,
            callback=_remember(_VERBOSITY),
            help="Number for the log level verbosity (klog's -v: 0 is the default, 2 adds "
            "progress details, 5 and up debug details; up to 10).",
        ),
        UpstreamOption(
            ["--logging-format", "logging_format"],
            type=click.Choice(LOG_FORMATS),
            default="text",
            show_default=True,
            expose_value=False,
            callback=_remember(_LOG_FORMAT),
            help='Sets the log format. Permitted formats: "json", "text" (klog\'s header).',
        ),
    ]


def _with_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every command's and group's context: pflag's ``_``/``-`` names, ``-h`` for help."""
    settings = dict(kwargs.pop("context_settings", None) or {})
    settings.setdefault("token_normalize_func", _normalize)
    settings.setdefault("help_option_names", ["-h", "--help"])
    return {**kwargs, "context_settings": settings}


class _Scan:
    """What the pre-scan of a command line found (see :meth:`UpstreamCommand.parse_args`)."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.bools: dict[str, bool] = {}
        self.deprecations: list[str] = []


class UpstreamCommand(click.Command):
    """A click command that reads its command line as pflag does (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_settings(kwargs))
        self.params.extend(logging_params())

    # -- parsing ------------------------------------------------------------------------------

    def _tables(self) -> tuple[dict[str, click.Option], set[str], dict[str, str]]:
        bools: dict[str, click.Option] = {}
        valued: set[str] = set()
        aliases: dict[str, str] = {}
        for param in self.params:
            if not isinstance(param, click.Option):
                continue
            names = [*param.opts, *param.secondary_opts]
            if _is_bool(param):
                bools.update(dict.fromkeys(names, param))
            elif not param.is_flag and not param.count:
                valued.update(names)
            for alias in getattr(param, "deprecated_aliases", ()):
                aliases[alias] = param.opts[-1]
                if not _is_bool(param):
                    valued.add(alias)
        return bools, valued, aliases

    def _scan(self, ctx: click.Context, args: Sequence[str]) -> _Scan:
        bools, valued, aliases = self._tables()
        scan = _Scan()
        i = 0
        while i < len(args):
            token = args[i]
            i += 1
            if token == "--":
                scan.args.extend(args[i - 1 :])
                break
            if token.startswith("--") and len(token) > 2:
                raw, eq, value = token.partition("=")
                name = "--" + _normalize(raw[2:])
                if name in aliases:
                    scan.deprecations.append(
                        f"Flag {raw} has been deprecated, use {aliases[name]} instead"
                    )
                    name = aliases[name]
                option = bools.get(name)
                negated = bools.get("--" + name[5:]) if name.startswith("--no-") else None
                if option is not None:
                    assert option.name is not None
                    if not eq:
                        scan.bools[option.name] = True
                        continue
                    try:
                        scan.bools[option.name] = parse_bool(value)
                    except ValueError as e:
                        raise click.UsageError(
                            f'invalid argument "{value}" for "{_flag_display(option)}" flag: {e}',
                            ctx,
                        ) from None
                    continue
                if negated is not None and not eq:
                    assert negated.name is not None
                    scan.bools[negated.name] = False
                    continue
                scan.args.append(name + eq + value)
                if name in valued and not eq and i < len(args):
                    scan.args.append(args[i])  # its value, whatever it looks like
                    i += 1
                continue
            if len(token) > 2 and token[0] == "-" and token[1] != "-" and token[2] == "=":
                scan.args.extend([token[:2], token[3:]])  # pflag's -v=3
                continue
            scan.args.append(token)
            if token in valued and i < len(args):
                scan.args.append(args[i])
                i += 1
        return scan

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            scan = self._scan(ctx, args)
            rest = super().parse_args(ctx, scan.args)
        except click.UsageError as e:
            e.ctx = e.ctx or ctx  # the parser raises some without one: keep the usage hint
            raise
        for name, value in scan.bools.items():
            ctx.params[name] = value
            ctx.set_parameter_source(name, ParameterSource.COMMANDLINE)
        ctx.meta[_DEPRECATIONS] = scan.deprecations
        return rest

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's option list, with booleans shown as pflag takes them (``--x[=true|false]``)."""
        records = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None or isinstance(param, click.Argument):
                continue
            if _is_bool(param) and "[=true|false]" not in record[0]:
                assert isinstance(param, click.Option)
                name = param.opts[-1]
                record = (record[0].replace(name, f"{name}[=true|false]", 1), record[1])
            records.append(record)
        if records:
            with formatter.section("Options"):
                formatter.write_dl(records)

    # -- running ------------------------------------------------------------------------------

    def invoke(self, ctx: click.Context) -> Any:
        setup_logging(ctx.meta.get(_LOG_FORMAT, "text"), ctx.meta.get(_VERBOSITY, 0))
        for line in ctx.meta.get(_DEPRECATIONS, ()):
            log.warning(line)
        return super().invoke(ctx)

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:
        return _main(self, super().main, args, a, kw)


class UpstreamGroup(click.Group):
    """A click group whose subcommands are :class:`UpstreamCommand` s, with the same errors."""

    command_class = UpstreamCommand
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_settings(kwargs))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(f'unknown command "{name}" for "{ctx.command_path}"', ctx)
        return super().resolve_command(ctx, args)

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:
        return _main(self, super().main, args, a, kw)


# -- errors ---------------------------------------------------------------------------------


def _secret_values(args: Iterable[str]) -> list[str]:
    values = []
    items = list(args)
    for i, token in enumerate(items):
        name, eq, value = token.partition("=")
        name = "--" + _normalize(name[2:]) if name.startswith("--") else name
        if name in SECRET_FLAGS:
            if eq:
                values.append(value)
            elif i + 1 < len(items):
                values.append(items[i + 1])
    return [v for v in values if v]


def _message(error: click.ClickException) -> str:
    if isinstance(error, click.NoSuchOption):
        text = f"unknown flag: {error.option_name}"
        if error.possibilities:
            text += f" (did you mean {' or '.join(sorted(error.possibilities))}?)"
        return text
    if isinstance(error, click.BadOptionUsage) and "requires an argument" in error.message:
        return f"flag needs an argument: {error.option_name}"
    if isinstance(error, click.MissingParameter) and error.param is not None:
        missing = error.param.get_error_hint(error.ctx) if error.ctx else error.param.name
        return f"required flag {missing} not set"
    if isinstance(error, click.BadParameter):
        hint = error.param_hint
        if isinstance(hint, str):
            shown = hint
        elif hint:
            shown = " / ".join(hint)
        elif isinstance(error.param, click.Option):
            shown = _flag_display(error.param)
        else:
            shown = error.param.name if error.param is not None else ""
        if shown:
            return f'invalid argument for "{shown}" flag: {error.message}'
    return error.format_message()


def report_error(error: click.ClickException, args: Iterable[str] = ()) -> None:
    """Print ``error`` in kubeboot's one style, with every secret of ``args`` redacted."""
    text = _message(error)
    for secret in _secret_values(args):
        text = text.replace(secret, "<redacted>")
    click.echo(f"error: {redact(text)}", err=True)
    if isinstance(error, click.UsageError) and error.ctx is not None:
        click.echo(f"See '{error.ctx.command_path} --help' for usage.", err=True)


def _main(
    command: click.Command,
    parent_main: Any,
    args: Sequence[str] | None,
    a: tuple[Any, ...],
    kw: Mapping[str, Any],
) -> Any:
    """click's ``main`` with kubeboot's error style (standalone mode only)."""
    options = dict(kw)
    if not options.pop("standalone_mode", True):
        return parent_main(args, *a, standalone_mode=False, **options)
    argv = list(sys.argv[1:] if args is None else args)
    try:
        result = parent_main(argv, *a, standalone_mode=False, **options)
    except click.ClickException as e:
        report_error(e, argv)
        _exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        _exit(1)
    except KeyboardInterrupt:
        _exit(130)
    return _exit(result if isinstance(result, int) else 0)


def _exit(code: int) -> NoReturn:
    sys.exit(code)
