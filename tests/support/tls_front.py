"""A local TLS front like the ones in deploy/: Caddy, from deploy/Caddyfile itself,
with a certificate for ``localhost`` from a certificate authority made for the test
(trusted by a process only when SSL_CERT_FILE names it)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CADDYFILE = ROOT / "deploy" / "Caddyfile"


def caddy() -> str | None:
    return shutil.which("caddy")


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the authority's certificate: what SSL_CERT_FILE names to trust it
    cert: Path
    key: Path


def make_certificates(directory: Path, host: str = "localhost") -> Certificates:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "coopnode test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=60))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    found = Certificates(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


def caddyfile(
    *,
    site: str,
    upstream: str,
    certificates: Certificates,
    replace: dict[str, str] | None = None,
    proxy_options: str = "",
) -> str:
    """deploy/Caddyfile for ``site``, proxying to ``upstream``, with the test's
    certificate; ``replace`` changes more of it and ``proxy_options`` go in the
    reverse_proxy block (a misconfigured front)."""
    text = DEPLOY_CADDYFILE.read_text()
    assert "coop.example {" in text
    assert "reverse_proxy 127.0.0.1:8000" in text
    text = text.replace(
        "coop.example {", f"{site} {{\n\ttls {certificates.cert} {certificates.key}", 1
    )
    block = f" {{\n{proxy_options}\n\t}}" if proxy_options else ""
    text = text.replace("reverse_proxy 127.0.0.1:8000", f"reverse_proxy {upstream}{block}", 1)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new, 1)
    # Nothing else of this machine's: no admin endpoint, no port 80, no redirects.
    return "{\n\tadmin off\n\tauto_https disable_redirects\n}\n\n" + text


@dataclass
class Front:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_caddy(directory: Path, config: str, port: int) -> Front:
    binary = caddy()
    assert binary is not None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Caddyfile"
    path.write_text(config)
    log = directory / "caddy.log"
    env = {
        **os.environ,
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "run", "--config", str(path), "--adapter", "caddyfile"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    front = Front(process, port, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"caddy exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return front
        except OSError:
            time.sleep(0.05)
    front.stop()
    raise TimeoutError(f"caddy did not listen on {port}:\n{log.read_text()}")
