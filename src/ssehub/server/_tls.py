"""TLS for ``ssehub serve``: the server's SSL context, and a throwaway development certificate.

Conventions:

* :func:`server_context` loads a PEM certificate chain and its private key and
  offers ``h2`` then ``http/1.1`` by ALPN (HTTP/2 for browsers, HTTP/1.1 for
  older clients).  TLS 1.2 at least, no TLS compression (RFC 9113 §9.2).  A file
  that is missing, unreadable, not PEM, or a key that does not match the
  certificate raises :class:`TlsError` with a one-line message naming the file.
* :func:`dev_certificate` makes a self-signed certificate for ``localhost``,
  ``127.0.0.1`` and ``::1`` (EC P-256, valid 30 days) with ``cryptography``, in a
  private folder under the user's cache directory (``$XDG_CACHE_HOME/ssehub`` or
  ``~/.cache/ssehub``, else the temp dir), and reuses it while it is valid for at
  least another day.  It is for local use only: no browser trusts it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._settings import ServerSettings

__all__ = [
    "ALPN_PROTOCOLS",
    "TlsError",
    "check_tls",
    "dev_certificate",
    "server_context",
    "tls_files",
]

#: What the server offers by ALPN, in order of preference.
ALPN_PROTOCOLS = ("h2", "http/1.1")

_DEV_NAMES = ("localhost", "127.0.0.1", "::1")
_DEV_DAYS = 30


class TlsError(ValueError):
    """A certificate or key that can't be served; the message is one line."""


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """An SSL server context for ``certfile`` (PEM chain) and ``keyfile`` (PEM key)."""
    for flag, name in (("--certfile", certfile), ("--keyfile", keyfile)):
        path = Path(name)
        if not path.is_file():
            raise TlsError(f"{flag} {name}: no such file")
        if not os.access(path, os.R_OK):
            raise TlsError(f"{flag} {name}: not readable")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    try:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile, password=_no_password)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in reason:
            raise TlsError(f"--keyfile {keyfile}: not the key of --certfile {certfile}") from None
        raise TlsError(
            f"--certfile {certfile} / --keyfile {keyfile}: not a PEM certificate and its "
            f"unencrypted private key ({reason.lower().replace('_', ' ')})"
        ) from None
    except (OSError, TlsError) as exc:
        raise TlsError(f"--certfile {certfile} / --keyfile {keyfile}: {exc}") from None
    return context


def _no_password() -> bytes:
    raise TlsError("the private key is encrypted; give an unencrypted key")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "ssehub"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    folder = Path(tempfile.gettempdir()) / f"ssehub-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def dev_certificate(
    folder: Path | None = None, *, now: datetime.datetime | None = None
) -> tuple[Path, Path]:
    """``(certfile, keyfile)`` of a self-signed localhost certificate, made if needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = folder or _cache_dir()
    certfile, keyfile = folder / "dev-cert.pem", folder / "dev-key.pem"
    now = now or datetime.datetime.now(datetime.UTC)
    if certfile.is_file() and keyfile.is_file():
        try:
            old = x509.load_pem_x509_certificate(certfile.read_bytes())
            if old.not_valid_after_utc - now > datetime.timedelta(days=1):
                return certfile, keyfile
        except ValueError:
            pass  # damaged: make a new one
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssehub development certificate")])
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _DEV_NAMES[1:]]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_DEV_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certfile, keyfile


def tls_files(certfile: str | None, keyfile: str | None, dev_cert: bool) -> tuple[str, str] | None:
    """The ``(certfile, keyfile)`` to serve, ``None`` for plain HTTP; checks them.

    ``dev_cert`` makes (or reuses) the development certificate.  Raises
    :class:`TlsError` for a half-given pair, both ``dev_cert`` and files, or files
    that can't be served.
    """
    if dev_cert:
        if certfile or keyfile:
            raise TlsError("--dev-cert makes its own certificate: drop --certfile/--keyfile")
        try:
            made = dev_certificate()
        except OSError as exc:
            raise TlsError(f"--dev-cert: cannot write the certificate: {exc}") from None
        certfile, keyfile = str(made[0]), str(made[1])
    elif not certfile and not keyfile:
        return None
    elif not certfile or not keyfile:
        raise TlsError("HTTPS needs both --certfile and --keyfile")
    server_context(certfile, keyfile)
    return certfile, keyfile


def check_tls(settings: ServerSettings) -> tuple[str, str] | None:
    """:func:`tls_files` of ``settings`` (what ``ssehub serve`` checks before serving)."""
    return tls_files(settings.certfile, settings.keyfile, settings.dev_cert)
