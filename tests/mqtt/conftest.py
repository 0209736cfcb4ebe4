"""Brokers for the MQTT tests: a real mosquitto on a free loopback port, and the embedded one.

mosquitto runs as a child process with a generated config (persistence on, so
a kill -9 and restart keeps retained and queued messages, as in production).
The README's test command installs it; outside CI a missing mosquitto skips
those tests with the command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from companion.band import Band
from companion.clock import LoopClock
from companion.mqtt import BrokerConfig, EmbeddedBroker, free_loopback_port
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import VirtualBandConfig, VirtualWorld
from companion.store import Store

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
USER, PASSWORD = "dashboard", "s3cret-pass"


def _wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.01)
    raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{port} within {timeout} s")


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made now (valid for one day)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str,
        issuer: x509.Name | None,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("companion test CA", None, ca_key, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = build("127.0.0.1", ca_cert.subject, server_key, ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Mosquitto:
    """A mosquitto child process: a plain listener, and a TLS one with a password."""

    directory: Path
    port: int = field(default_factory=free_loopback_port)
    tls_port: int = field(default_factory=free_loopback_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        assert MOSQUITTO is not None
        self.ca_file, cert, key = _make_certificates(self.directory)
        passwords = self.directory / "passwords"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), USER, PASSWORD], check=True)
        (self.directory / "data").mkdir()
        lines = [
            "per_listener_settings true",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"listener {self.tls_port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwords}",
            f"cafile {self.ca_file}",
            f"certfile {cert}",
            f"keyfile {key}",
            "persistence true",
            f"persistence_location {self.directory / 'data'}/",
            "autosave_interval 1",
            "autosave_on_changes true",
            "log_dest stderr",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto` and cannot write its data
        self.config_file = self.directory / "mosquitto.conf"
        self.config_file.write_text("\n".join(lines) + "\n")

    @property
    def config(self) -> BrokerConfig:
        return BrokerConfig(host="127.0.0.1", port=self.port)

    @property
    def tls_url(self) -> str:
        return f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        assert MOSQUITTO is not None
        with (self.directory / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_file)], stdout=subprocess.DEVNULL, stderr=log
            )
        _wait_for_port(self.port)
        _wait_for_port(self.tls_port)

    def kill(self) -> None:
        """Die at once, as on a power cut or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if MOSQUITTO is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed: the test command installs it with apt-get")
        pytest.skip(
            "mosquitto is not installed: run `sudo apt-get install mosquitto mosquitto-clients`"
        )
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(params=["mosquitto", "embedded"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerConfig]:
    """Each test that takes this runs once against mosquitto and once against amqtt."""
    if request.param == "mosquitto":
        yield request.getfixturevalue("mosquitto").config
    else:
        async with EmbeddedBroker() as embedded:
            yield embedded.config


SHORT_PLAN = Plan(
    name="short",
    title="Two short moves",
    steps=(Step("Plank", 4.0, switch_side=True), Step("Bridge", 4.0)),
    rounds=2,
    round_rest_s=2.0,
    countdown=1,
)


@contextlib.asynccontextmanager
async def sim_session(
    tmp_path: Path, *, speed: float = 20.0, plan: Plan = SHORT_PLAN
) -> AsyncIterator[Session]:
    """A session on a virtual band whose workout runs ``speed`` times faster than real time."""
    clock = LoopClock(speed)
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig(clock=clock))
        async with Band.connect(virtual.address, backend=world.backend, clock=clock) as band:
            with Store(tmp_path / "sessions.sqlite3") as store:
                yield Session(band, plan, store=store)


class Subscriber:
    """Everything published under a band's prefix, as a dashboard receives it."""

    def __init__(self, config: BrokerConfig, prefix: str) -> None:
        self.config = config
        self.prefix = prefix
        self.messages: list[aiomqtt.Message] = []
        self.arrived = asyncio.Event()

    def add(self, message: aiomqtt.Message) -> None:
        self.messages.append(message)
        self.arrived.set()

    def payloads(self, suffix: str) -> list[object]:
        topic = f"{self.prefix}/{suffix}"
        return [
            json.loads(m.payload)
            if isinstance(m.payload, bytes) and m.payload[:1] in b"{["
            else m.payload
            for m in self.messages
            if str(m.topic) == topic
        ]

    def events(self) -> list[dict[str, object]]:
        """Events after dropping duplicates by (session, number), in arrival order."""
        seen: set[tuple[object, object]] = set()
        unique = []
        for event in self.payloads("event"):
            assert isinstance(event, dict)
            key = (event["session_id"], event["number"])
            if key not in seen:
                seen.add(key)
                unique.append(event)
        return unique

    async def wait_for_topic_payload(
        self, suffix: str, payload: bytes, timeout: float = 10.0
    ) -> None:
        """Wait for ``payload`` on any topic ending in ``/<suffix>`` (for wildcard prefixes)."""
        async with asyncio.timeout(timeout):
            while not any(
                str(m.topic).endswith(f"/{suffix}") and m.payload == payload for m in self.messages
            ):
                self.arrived.clear()
                await self.arrived.wait()

    async def wait_for(self, suffix: str, payload: object, timeout: float = 10.0) -> None:
        """Wait until a message with ``payload`` arrives on ``<prefix>/<suffix>``."""
        async with asyncio.timeout(timeout):
            while payload not in self.payloads(suffix):
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def subscribed(
    config: BrokerConfig, prefix: str, *, identifier: str | None = None
) -> AsyncIterator[Subscriber]:
    """A dashboard subscribed to ``prefix/#`` that reconnects if the broker restarts.

    With an ``identifier`` it keeps a persistent session, so the broker queues
    QoS 1 messages for it while it is away, as a real dashboard would.
    """
    subscriber = Subscriber(config, prefix)
    ready = asyncio.Event()

    async def listen() -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    **config.client_options(),
                    identifier=identifier,
                    clean_session=False if identifier else None,
                ) as client:
                    await client.subscribe(f"{prefix}/#", qos=1)
                    ready.set()
                    async for message in client.messages:
                        # amqtt delivers retained messages of other topics too: filter.
                        if message.topic.matches(f"{prefix}/#"):
                            subscriber.add(message)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    task = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(10):
            await ready.wait()
        yield subscriber
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
