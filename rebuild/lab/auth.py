"""WinRM authentication on a twin, checked for real against the twin's local users.

What a Windows host does, and so what the lab does:
- Basic: refused unless the WinRM service allows it (`auth_basic`, default off) and, over
  plain HTTP, unless unencrypted traffic is allowed (`allow_unencrypted`, default off). Group
  policy values (HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service AllowBasic /
  AllowUnencryptedTraffic) win over the service's own configuration.
- NTLM: NTLMv2 only (LM and NTLMv1 answers are refused, as with LmCompatibilityLevel 5).
  The acceptor verifies the NTProofStr with the twin user's password, the MIC, and, over
  HTTPS, the channel binding token when the client sends one (Extended Protection,
  CbtHardeningLevel Relaxed).
- Only enabled local accounts in Administrators or Remote Management Users get in. A local
  administrator other than the built-in one (RID 500) gets a filtered token over the network
  unless LocalAccountTokenFilterPolicy=1 (UAC remote restrictions); WinRM then refuses it.
- Domain accounts are not simulated: a logon naming the twin's joined domain is refused.
- Once joined, after the restart that applies computer Group Policy, the domain's security
  baseline GPO is in force unless the computer object sits in an OU that blocks it
  (GPO_BLOCKED_OUS): it denies network logon to S-1-5-114 "Local account and member of
  Administrators group" (Microsoft security baseline, "Deny access to this computer from the
  network"; KB2871997 introduced S-1-5-113/114 for this) and turns UAC remote restrictions
  on (LocalAccountTokenFilterPolicy 0, MS Security Guide "Apply UAC restrictions to local
  accounts on network logons"). So every local administrator, RID 500 included, is refused
  over WinRM. The computer's DN is where Windows keeps it:
  HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Group Policy\\State\\Machine
  `Distinguished-Name`.

NTLM message sealing (the multipart/encrypted bodies clients use over plain HTTP) uses the
session key the acceptor keeps (rebuild.lab.winrm_sealing).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spnego._ntlm_raw.crypto import compute_response_v2, hmac_md5, md5, ntowfv1, ntowfv2, rc4k
from spnego._ntlm_raw.messages import (
    Authenticate,
    AvFlags,
    AvId,
    Challenge,
    FileTime,
    Negotiate,
    NegotiateFlags,
    NTClientChallengeV2,
    TargetInfo,
    Version,
)
from spnego.channel_bindings import GssChannelBindings

from rebuild.lab.state import LocalUser, TwinState

WSMAN_SERVICE_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WSMAN\Service"
WSMAN_POLICY_KEY = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM\Service"
UAC_POLICY_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System"
REMOTE_GROUPS = ("Administrators", "Remote Management Users")
GP_STATE_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Group Policy\State\Machine"
# The lab's simulated domain links the security baseline GPO at the domain root; the one OU
# with "Block inheritance" is the rebuild staging OU (the directory team's side of the
# documented exclusion, inventories/data/connection.yml). Matched as the DN part before the
# DC= components.
GPO_BLOCKED_OUS = ("OU=Rebuild Staging,OU=Computers,OU=GHAL",)


class AuthError(Exception):
    """Authentication or authorisation failed. The message is for the lab log, never a secret."""


@dataclass(frozen=True)
class WinRMServicePolicy:
    basic: bool
    allow_unencrypted: bool


def _reg(state: TwinState, key: str, value: str) -> object | None:
    # Registry keys are case-insensitive on Windows; the lab's map keeps whatever case was written.
    wanted = key.lower()
    for path, values in state.registry.items():
        if path.lower() == wanted:
            for name, data in values.items():
                if name.lower() == value.lower():
                    found: object = data
                    return found
    return None


def _flag(state: TwinState, policy_value: str, service_value: str) -> bool:
    policy = _reg(state, WSMAN_POLICY_KEY, policy_value)
    if policy is not None:
        return str(policy) == "1"
    service = _reg(state, WSMAN_SERVICE_KEY, service_value)
    return str(service) == "1"


def service_policy(state: TwinState) -> WinRMServicePolicy:
    """The WinRM service's auth settings on this twin; Windows' defaults when unset (both off)."""
    return WinRMServicePolicy(
        basic=_flag(state, "AllowBasic", "auth_basic"),
        allow_unencrypted=_flag(state, "AllowUnencryptedTraffic", "allow_unencrypted"),
    )


def _split_user(raw: str) -> tuple[str, str]:
    if "\\" in raw:
        domain, user = raw.split("\\", 1)
        return domain, user
    if "@" in raw:
        user, domain = raw.split("@", 1)
        return domain, user
    return "", raw


def _is_local_domain(state: TwinState, domain: str) -> bool:
    if domain in ("", "."):
        return True
    short = state.hostname.split(".")[0].upper()
    if domain.upper() == short:
        return True
    if state.domain_joined and domain.upper() in (state.domain.upper(), state.domain.split(".")[0].upper()):
        return False
    # A workgroup host (or an unknown domain) falls back to its own account database.
    return not state.domain_joined


def find_user(state: TwinState, domain: str, name: str) -> LocalUser:
    if not _is_local_domain(state, domain):
        raise AuthError(f"domain account {domain}\\{name}: the lab does not simulate a domain controller")
    for user in state.users.values():
        if user.name.lower() == name.lower():
            return user
    raise AuthError(f"no local user {name!r}")


def _groups_of(state: TwinState, user: LocalUser) -> set[str]:
    groups = {g.lower() for g in user.groups}
    for group, members in state.groups.items():
        if any(
            m.lower() == user.name.lower() or m.lower().endswith("\\" + user.name.lower()) for m in members
        ):
            groups.add(group.lower())
    return groups


def computer_dn(state: TwinState) -> str:
    return str(_reg(state, GP_STATE_KEY, "Distinguished-Name") or "")


def baseline_gpo_applies(state: TwinState) -> bool:
    """Joined, restarted since the join (computer policy applies at startup), not in a blocked OU.

    Only for a join the lab performed (the join twin records the DN): the compromised images'
    pre-incident membership has no modelled OU, and the product never logs on to such a host
    over WinRM before reimaging it (docs/lab-windows-rules.md, not enforced yet)."""
    if not state.domain_joined or not computer_dn(state):
        return False
    joined = max((i for i, e in enumerate(state.history) if e.get("event") == "domain_joined"), default=-1)
    booted = any(
        any(word in str(e.get("event", "")).lower() for word in ("boot", "reset", "power"))
        for e in state.history[joined + 1 :]
    )
    if not booted:
        return False
    ou = computer_dn(state).split(",", 1)[1] if "," in computer_dn(state) else ""
    ou_only = ",".join(part for part in ou.split(",") if not part.strip().upper().startswith("DC="))
    return not any(ou_only.lower() == blocked.lower() for blocked in GPO_BLOCKED_OUS)


def authorise(state: TwinState, user: LocalUser) -> None:
    """May this (authenticated) local user use WinRM? Raises AuthError when Windows would refuse."""
    if not user.enabled:  # Microsoft Learn, Disable-LocalUser: a disabled account "cannot log on"
        raise AuthError(f"account {user.name} is disabled")
    groups = _groups_of(state, user)
    if "administrators" in groups and baseline_gpo_applies(state):
        raise AuthError(
            f"{user.name} is a local administrator (S-1-5-114) on a domain member under the security "
            f"baseline GPO ({computer_dn(state) or 'default Computers container'}): network logon denied"
        )
    if "remote management users" in groups:
        return
    if "administrators" not in groups:
        raise AuthError(f"{user.name} is in neither Administrators nor Remote Management Users")
    if user.sid_suffix == 500:
        return
    if str(_reg(state, UAC_POLICY_KEY, "LocalAccountTokenFilterPolicy")) != "1":
        raise AuthError(
            f"{user.name} is a local administrator but LocalAccountTokenFilterPolicy is not 1: "
            "its network logon gets a filtered token and WinRM refuses it (UAC remote restrictions)"
        )


def check_basic(state: TwinState, token: str, *, https: bool) -> LocalUser:
    """Verify an `Authorization: Basic` value. Raises AuthError (HTTP 401) when refused."""
    policy = service_policy(state)
    if not policy.basic:
        raise AuthError("Basic authentication is disabled in the WinRM service configuration")
    if not https and not policy.allow_unencrypted:
        raise AuthError("Basic over HTTP refused: unencrypted traffic is disabled in the WinRM service")
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed Basic credentials") from None
    name, sep, password = raw.partition(":")
    if not sep:
        raise AuthError("malformed Basic credentials")
    domain, user_name = _split_user(name)
    user = find_user(state, domain, user_name)
    if not user.password or not hmac.compare_digest(user.password.encode(), password.encode()):
        raise AuthError(f"wrong password for {user.name}")
    authorise(state, user)
    return user


class NtlmAcceptor:
    """Server side of one NTLM handshake (one per TCP connection, as HTTP.sys keeps it).

    `step(negotiate)` returns the CHALLENGE; `step(authenticate)` verifies and returns None,
    leaving `.user` set. `channel_binding` is the RFC 5929 tls-server-end-point data of the
    connection's certificate (HTTPS only).
    """

    def __init__(
        self,
        computer_name: str,
        lookup_state: Callable[[], TwinState],
        channel_binding: bytes | None = None,
    ) -> None:
        self._computer = computer_name.split(".")[0].upper()[:15]
        self._lookup_state = lookup_state
        self._binding = channel_binding
        self._negotiate: bytes | None = None
        self._challenge: Challenge | None = None
        self.user: LocalUser | None = None
        self.flags = 0
        self.session_key = b""

    @property
    def complete(self) -> bool:
        return self.user is not None

    def step(self, token: bytes) -> bytes | None:
        if self._negotiate is None:
            return self._accept_negotiate(token)
        self._accept_authenticate(token)
        return None

    def _accept_negotiate(self, token: bytes) -> bytes:
        try:
            negotiate = Negotiate.unpack(token)
        except Exception as exc:
            raise AuthError(f"malformed NTLM NEGOTIATE message: {exc}") from None
        flags = (
            negotiate.flags
            | NegotiateFlags.request_target
            | NegotiateFlags.ntlm
            | NegotiateFlags.always_sign
            | NegotiateFlags.target_info
            | NegotiateFlags.target_type_server
        )
        if not flags & NegotiateFlags.unicode:
            raise AuthError("NTLM client does not support Unicode")
        flags &= ~NegotiateFlags.oem
        flags &= ~NegotiateFlags.lm_key
        info = TargetInfo()
        info[AvId.nb_computer_name] = self._computer
        info[AvId.nb_domain_name] = self._computer
        info[AvId.dns_computer_name] = self._computer.lower()
        info[AvId.timestamp] = FileTime.now()
        version = Version.get_current() if flags & NegotiateFlags.version else None
        challenge = Challenge(
            flags, os.urandom(8), target_name=self._computer, target_info=info, version=version
        )
        self._negotiate = token
        self._challenge = challenge
        return challenge.pack()

    def _accept_authenticate(self, token: bytes) -> None:
        assert self._challenge is not None and self._negotiate is not None
        try:
            auth = Authenticate.unpack(token)
        except Exception as exc:
            raise AuthError(f"malformed NTLM AUTHENTICATE message: {exc}") from None
        response = auth.nt_challenge_response or b""
        if not auth.user_name:
            raise AuthError("anonymous NTLM logon refused")
        if len(response) <= 24:
            raise AuthError("NTLMv1/LM response refused (NTLMv2 required)")
        state = self._lookup_state()
        user = find_user(state, auth.domain_name or "", auth.user_name)
        if not user.password:
            raise AuthError(f"{user.name} has no password set")
        key = ntowfv2(auth.user_name, ntowfv1(user.password), auth.domain_name)
        client = NTClientChallengeV2.unpack(response[16:])
        expected, _lm, session_base_key = compute_response_v2(
            key,
            self._challenge.server_challenge,
            client.challenge_from_client,
            client.time_stamp,
            client.av_pairs,
        )
        if not hmac.compare_digest(expected[:16], response[:16]):
            raise AuthError(f"wrong password for {user.name}")
        pairs = client.av_pairs
        if self._binding is not None and AvId.channel_bindings in pairs:
            sent = pairs[AvId.channel_bindings]
            expected_binding = md5(GssChannelBindings(application_data=self._binding).pack())
            if sent != b"\x00" * 16 and sent != expected_binding:
                raise AuthError("channel binding token does not match this TLS channel")
        if auth.flags & NegotiateFlags.key_exch and auth.flags & (NegotiateFlags.sign | NegotiateFlags.seal):
            session_key = rc4k(session_base_key, auth.encrypted_random_session_key or b"")
        else:
            session_key = session_base_key
        if pairs.get(AvId.flags, 0) & AvFlags.mic:
            sent_mic = auth.mic or b""
            auth.mic = b"\x00" * 16
            mic = hmac_md5(session_key, self._negotiate + self._challenge.pack() + auth.pack())
            if not hmac.compare_digest(mic, sent_mic):
                raise AuthError("NTLM MIC does not verify")
        authorise(state, user)
        self.user = user
        # Session security for message encryption over HTTP (rebuild.lab.winrm_sealing).
        self.flags = int(auth.flags)
        self.session_key = session_key


def tls_server_end_point(cert_der: bytes) -> bytes:
    """RFC 5929 channel binding data of a server certificate (MD5/SHA-1 upgrade to SHA-256)."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return b"tls-server-end-point:" + digest.finalize()
