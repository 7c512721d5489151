"""How the lab splits a WinRS command line: cmd.exe's pipes (commandline.split_cmd_pipeline) and
CommandLineToArgvW (cmdwords.split_args), and the lab's cached view of the product catalogue."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from rebuild.datadir import default_data_dir
from rebuild.errors import ConfigError
from rebuild.lab.exec.cmdwords import split_args
from rebuild.lab.exec.commandline import split_cmd_pipeline
from rebuild.lab.installers import catalogue


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        # Microsoft Learn, "Parsing C++ command-line arguments" (the table of examples).
        ('"a b c" d e', ["a b c", "d", "e"]),
        ('"ab\\"c" "\\\\" d', ['ab"c', "\\", "d"]),
        ('a\\\\\\b d"e f"g h', ["a\\\\\\b", "de fg", "h"]),
        ('a\\\\\\"b c d', ['a\\"b', "c", "d"]),
        ('a\\\\\\\\"b c" d e', ["a\\\\b c", "d", "e"]),
        ('a"b"" c d', ['ab" c d']),
        # Blanks: spaces and tabs separate, runs of them count once, none at the ends.
        ("  one\t two  ", ["one", "two"]),
        ('""', [""]),
        ("", []),
    ],
)
def test_split_args_follows_commandlinetoargvw(line: str, argv: list[str]) -> None:
    assert split_args(line) == argv


def test_split_args_keeps_a_long_encoded_command_whole() -> None:
    encoded = base64.b64encode(("Write-Output 'x'\n" * 4000).encode("utf-16-le")).decode()
    line = f'PowerShell -NoProfile -EncodedCommand {encoded} "C:\\Program Files\\x" tail\\\\'
    assert split_args(line) == [
        "PowerShell",
        "-NoProfile",
        "-EncodedCommand",
        encoded,
        "C:\\Program Files\\x",
        "tail\\\\",
    ]


@pytest.mark.parametrize(
    ("line", "stages"),
    [
        ("whoami", ["whoami"]),
        ("  auditpol /get /category:*  ", ["auditpol /get /category:*"]),
        ("net user | findstr /i admin", ["net user", "findstr /i admin"]),
        ('findstr "a|b" x | findstr c', ['findstr "a|b" x', "findstr c"]),
        ('echo "a & b > c ^ d"', ['echo "a & b > c ^ d"']),
        ("a |", ["a", ""]),
        # cmd syntax the lab does not simulate: conditional pipes, &, redirection, escapes.
        ("a || b", None),
        ("a & b", None),
        ("a > out.txt", None),
        ("a < in.txt", None),
        ("echo ^|", None),
        ('"unterminated | a" & b', None),
    ],
)
def test_split_cmd_pipeline(line: str, stages: list[str] | None) -> None:
    assert split_cmd_pipeline(line) == stages


def test_catalogue_is_read_again_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(default_data_dir(), data)
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))
    first = catalogue()
    assert catalogue() is first  # unchanged files: parsed once
    applications = data / "applications.yml"
    applications.write_text(
        applications.read_text().replace(first.repository, "https://share.example.lan/apps", 1)
    )
    assert catalogue().repository == "https://share.example.lan/apps"
    applications.write_text("repository: [not, valid")
    with pytest.raises(ConfigError, match=r"applications\.yml"):
        catalogue()  # an edited, broken catalogue fails as load_catalogue does, never the old one
