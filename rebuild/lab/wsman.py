"""WS-Management / WinRS on one twin: the SOAP side of a Windows WinRM service.

Implements the text-shell (cmd) resource as Windows does: Create, Command, Send, Receive,
Signal, Delete, with RelatesTo = the request's MessageID on every answer, and SOAP faults
(HTTP 500) shaped like Windows' for bad requests, unknown shells, timeouts and quotas:

- shells per user past `shell_quota` -> 2150859173 (0x803381A5, MaxShellsPerUser);
- operations per user past `operation_quota` -> 2150859174 (0x803381A6, the
  ERROR_WSMAN_QUOTA_MAX_OPERATIONS Ansible reacts to by recreating its shell). As on Windows,
  a Signal terminate does not give the operation back for a text shell; closing the shell does.

What a command does is not decided here: once its stdin is complete the command is handed to
the executor (rebuild.lab.exec.execute, in a worker thread) and its output is streamed back
through Receive. SIMULATION: only the cmd shell resource URI is served (no PSRP plugin).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
_T = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_R = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE = _T + "Create"
ACTION_DELETE = _T + "Delete"
ACTION_COMMAND = _R + "Command"
ACTION_SEND = _R + "Send"
ACTION_RECEIVE = _R + "Receive"
ACTION_SIGNAL = _R + "Signal"
SIGNAL_TERMINATE = _R + "signal/terminate"
SIGNAL_CTRL_C = _R + "signal/ctrl_c"
STATE_DONE = _R + "CommandState/Done"
STATE_RUNNING = _R + "CommandState/Running"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

MAX_ENVELOPE_BYTES = 500 * 1024  # MaxEnvelopeSizekb = 500, Windows' default
RECEIVE_CHUNK = 64 * 1024  # output bytes per Receive answer; the rest waits for the next one

# (stdout, stderr, exit code) from what a command carried; run in a worker thread.
# The executor writes UTF-8: WinRS re-encodes it into the shell's code page (below).
Executor = Callable[[str, list[str], bytes], tuple[int, bytes, bytes]]

# WINRS_CODEPAGE, the console code page of the shell (MS-WSMV 2.2.4.37 "WINRS_CODEPAGE";
# Win32 WSMAN_CMDSHELL_OPTION_CODEPAGE): console programs in the shell write their output in
# that code page, and WinRS sends those bytes as they are. Default 437 (OEM United States),
# which pywinrm's Protocol.open_shell() asks for; Ansible's winrm connection asks for 65001.
# A character the code page lacks becomes '?' (WideCharToMultiByte's default character).
# So "Maternité" leaves a 437 shell as b"Maternit\x82", which a strict UTF-8 reader refuses.
CODEPAGES = {"437": "cp437", "850": "cp850", "1252": "cp1252", "65001": "utf-8"}


def shell_encoding(codepage: str) -> str:
    """The Python codec of a WINRS_CODEPAGE the lab serves; any other is refused loudly."""
    if codepage not in CODEPAGES:
        raise WsmanFault(
            f"the rebuild lab (a simulation) does not simulate shell code page {codepage!r} "
            f"(simulated: {', '.join(CODEPAGES)})",
            wsman_code=2150858897,
            subcode="w:InvalidParameter",
            code="s:Sender",
        )
    return CODEPAGES[codepage]


def in_codepage(data: bytes, encoding: str) -> bytes:
    """Console output (UTF-8 from the executor) as the shell's code page carries it."""
    if encoding == "utf-8" or data.isascii():
        return data
    return data.decode("utf-8", "replace").encode(encoding, "replace")


