"""What a Windows program sees of its command line, shared by cmd.exe (commandline.py) and the
programs it runs (native.py, powershell.exe): CommandLineToArgvW's splitting, and cmd.exe's own
"is not recognized" answer for programs Windows does not have. Imports neither side.
"""

from __future__ import annotations

import re

Output = tuple[int, bytes, bytes]

# Programs that do not exist on Windows: cmd.exe's own error, never a lab message.
UNIX_ONLY = {
    "uname",
    "cat",
    "ls",
    "id",
    "test",
    "which",
    "command",
    "sh",
    "bash",
    "grep",
    "awk",
    "sed",
    "stat",
    "readlink",
    "getent",
    "systemctl",
    "service",
    "rpm",
    "dpkg",
    "dpkg-query",
    "apt",
    "yum",
    "ps",
    "sudo",
    "true",
    "false",
    "env",
    "head",
    "tail",
    "pwsh",
}


def not_recognized(name: str) -> Output:
    msg = (
        f"'{name}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    return 1, b"", msg.encode()  # over WinRS the shell reports 1, not cmd's interactive 9009


def lab_refuses(what: str) -> Output:
    msg = f"the rebuild lab (a simulation) does not simulate {what}\r\n"
    return 1, b"", msg.encode()


# Characters CommandLineToArgvW copies as they are: outside quotes, all but blanks, backslashes
# and quotes; inside quotes, blanks too.
_PLAIN_RUN = re.compile(r'[^ \t\\"]+')
_QUOTED_RUN = re.compile(r'[^\\"]+')


def split_args(text: str) -> list[str]:
    """CommandLineToArgvW: how a Windows program (powershell.exe included) splits its command line."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        buf: list[str] = []
        quoted = False
        while i < n and (quoted or text[i] not in " \t"):
            plain = (_QUOTED_RUN if quoted else _PLAIN_RUN).match(text, i)
            if plain is not None:  # a run of ordinary characters (a whole base64 argument) at once
                buf.append(plain.group())
                i = plain.end()
                continue
            c = text[i]
            if c == "\\":
                j = i
                while j < n and text[j] == "\\":
                    j += 1
                count = j - i
                if j < n and text[j] == '"':
                    buf.append("\\" * (count // 2))
                    if count % 2:
                        buf.append('"')
                        i = j + 1
                    else:
                        i = j
                    continue
                buf.append("\\" * count)
                i = j
                continue
            if c == '"':
                if quoted and i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            buf.append(c)
            i += 1
        args.append("".join(buf))
    return args
