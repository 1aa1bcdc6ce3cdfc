"""pflag's rules, klog's -v, the one error style and ``kubeboot version``, on every command."""

from __future__ import annotations

import json
from collections.abc import Iterator

import click
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kubeboot import KUBERNETES_VERSION, __version__
from kubeboot.cli.commandline import UpstreamCommand, UpstreamGroup, parse_bool
from kubeboot.cli.main import cli

TRUE = ["1", "t", "T", "TRUE", "true", "True"]
FALSE = ["0", "f", "F", "FALSE", "false", "False"]
TOKEN = "abcdef.0123456789abcdef"


def walk(command: click.Command, path: str = "kubeboot") -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from walk(sub, f"{path} {name}")


COMMANDS = list(walk(cli))


def test_every_command_parses_as_upstream() -> None:
    for path, command in COMMANDS:
        kind = UpstreamGroup if isinstance(command, click.Group) else UpstreamCommand
        assert isinstance(command, kind), path


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_flag_has_help_and_booleans_are_pflag_booleans(
    path: str, command: click.Command
) -> None:
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help text"
        if param.is_flag and not param.is_eager:
            assert isinstance(param.type, click.types.BoolParamType), (path, param.opts)
            assert not param.secondary_opts, f"{path} {param.opts}: declare --x only"
            assert param.callback is None, (path, param.opts)
    if not isinstance(command, click.Group):
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert {"-v", "--v", "--logging-format"} <= names, path


def test_help_shows_the_pflag_boolean_form() -> None:
    result = CliRunner().invoke(cli, ["agent", "--help"])
    assert result.exit_code == 0
    assert "--rotate-certificates[=true|false]" in result.output


@pytest.mark.parametrize("text", TRUE)
def test_parse_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", FALSE)
def test_parse_bool_false(text: str) -> None:
    assert parse_bool(text) is False


@given(st.text(max_size=8))
def test_parse_bool_is_go_strconv(text: str) -> None:
    if text in TRUE or text in FALSE:
        assert parse_bool(text) is (text in TRUE)
    else:
        with pytest.raises(ValueError) as info:
            parse_bool(text)
        assert str(info.value) == f'strconv.ParseBool: parsing "{text}": invalid syntax'


@click.command(cls=UpstreamCommand)
@click.option("--flag", is_flag=True, default=False, help="a boolean")
@click.option("--name", default="", help="a string")
@click.argument("rest", nargs=-1)
def probe(flag: bool, name: str, rest: tuple[str, ...]) -> None:
    """A command to probe the parser with."""


_TOKENS = st.lists(
    st.sampled_from(
        ["--flag", "--no-flag", "--flag=true", "--flag=false", "--flag=1", "--flag=F",
         "--name", "--name=x", "--flag_x", "arg"]
    ),
    max_size=8,
)  # fmt: skip


@given(_TOKENS)
def test_booleans_last_one_wins_and_values_after_a_space_are_arguments(tokens: list[str]) -> None:
    args: list[str] = []
    expected_flag, expected_rest = False, []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--flag_x":
            token = "--flag"  # _ reads as -: "--flag_x" is not a flag name; use the real one
        args.append(token)
        if token in ("--flag", "--flag=true", "--flag=1"):
            expected_flag = True
        elif token in ("--no-flag", "--flag=false", "--flag=F"):
            expected_flag = False
        elif token == "--name":
            args.append("true")  # a value after a space belongs to a valued flag
        elif token == "arg":
            expected_rest.append("arg")
        i += 1
    ctx = probe.make_context("probe", args)
    assert ctx.params["flag"] is expected_flag
    assert list(ctx.params["rest"]) == expected_rest


def test_a_value_after_a_space_is_not_a_booleans_value() -> None:
    ctx = probe.make_context("probe", ["--flag", "false"])
    assert ctx.params["flag"] is True
    assert ctx.params["rest"] == ("false",)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent", "--tokn=x"], "error: unknown flag: --tokn"),
        (["join", "--token"], "error: flag needs an argument: --token"),
        (["agent", "--rotate-certificates="], 'invalid argument "" for "--rotate-certificates"'),
        (["agent", "-v=x"], 'invalid argument "x" for "-v, --v" flag: strconv.ParseInt'),
        (["agent", "--bootstrap-timeout", "25"], 'time: missing unit in duration "25"'),
        (["agent", "--logging-format=xml"], "error: invalid argument for"),
        (["nosuch"], 'error: unknown command "nosuch" for "kubeboot"'),
    ],
)
def test_one_error_style_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert "See 'kubeboot" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["join", "10.0.0.1:6443", TOKEN],  # the token forgotten behind --token: an extra arg
        ["join", f"--token={TOKEN}", "--nope"],
        ["join", "--tls-bootstrap-token", "not-a-token-but-secret", "--node-ip=bad"],
        ["agent", f"--node-ip={TOKEN}"],
        ["server", f"--secure-port={TOKEN}"],
    ],
)
def test_a_failing_command_line_never_echoes_a_token(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "0123456789abcdef" not in result.output
    assert "not-a-token-but-secret" not in result.output


def test_version_text_json_yaml() -> None:
    text = CliRunner().invoke(cli, ["version"])
    assert text.exit_code == 0
    assert text.stdout == (
        f"kubeboot Version: v{__version__}\nKubernetes Version: {KUBERNETES_VERSION}\n"
    )
    as_json = json.loads(CliRunner().invoke(cli, ["version", "-o", "json"]).stdout)
    assert as_json["kubebootVersion"]["gitVersion"] == f"v{__version__}"
    assert as_json["kubernetesVersion"] == {
        "major": "1",
        "minor": "37",
        "gitVersion": KUBERNETES_VERSION,
    }
    assert yaml.safe_load(CliRunner().invoke(cli, ["version", "-o=yaml"]).stdout) == as_json
    assert CliRunner().invoke(cli, ["version", "-o", "table"]).exit_code == 2
