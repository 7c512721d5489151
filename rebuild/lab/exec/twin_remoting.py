"""WinRM on a twin, as the first-logon command configures it (SIMULATION).

Part of `TwinHost` (twin_host.py): Enable-PSRemoting, ConvertTo-SecureString, PSCredential,
Get-Certificate, New-SelfSignedCertificate and the WSMan: drive's listeners, each following its
Microsoft Learn page (docs/lab-powershell.md) and only with the parameters the product uses; any
other use fails loudly. Listeners live where WinRM keeps them (HKLM ...\\WSMAN\\Listener\\
<address>+<transport>), certificates where Windows keeps the machine's store (SystemCertificates).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec.psobjects import PSObj
from rebuild.lab.ps import values as v
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost
    from rebuild.lab.ps.evaluator import Call

LISTENER_KEY = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\{address}+{transport}"
CERT_KEY = "HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\{store}\\Certificates\\{thumb}"
_LISTENERS = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\"
_PORTS = {"HTTP": 5985, "HTTPS": 5986}
_WSMAN_LISTENER = re.compile(r"(?:microsoft\.wsman\.management\\wsman::|wsman:\\)localhost\\listener", re.I)
# The dynamic parameters the WSMan provider adds to New-Item under Listener (about_WSMan_Provider).
LISTENER_PARAMS = ("Transport", "Address", "CertificateThumbPrint")
SECURE_STRING = "System.Security.SecureString"
PS_CREDENTIAL = "System.Management.Automation.PSCredential"
# What the lab fault certificate_enrolment_fails makes Get-Certificate say without a `reason`.
ENROLMENT_DENIED = (
    "Get-Certificate: the CA denied the certificate request (lab fault certificate_enrolment_fails)"
)


@dataclass
class SecureStringValue(v.DotNetObject):
    """A SecureString: scripts see its Length only; the plain text stays off every member and log."""

    plain: str = field(default="", repr=False)


@dataclass
class CredentialValue(v.DotNetObject):
    """A PSCredential: UserName is a member, the password stays a SecureString."""

    password: SecureStringValue | None = field(default=None, repr=False)


def _host(c: Call) -> TwinHost:
    host: TwinHost = c.ev.host  # type: ignore[assignment]  # always a TwinHost: these are its cmdlets
    return host


def is_listener_path(path: str) -> bool:
    return bool(_WSMAN_LISTENER.match(path))


def enable_psremoting(c: Call) -> list[Any]:
    """Enable-PSRemoting -Force (Learn, "Enable-PSRemoting" and "Set-WSManQuickConfig"): the WinRM
    service starts and starts automatically, and an HTTP listener on all addresses exists. Without
    -Force it asks for confirmation, which a first-logon session cannot give."""
    if not v.truthy(c.bound.get("Force")):
        raise c.not_simulated("Enable-PSRemoting without -Force (it asks for confirmation)")

    def enable(s: TwinState) -> None:
        s.services["WinRM"].start_mode = "Automatic"
        s.services["WinRM"].state = "Running"
        s.registry.setdefault(_listener_key("*", "HTTP"), _listener_values("HTTP", ""))

    _host(c).write("Enable-PSRemoting", enable)
    return []


def convert_to_secure_string(c: Call) -> list[Any]:
    """ConvertTo-SecureString <text> -AsPlainText -Force. In Windows PowerShell 5.1 -AsPlainText
    without -Force is refused (Learn, "ConvertTo-SecureString": -Force confirms the plain text)."""
    if not v.truthy(c.bound.get("AsPlainText")):
        raise c.not_simulated("ConvertTo-SecureString of an encrypted standard string")
    if not v.truthy(c.bound.get("Force")):
        raise c.fail(
            "The system cannot protect plain text input. To suppress this warning and convert the "
            "plain text to a SecureString, reissue the command specifying the Force parameter.",
            "System.ArgumentException",
            "InvalidArgument",
        )
    text = v.to_string(c.bound.get("String"))
    return [SecureStringValue(SECURE_STRING, {"Length": len(text)}, plain=text)]


def new_credential(c: Call, args: list[Any]) -> Any:
    """New-Object System.Management.Automation.PSCredential(<user>, <SecureString>)."""
    if len(args) != 2 or not isinstance(args[1], SecureStringValue):
        raise c.fail(
            f'Cannot find an overload for "PSCredential" and the argument count: "{len(args)}".',
            "System.Management.Automation.MethodException",
            "InvalidOperation",
        )
    user = v.to_string(args[0])
    return CredentialValue(PS_CREDENTIAL, {"UserName": user}, password=args[1])


def _store(c: Call) -> str:
    location = v.to_string(c.bound.get("CertStoreLocation"))
    if location.lower().rstrip("\\") != "cert:\\localmachine\\my":
        raise c.not_simulated(f"{c.name} -CertStoreLocation {location}")
    return "MY"


def _add_certificate(c: Call, store: str, dns_names: list[str], seed: str) -> PSObj:
    thumb = hashlib.sha1(seed.encode("utf-8")).hexdigest().upper()
    subject = f"CN={dns_names[0]}" if dns_names else ""

    def add(s: TwinState) -> None:
        s.registry[CERT_KEY.format(store=store, thumb=thumb)] = {"Subject": subject, "Blob": "simulated"}

    _host(c).write(f"{c.name} {thumb}", add)
    return PSObj(
        "System.Security.Cryptography.X509Certificates.X509Certificate2",
        {"Thumbprint": thumb, "Subject": subject, "DnsNameList": dns_names},
    )


def get_certificate(c: Call) -> list[Any]:
    """Get-Certificate -Template -Url -Credential -DnsName -CertStoreLocation (Learn, "Get-Certificate").

    Against an enrollment policy server URL the request is authenticated with -Credential or the
    caller's Kerberos identity: a workgroup machine has none, so without -Credential it fails. The
    lab fault certificate_enrolment_fails makes the CA deny the request (its `reason`, verbatim)."""
    host = _host(c)
    store = _store(c)
    url = v.to_string(c.bound.get("Url"))
    if not url:
        raise c.not_simulated("Get-Certificate without -Url (the Active Directory enrollment policy)")
    credential = c.bound.get("Credential")
    if credential is not None and not isinstance(credential, CredentialValue):
        raise c.not_simulated("Get-Certificate -Credential other than a PSCredential")
    fault = host.lab.fault(host.twin.name, "certificate_enrolment_fails")
    if fault is not None:
        raise c.fail(str(fault.get("reason") or ENROLMENT_DENIED))
    if credential is None and not host.state().domain_joined:
        raise c.fail("Get-Certificate: the enrollment policy server requires authentication (no credential)")
    dns = [v.to_string(x) for x in v.as_list(c.bound.get("DnsName"))]
    template = v.to_string(c.bound.get("Template"))
    certificate = _add_certificate(c, store, dns, f"{host.twin.name}|{template}|{url}|{','.join(dns)}")
    return [
        PSObj(
            "Microsoft.CertificateServices.Commands.EnrollmentResult",
            {"Status": "Issued", "Certificate": certificate},
        )
    ]


def new_self_signed_certificate(c: Call) -> list[Any]:
    """New-SelfSignedCertificate -DnsName -CertStoreLocation (Learn, "New-SelfSignedCertificate")."""
    host = _host(c)
    dns = [v.to_string(x) for x in v.as_list(c.bound.get("DnsName"))]
    if not dns:
        raise c.not_simulated("New-SelfSignedCertificate without -DnsName")
    return [_add_certificate(c, _store(c), dns, f"{host.twin.name}|self-signed|{','.join(dns)}")]


def _listener_key(address: str, transport: str) -> str:
    return LISTENER_KEY.format(address=address, transport=transport.upper())


def _listener_values(transport: str, thumbprint: str) -> dict[str, Any]:
    return {"Port": _PORTS[transport], "hostname": "", "certThumbprint": thumbprint, "uriprefix": "wsman"}


def new_listener(c: Call, path: str) -> list[Any]:
    """New-Item WSMan:\\localhost\\Listener -Transport -Address [-CertificateThumbPrint] -Force
    (about_WSMan_Provider). HTTPS needs the thumbprint of a certificate in LocalMachine\\My."""
    host = _host(c)
    if path.lower().rstrip("\\").rsplit("\\", 1)[-1] != "listener":
        raise c.not_simulated(f"New-Item {path}")
    transport = v.to_string(c.bound.get("Transport")).upper()
    address = v.to_string(c.bound.get("Address"))
    if transport not in _PORTS or address != "*":
        raise c.not_simulated(f"New-Item {path} -Transport {transport} -Address {address}")
    thumb = v.to_string(c.bound.get("CertificateThumbPrint")).upper()
    if transport == "HTTPS":
        cert = CERT_KEY.format(store="MY", thumb=thumb)
        if not thumb or not any(k.lower() == cert.lower() for k in host.state().registry):
            raise c.fail(
                "The WinRM client cannot process the request. The certificate thumbprint is not "
                "valid or the certificate is not in the LocalMachine\\My store.",
                "System.InvalidOperationException",
                "InvalidOperation",
            )
    key = _listener_key(address, transport)
    if any(k.lower() == key.lower() for k in host.state().registry):
        raise c.not_simulated(f"New-Item {path} for a listener that exists ({address}+{transport})")

    def add(s: TwinState) -> None:
        s.registry[key] = _listener_values(transport, thumb)

    host.write(f"New-Item {key}", add)
    return [_listener_item(key)]


def _listener_item(key: str) -> PSObj:
    address, transport = key[len(_LISTENERS) :].split("+", 1)
    name = f"Listener_{zlib.crc32(key.lower().encode('utf-8'))}"
    return PSObj(
        "Microsoft.WSMan.Management.WSManConfigContainerElement",
        {
            "Name": name,
            "Keys": [f"Transport={transport}", f"Address={address}"],
            "PSPath": f"Microsoft.WSMan.Management\\WSMan::localhost\\Listener\\{name}",
        },
    )


def _listener_keys(state: TwinState) -> list[str]:
    return [k for k in state.registry if k.upper().startswith(_LISTENERS.upper()) and "+" in k]


def get_listeners(c: Call, path: str) -> list[Any]:
    """Get-ChildItem WSMan:\\localhost\\Listener: one container per listener, with its Keys."""
    if path.lower().rstrip("\\").rsplit("\\", 1)[-1] != "listener":
        raise c.not_simulated(f"Get-ChildItem {path}")
    return [_listener_item(k) for k in _listener_keys(_host(c).state())]


def remove_listener(c: Call, path: str) -> list[Any]:
    """Remove-Item <WSMan: listener path> -Recurse -Force: the listener is deleted."""
    host = _host(c)
    name = path.rstrip("\\").rsplit("\\", 1)[-1].lower()
    found = [k for k in _listener_keys(host.state()) if _listener_item(k).props["Name"].lower() == name]
    if not found:
        raise c.not_simulated(f"Remove-Item {path}")

    def remove(s: TwinState) -> None:
        s.registry.pop(found[0], None)

    host.write(f"Remove-Item {found[0]}", remove)
    return []
