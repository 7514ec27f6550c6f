"""Test certificates: a CA, a server certificate for localhost, client certificates (one expired,
one from another CA), generated with `cryptography` for the TLS tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: Issuer | None, *, ca: bool = False,
          server: bool = False, days: tuple[int, int] = (-1, 30)) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(issuer[0].subject if issuer else _name(subject)).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if issuer:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
                                critical=False)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256())


def save_pem(files: dict, d: Path, name: str, cert: x509.Certificate,
             key: ec.EllipticCurvePrivateKey | None = None) -> None:
    """Write `cert` (and its key) as PEM under `d`; record the paths as files[name], files[name + "_key"]."""
    stem = name.replace(":", "-")
    files[name] = d / f"{stem}.pem"
    files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        files[name + "_key"] = d / f"{stem}.key"
        files[name + "_key"].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def make_pki(d: Path) -> dict[str, Path]:
    """Write the certificates and keys into `d`; returns name -> path (`server`, `server_key`, `ca`, ...)."""
    files: dict[str, Path] = {}

    def save(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        save_pem(files, d, name, cert, key)

    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "other", "srv", "cli", "old", "rogue")}
    ca = _cert("dcsentry test CA", keys["ca"], None, ca=True)
    other = _cert("someone else's CA", keys["other"], None, ca=True)
    save("ca", ca)
    save("other_ca", other)
    save("server", _cert("localhost", keys["srv"], (ca, keys["ca"]), server=True), keys["srv"])
    save("client", _cert("dc01.contoso.com", keys["cli"], (ca, keys["ca"])), keys["cli"])
    save("expired", _cert("dc02.contoso.com", keys["old"], (ca, keys["ca"]), days=(-30, -1)), keys["old"])
    save("rogue", _cert("dc01.contoso.com", keys["rogue"], (other, keys["other"])), keys["rogue"])
    return files


