"""The lab's certificate authority: generated at `lab up`, one server certificate per twin.

Why a real CA: the product connects with `ansible_winrm_server_cert_validation: validate`
and a CA bundle, exactly as against the hospital's PKI. The lab must make that validation
happen for real (a wrong CA or a wrong address fails), never switch it off.

ECDSA P-256 keeps 1,700 certificates fast to issue (well under a millisecond each).
All files are SIMULATION material: the CA key lives in the lab dir and trusts nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "rebuild SIMULATED lab CA"
_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class IssuedCert:
    cert_path: Path  # PEM: leaf certificate then CA (a chain, as IIS/HTTP.sys would send)
    key_path: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class LabCA:
    """A CA under `<dir>`: `ca.pem` (the bundle clients trust), `ca.key`, `twins/<name>.pem|.key`."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self.cert = cert
        self._cert_pem = cert.public_bytes(serialization.Encoding.PEM)

    @property
    def bundle_path(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path) -> LabCA:
        """A fresh CA (a new key every `lab up`, so a stale bundle can never validate)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        _write(
            directory / "ca.key",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            private=True,
        )
        _write(ca.bundle_path, ca._cert_pem)
        return ca

    @classmethod
    def load(cls, directory: Path) -> LabCA:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an EC key")
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        return cls(directory, key, cert)

    def issue(self, name: str, address: str, dns_names: tuple[str, ...] = ()) -> IssuedCert:
        """A server certificate for one twin: its address (and names) as SAN, serverAuth only."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(address))]
        sans += [x509.DNSName(n) for n in (name.lower(), *dns_names)]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name.lower())]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        issued = IssuedCert(
            self.directory / "twins" / f"{name}.pem", self.directory / "twins" / f"{name}.key"
        )
        _write(issued.cert_path, cert.public_bytes(serialization.Encoding.PEM) + self._cert_pem)
        _write(
            issued.key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            private=True,
        )
        return issued

    def twin_cert(self, name: str) -> IssuedCert:
        return IssuedCert(self.directory / "twins" / f"{name}.pem", self.directory / "twins" / f"{name}.key")