class WsmanFault(Exception):
    """A SOAP fault to send back (HTTP 500), shaped like Windows' WSManFault."""

    def __init__(
        self,
        reason: str,
        *,
        wsman_code: int,
        subcode: str = "w:InternalError",
        code: str = "s:Receiver",
        wmi_error: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wsman_code = wsman_code
        self.subcode = subcode
        self.code = code
        self.wmi_error = wmi_error

    def envelope(self, relates_to: str | None, machine: str) -> bytes:
        wmi = ""
        if self.wmi_error:
            # Windows adds an MSFT_WmiError for quota faults; pywinrm reads error_Code from it.
            wmi = (
                '<p:MSFT_WmiError b:IsCIM_Error="true" '
                'xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" '
                'xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError" '
                'xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="p:MSFT_WmiError_Type">'
                '<p:CIMStatusCode xsi:type="cim:cimUnsignedInt">27</p:CIMStatusCode>'
                f'<p:Message xsi:type="cim:cimString">{escape(self.reason)}</p:Message>'
                f'<p:MessageID xsi:type="cim:cimString">HRESULT 0x{self.wsman_code:08x}</p:MessageID>'
                f'<p:error_Code xsi:type="cim:cimUnsignedInt">{self.wsman_code}</p:error_Code>'
                '<p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type>'
                "</p:MSFT_WmiError>"
            )
        relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
        body = (
            "<s:Fault>"
            f"<s:Code><s:Value>{self.code}</s:Value><s:Subcode><s:Value>{self.subcode}</s:Value>"
            "</s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en-US">{escape(self.reason)}</s:Text></s:Reason>'
            "<s:Detail>"
            f'<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
            f'Code="{self.wsman_code}" Machine={quoteattr(machine)}>'
            f"<f:Message>{escape(self.reason)}</f:Message></f:WSManFault>{wmi}"
            "</s:Detail></s:Fault>"
        )
        header = (
            "<a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action>"
            f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
            f"<a:To>{ANONYMOUS}</a:To>{relates}"
        )
        return _envelope(header, body)


class DropConnection(Exception):
    """The transport must drop the TCP connection without answering (injected fault)."""


def _envelope(header: str, body: str) -> bytes:
    return (
        '<s:Envelope xml:lang="en-US" '
        f'xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:x="{NS["x"]}" xmlns:w="{NS["w"]}" '
        f'xmlns:rsp="{NS["rsp"]}" xmlns:p="{NS["p"]}">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_timeout() -> WsmanFault:
    return WsmanFault(
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
        wsman_code=2150858793,
        subcode="w:TimedOut",
    )


def _fault_no_shell(shell_id: str) -> WsmanFault:
    return WsmanFault(
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        wsman_code=2150858843,
        subcode="w:InvalidSelectors",
        code="s:Sender",
    )


def _fault_schema(detail: str) -> WsmanFault:
    return WsmanFault(
        f"The WS-Management service cannot process the request because the XML is invalid. {detail}",
        wsman_code=2150858817,
        subcode="w:SchemaValidationError",
        code="s:Sender",
    )


def _duration_seconds(text: str | None, default: float) -> float:
    # xs:duration as WinRM clients send it: PT20S, PT20.000S, PT1M30S.
    if not text:
        return default
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
    if not match:
        raise _fault_schema(f"OperationTimeout {text!r} is not an xs:duration")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


@dataclass
class Command:
    id: str
    command: str
    arguments: list[str]
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    sent_any_stdin: bool = False
    started: bool = False
    terminated: bool = False
    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    encoding: str = "cp437"  # the shell's code page: how its output leaves the host
    out_pos: int = 0
    err_pos: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Shell:
    id: str
    owner: str
    codepage: str
    encoding: str  # Python codec of `codepage`
    last_used: float
    operations: int = 0
    commands: dict[str, Command] = field(default_factory=dict)


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    timeout: float
    options: dict[str, str]
    body: ET.Element
    drop: Callable[[], bool] | None = None  # injected fault: drop the connection on this Receive


def parse_request(data: bytes, default_timeout: float = 60.0) -> Request:
    """Parse and validate a WS-Man envelope. Raises WsmanFault(s:Sender) for bad requests."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise WsmanFault(
            "The WS-Management service cannot process the request because the envelope size in the request "
            "is too large.",
            wsman_code=2150858817,
            subcode="w:EncodingLimit",
            code="s:Sender",
        )
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _fault_schema("Document type declarations are not allowed.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise _fault_schema(str(exc)) from None
    if root.tag != f"{{{NS['s']}}}Envelope":
        raise _fault_schema("The root element is not a SOAP 1.2 Envelope.")
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise _fault_schema("The envelope has no Header or no Body.")

    def text(path: str) -> str | None:
        node = header.find(path, NS)
        return node.text.strip() if node is not None and node.text else None

    message_id = text("a:MessageID")
    action = text("a:Action")
    if not message_id or not action:
        raise WsmanFault(
            "A required header property could not be located or processed: "
            + ("MessageID" if not message_id else "Action"),
            wsman_code=2150858778,
            subcode="a:InvalidMessageInformationHeader" if action else "a:MessageInformationHeaderRequired",
            code="s:Sender",
        )
    selectors = {
        node.get("Name", ""): (node.text or "").strip()
        for node in header.findall("w:SelectorSet/w:Selector", NS)
    }
    options = {
        node.get("Name", ""): (node.text or "").strip() for node in header.findall("w:OptionSet/w:Option", NS)
    }
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=text("w:ResourceURI") or "",
        shell_id=selectors.get("ShellId"),
        timeout=_duration_seconds(text("w:OperationTimeout"), default_timeout),
        options=options,
        body=body,
    )


class WinRS:
    """The shells of one twin. Lives in the server's event loop; one per twin."""

    def __init__(
        self,
        machine: str,
        executor: Executor,
        *,
        shell_quota: int = 5,
        operation_quota: int = 1500,
        idle_timeout: float = 7200.0,
    ) -> None:
        self.machine = machine
        self._executor = executor
        self.shell_quota = shell_quota
        self.operation_quota = operation_quota
        self.idle_timeout = idle_timeout
        self.shells: dict[str, Shell] = {}
        self.requests = 0  # every WS-Man request answered or faulted (benchmarks count round trips)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(
        self, data: bytes, user: str, endpoint: str, drop_on_receive: Callable[[], bool] | None = None
    ) -> tuple[int, bytes]:
        """Answer one envelope: (HTTP status, SOAP body). Faults come back as (500, fault)."""
        self.requests += 1
        relates: str | None = None
        try:
            request = parse_request(data)
            relates = request.message_id
            if request.resource_uri != SHELL_CMD:
                raise WsmanFault(
                    "The WS-Management service cannot process the request. The resource URI "
                    f"{request.resource_uri or '(none)'} is not supported by this simulated host "
                    "(the lab serves the cmd shell only).",
                    wsman_code=2150858811,
                    subcode="w:DestinationUnreachable",
                    code="s:Sender",
                )
            handler = {
                ACTION_CREATE: self._create,
                ACTION_DELETE: self._delete,
                ACTION_COMMAND: self._command,
                ACTION_SEND: self._send,
                ACTION_RECEIVE: self._receive,
                ACTION_SIGNAL: self._signal,
            }.get(request.action)
            if handler is None:
                raise WsmanFault(
                    f"The action {request.action} is not supported by the service.",
                    wsman_code=2150858858,
                    subcode="a:ActionNotSupported",
                    code="s:Sender",
                )
            request.drop = drop_on_receive
            action, body = await handler(request, user, endpoint)
            header = (
                f"<a:Action>{action}</a:Action>"
                f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
                f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(request.message_id)}</a:RelatesTo>"
            )
            return 200, _envelope(header, body)
        except WsmanFault as fault:
            return 500, fault.envelope(relates, self.machine)

    def restart(self) -> None:
        """Windows restarted (reboot, reset, reimage): every shell and command is gone."""
        for shell in self.shells.values():
            for command in shell.commands.values():
                command.terminated = True
        self.shells.clear()

    # -- shells -------------------------------------------------------------------------------

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for shell_id in [s.id for s in self.shells.values() if now - s.last_used > self.idle_timeout]:
            del self.shells[shell_id]

    def _shell(self, request: Request, user: str) -> Shell:
        if not request.shell_id or request.shell_id not in self.shells:
            raise _fault_no_shell(request.shell_id or "")
        shell = self.shells[request.shell_id]
        if shell.owner.lower() != user.lower():
            # Another user's shell does not exist as far as this user can tell.
            raise _fault_no_shell(request.shell_id)
        shell.last_used = time.monotonic()
        return shell

    async def _create(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        self._reap_idle()
        owned = [s for s in self.shells.values() if s.owner.lower() == user.lower()]
        if len(owned) >= self.shell_quota:
            raise WsmanFault(
                "The WS-Management service cannot process the request. This user is allowed a maximum "
                f"number of {self.shell_quota} concurrent shells, which has been exceeded. "
                "Close existing shells or raise the quota for this user. ",
                wsman_code=2150859173,
                wmi_error=True,
            )
        shell_el = request.body.find("rsp:Shell", NS)
        if shell_el is None:
            raise _fault_schema("Create needs an rsp:Shell element.")
        codepage = request.options.get("WINRS_CODEPAGE", "437")
        shell = Shell(
            id=str(uuid.uuid4()).upper(),
            owner=user,
            codepage=codepage,
            encoding=shell_encoding(codepage),
            last_used=time.monotonic(),
        )
        self.shells[shell.id] = shell
        body = (
            f"<x:ResourceCreated><a:Address>{escape(endpoint)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_CMD}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f"</x:ResourceCreated>"
            f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{shell.id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{SHELL_CMD}</rsp:ResourceUri><rsp:Owner>{escape(user)}</rsp:Owner>"
            "<rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
            "</rsp:Shell>"
        )
        return _T + "CreateResponse", body

    async def _delete(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        for command in shell.commands.values():
            command.terminated = True
        del self.shells[shell.id]
        return _T + "DeleteResponse", ""

    # -- commands -----------------------------------------------------------------------------

    async def _command(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        used = sum(s.operations for s in self.shells.values() if s.owner.lower() == user.lower())
        if used >= self.operation_quota:
            raise WsmanFault(
                "The WS-Management service cannot process the request. This user is allowed a maximum "
                f"number of {self.operation_quota} concurrent operations, which has been exceeded. "
                "Close existing operations for this user, or raise the quota for this user. ",
                wsman_code=2150859174,
                wmi_error=True,
            )
        line = request.body.find("rsp:CommandLine", NS)
        command_el = line.find("rsp:Command", NS) if line is not None else None
        if line is None or command_el is None or not (command_el.text or "").strip():
            raise _fault_schema("Command needs rsp:CommandLine/rsp:Command.")
        arguments = [(a.text or "") for a in line.findall("rsp:Arguments", NS)]
        command = Command(
            id=str(uuid.uuid4()).upper(),
            command=(command_el.text or "").strip(),
            arguments=arguments,
            encoding=shell.encoding,
        )
        shell.operations += 1
        shell.commands[command.id] = command
        return (
            _R + "CommandResponse",
            f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>",
        )

    def _find_command(self, shell: Shell, command_id: str | None) -> Command:
        if not command_id or command_id not in shell.commands:
            raise WsmanFault(
                f"The request for the Windows Remote Shell command {command_id} failed because the "
                "command was not found on the server.",
                wsman_code=2150858843,
                subcode="w:InvalidSelectors",
                code="s:Sender",
            )
        return shell.commands[command_id]

    async def _send(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        stream = request.body.find("rsp:Send/rsp:Stream", NS)
        if stream is None or stream.get("Name") != "stdin":
            raise _fault_schema("Send needs an rsp:Stream named stdin.")
        command = self._find_command(shell, stream.get("CommandId"))
        if command.stdin_closed or command.started:
            raise WsmanFault(
                "The WinRS client cannot send input: the input stream of this command is already closed.",
                wsman_code=2150858897,
                subcode="w:InvalidParameter",
                code="s:Sender",
            )
        try:
            command.stdin += base64.b64decode((stream.text or "").strip(), validate=True)
        except binascii.Error:
            raise _fault_schema("stdin is not valid base64.") from None
        command.sent_any_stdin = True
        if stream.get("End", "false").lower() == "true":
            command.stdin_closed = True
            self._start(command)
        return _R + "SendResponse", "<rsp:SendResponse/>"

    def _start(self, command: Command) -> None:
        if command.started:
            return
        command.started = True
        task = asyncio.get_running_loop().create_task(self._run(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, command: Command) -> None:
        try:
            code, out, err = await asyncio.to_thread(
                self._executor, command.command, command.arguments, bytes(command.stdin)
            )
        except Exception as exc:  # a lab bug must show up as a failed command, not hang the client
            code, out, err = (
                1,
                b"",
                f"SIMULATED lab: command execution failed: {type(exc).__name__}: {exc}".encode(),
            )
        command.exit_code = code
        command.stdout = in_codepage(out, command.encoding)
        command.stderr = in_codepage(err, command.encoding)
        command.done.set()

    async def _receive(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
        if desired is None:
            raise _fault_schema("Receive needs rsp:DesiredStream.")
        command = self._find_command(shell, desired.get("CommandId"))
        if not command.started and not command.sent_any_stdin:
            # Nothing to feed the process: it runs with an empty (closed) stdin, like a console command.
            command.stdin_closed = True
            self._start(command)
        if request.drop is not None and request.drop():
            # The command runs on (its effects happen); only the client loses the connection.
            raise DropConnection()
        if not command.done.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(command.done.wait()), timeout=request.timeout)
            except TimeoutError:
                raise _fault_timeout() from None
        streams = []
        out = command.stdout[command.out_pos : command.out_pos + RECEIVE_CHUNK]
        command.out_pos += len(out)
        err = command.stderr[command.err_pos : command.err_pos + RECEIVE_CHUNK]
        command.err_pos += len(err)
        cid = command.id
        for name, data in (("stdout", out), ("stderr", err)):
            if data:
                encoded = base64.b64encode(data).decode()
                streams.append(f'<rsp:Stream Name="{name}" CommandId="{cid}">{encoded}</rsp:Stream>')
        finished = command.out_pos >= len(command.stdout) and command.err_pos >= len(command.stderr)
        if finished:
            streams.append(f'<rsp:Stream Name="stdout" CommandId="{cid}" End="true"></rsp:Stream>')
            streams.append(f'<rsp:Stream Name="stderr" CommandId="{cid}" End="true"></rsp:Stream>')
            state = (
                f'<rsp:CommandState CommandId="{cid}" State="{STATE_DONE}">'
                f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            state = f'<rsp:CommandState CommandId="{cid}" State="{STATE_RUNNING}"/>'
        body = f"<rsp:ReceiveResponse>{''.join(streams)}{state}</rsp:ReceiveResponse>"
        return _R + "ReceiveResponse", body

    async def _signal(self, request: Request, user: str, endpoint: str) -> tuple[str, str]:
        shell = self._shell(request, user)
        signal = request.body.find("rsp:Signal", NS)
        code = signal.find("rsp:Code", NS) if signal is not None else None
        if signal is None or code is None:
            raise _fault_schema("Signal needs rsp:Signal/rsp:Code.")
        command = self._find_command(shell, signal.get("CommandId"))
        if (code.text or "").strip() not in (SIGNAL_TERMINATE, SIGNAL_CTRL_C):
            raise WsmanFault(
                f"The signal code {code.text} is not supported.",
                wsman_code=2150858897,
                subcode="w:InvalidParameter",
                code="s:Sender",
            )
        command.terminated = True
        shell.commands.pop(command.id, None)  # the operation count stays (text shell, MS-WSMV <118>)
        return _R + "SignalResponse", "<rsp:SignalResponse/>"
