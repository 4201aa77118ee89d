"""Fixtures for the relay tests: a real redis-server on a free port, backends, a relay."""

import asyncio
import shutil
import socket
import subprocess

import pytest

from tether.relay.backends.memory import MemoryBackend, MemoryBroker
from tether.relay.backends.redis import RedisBackend


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throwaway redis-server process (no persistence) that can be stopped and restarted."""

    def __init__(self, *extra_args):
        self.extra_args = list(extra_args)
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server not found: install it (`make redis` or "
                "`apt-get install -y redis-server`); the relay tests need a real Redis"
            )
        self.binary = binary
        self.port = _free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1) as sock:
                    sock.sendall(b"PING\r\n")
                    # A server with a password answers -NOAUTH: up all the same.
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}")
            import time

            time.sleep(0.01)  # polling a child process, not synchronizing tasks
        pytest.fail("redis-server did not start")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
            self.process = None

    def flush(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def secured_redis(tmp_path_factory):
    """A second redis-server that wants a password and also listens on a Unix socket."""
    path = tmp_path_factory.mktemp("redis") / "redis.sock"
    server = RedisServer(
        "--requirepass", "s3cret", "--unixsocket", str(path), "--unixsocketperm", "700"
    )
    server.socket_path = path
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory):
    """A redis-server that also listens with TLS, with a certificate for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("redis-tls")
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(ca_path)
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    tls_port = _free_port()
    server = RedisServer(
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert_path),
        "--tls-key-file", str(key_path), "--tls-ca-cert-file", str(ca_path),
        "--tls-auth-clients", "no",
    )  # fmt: skip
    server.tls_port, server.ca_path = tls_port, ca_path
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    if redis_server.process is None:  # a test stopped it
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
def make_backend(request):
    """Create backend nodes sharing one broker or one Redis server: ``make_backend(**kw)``."""

    if request.param == "memory":
        broker = MemoryBroker()

        def factory(presence_ttl=30.0):
            backend = MemoryBackend(broker, presence_ttl=presence_ttl)
            return backend

    else:
        url = request.getfixturevalue("redis_url")

        def factory(presence_ttl=30.0):
            backend = RedisBackend(url, presence_ttl=presence_ttl)
            return backend

    factory.kind = request.param
    return factory


@pytest.fixture
async def backends(make_backend):
    """``await start(**kw)`` starts a node and returns ``(backend, deliveries)``."""
    started = []

    async def start(**kwargs):
        backend = make_backend(**kwargs)
        deliveries = asyncio.Queue()
        await backend.start(lambda topic, data: deliveries.put_nowait((topic, data)), events.append)
        started.append(backend)
        return backend, deliveries

    events = []
    start.events = events
    start.kind = make_backend.kind
    yield start
    for backend in started:
        await backend.close()
