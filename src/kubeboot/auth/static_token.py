"""The static token file (``--token-auth-file``, server-facts §3.1).

Format, as upstream's ``tokenfile.go`` reads it with Go ``encoding/csv``: one record per line,
``token,user,uid[,"group1,group2"]``, RFC 4180 quoting, a variable number of fields. Fewer than
three fields is a start-up error naming the file and the line; an empty token is skipped with
a warning; when a token repeats, the later record wins (also with a warning). The fourth field
is split on ``,`` with no trimming, exactly as upstream (so ``""`` gives the group ``""``).

Upstream looks tokens up with a plain map access, whose string compare can leak how many
leading characters of a real token a guess got right. We key the table by SHA-256 of the token:
the dict's compare then runs over digests, and learning a digest prefix says nothing about a
token (a ``compare_digest`` afterwards would compare the digest with itself, so there is none).
Tokens never appear in a log line or an exception, and the table keeps only the digest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from kubeboot.auth.interface import UserInfo

__all__ = ["StaticTokenAuthenticator", "TokenFileError", "parse_token_file"]

log = logging.getLogger(__name__)


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the line."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _go_csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) per record, with Go ``encoding/csv``'s rules (LazyQuotes off).

    Python's :mod:`csv` accepts what Go refuses (a bare ``"`` inside an unquoted field, an
    unterminated quoted field at the end), so the reader is written out: a quoted field runs to
    a ``"`` followed by ``,`` or the end of the line, ``""`` inside it is one ``"``, and it may
    span lines; empty lines are skipped; ``\r\n`` is a line end.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        start_line = i + 1
        line = lines[i]
        i += 1
        if line == "":
            continue
        fields: list[str] = []
        pos = 0
        while True:
            if line.startswith('"', pos):
                value: list[str] = []
                pos += 1
                while True:
                    quote = line.find('"', pos)
                    if quote < 0:
                        if i >= len(lines):
                            raise TokenFileError(
                                f'line {start_line}: extraneous or missing " in quoted-field'
                            )
                        value.append(line[pos:] + "\n")
                        line, pos = lines[i], 0
                        i += 1
                        continue
                    value.append(line[pos:quote])
                    pos = quote + 1
                    if line.startswith('"', pos):
                        value.append('"')
                        pos += 1
                    elif pos == len(line) or line[pos] == ",":
                        break
                    else:
                        raise TokenFileError(f'line {i}: extraneous or missing " in quoted-field')
                fields.append("".join(value))
            else:
                comma = line.find(",", pos)
                field = line[pos:] if comma < 0 else line[pos:comma]
                if '"' in field:
                    raise TokenFileError(f'line {i}: bare " in non-quoted-field')
                fields.append(field)
                pos = len(line) if comma < 0 else comma
            if pos >= len(line):
                break
            pos += 1  # past the comma
            if pos == len(line):
                fields.append("")
                break
        yield start_line, fields


def parse_token_file(text: str, path: str) -> dict[bytes, UserInfo]:
    """SHA-256(token) → user, for the file's text; raises :class:`TokenFileError`."""
    table: dict[bytes, UserInfo] = {}
    try:
        records = list(_go_csv_records(text))
    except TokenFileError as e:
        raise TokenFileError(f"token file '{path}', {e}") from None
    for record_num, (line, record) in enumerate(records, start=1):
        if len(record) < 3:
            raise TokenFileError(
                f"token file '{path}' must have at least 3 columns (token, user name, "
                f"user uid), found {len(record)} on line {line}"
            )
        token, name, uid = record[0], record[1], record[2]
        if token == "":
            log.warning("empty token in token file '%s', record %d", path, record_num)
            continue
        groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
        key = _digest(token)
        if key in table:
            log.warning("duplicate token in token file '%s', record %d", path, record_num)
        table[key] = UserInfo(name=name, uid=uid, groups=groups)
    return table


class StaticTokenAuthenticator:
    """Token authenticator over a parsed token file; None for any token it does not hold."""

    def __init__(self, table: dict[bytes, UserInfo]) -> None:
        self._table = table

    @classmethod
    def from_file(cls, path: str | Path) -> StaticTokenAuthenticator:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TokenFileError(f"token file '{path}' cannot be read: {e}") from None
        return cls(parse_token_file(text, str(path)))

    def authenticate_token(self, token: str) -> UserInfo | None:
        return self._table.get(_digest(token))
