"""Where the relay's broker is: parsed from a URL such as ``mqtts://user:pw@host:8883``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urlsplit

from ..errors import BrokerError

__all__ = ["BrokerConfig"]

_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """How to reach an MQTT broker; build it with :meth:`from_url`."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # trust this CA instead of the system's (self-signed brokers)

    @classmethod
    def from_url(cls, url: str, *, ca_file: str | Path | None = None) -> BrokerConfig:
        """Parse ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...``.

        ``mqtts`` turns TLS on (port 8883 unless given); ``ca_file`` names the
        CA certificate that signed the broker's certificate when it is not one
        the system already trusts.
        """
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
            raise BrokerError(
                f"cannot read the broker URL ({exc}); write mqtt://[USER:PASSWORD@]HOST:PORT"
            ) from None
        shown = _masked(parts)  # an error message may be logged or shown: never the password
        if parts.scheme not in _DEFAULT_PORTS:
            raise BrokerError(
                f"cannot use the broker URL {shown!r}: it must start with mqtt:// or mqtts:// "
                "(for example mqtt://127.0.0.1:1883)"
            )
        if not parts.hostname:
            raise BrokerError(f"the broker URL {shown!r} names no host; write mqtt://HOST:PORT")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise BrokerError(
                f"the broker URL {shown!r} has a port that is not a number (1-65535)"
            ) from None
        ca = Path(ca_file) if ca_file is not None else None
        if ca is not None and not ca.is_file():
            raise BrokerError(f"the CA file {ca} does not exist; pass the broker's CA certificate")
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ca_file=ca,
        )

    @property
    def url(self) -> str:
        """The URL without the password, safe to log and show."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def client_options(self) -> dict[str, Any]:
        """Where and how to connect, as keyword arguments of ``aiomqtt.Client``."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "tls_context": self.tls_context(),
        }

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context to connect with, or ``None`` for plain MQTT."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def _masked(parts: SplitResult) -> str:
    """The URL as written, with any password replaced by ``***``."""
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    netloc = f"{user}{at}{host}"
    return parts._replace(netloc=netloc).geturl()
