"""The --token-auth-file parser and authenticator (server-facts §3.1), unhappy paths first."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeboot.auth.interface import UserInfo
from kubeboot.auth.static_token import StaticTokenAuthenticator, TokenFileError, parse_token_file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t1,alice\n", "at least 3 columns .* found 2 on line 1"),
        ("t1,alice,1\nt2\n", "found 1 on line 2"),
        ('t1,alice,1\nt2,"bob,2\n', 'line 2: extraneous or missing "'),  # runs to EOF
        ('t1,al"ice,1,x\n', 'line 1: bare "'),  # Go's LazyQuotes is off
        ('t1,"al"ice,1\n', 'line 1: extraneous or missing "'),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message):
        parse_token_file(text, "/etc/tokens.csv")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot be read"):
        StaticTokenAuthenticator.from_file(tmp_path / "missing.csv")


def test_records_groups_empty_tokens_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "token.csv"
    path.write_text(
        "\n".join(
            [
                'admintoken,admin,uid-1,"system:masters,ops"',
                ",nobody,uid-0",  # empty token: skipped
                "",  # empty line: skipped
                "dup,first,uid-2",
                "dup,second,uid-3,",  # later wins; an empty 4th field is the group ""
                '"quoted,token",carol,uid-4',
                '"multi',
                'line""q",dave,uid-5\r',
            ]
        )
        + "\n"
    )
    authn = StaticTokenAuthenticator.from_file(path)
    assert authn.authenticate_token("admintoken") == UserInfo(
        "admin", "uid-1", ("system:masters", "ops")
    )
    assert authn.authenticate_token("dup") == UserInfo("second", "uid-3", ("",))
    assert authn.authenticate_token("quoted,token") == UserInfo("carol", "uid-4")
    assert authn.authenticate_token('multi\nline"q') == UserInfo("dave", "uid-5")
    for other in ("", "admintoke", "admintoken ", "ADMINTOKEN"):
        assert authn.authenticate_token(other) is None


def test_table_holds_no_token() -> None:
    table = parse_token_file("s3cret-token,alice,1\n", "f")
    assert all(b"s3cret" not in k for k in table)
    assert "s3cret" not in repr(table)
