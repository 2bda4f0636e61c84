"""Throwaway certificates for TLS tests, made with the ``openssl`` command (Debian's
``openssl``, installed by ``scripts/setup --test``): a CA, and a server certificate it signed
for ``localhost`` and 127.0.0.1. The repository holds no keys."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_NAME = "localhost"
SERVER_IP = "127.0.0.1"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA's certificate: what a client trusts
    certificate: Path  # the server's, signed by the CA
    key: Path  # the server's key


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "req",
        "-x509",
        *_EC,
        "-days",
        "2",
        "-subj",
        "/CN=Switchboard test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    key, request = directory / "server.key", directory / "server.csr"
    _openssl("req", *_EC, "-subj", f"/CN={SERVER_NAME}", "-keyout", str(key), "-out", str(request))
    extensions = directory / "server.ext"
    extensions.write_text(
        f"subjectAltName=DNS:{SERVER_NAME},IP:{SERVER_IP}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    certificate = directory / "server.pem"
    _openssl(
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-set_serial",
        "2",
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(certificate),
    )
    return Pki(ca, certificate, key)
