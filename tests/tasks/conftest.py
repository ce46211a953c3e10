"""S3 on loopback for the task tests: moto in server mode (real HTTP) and a proxy that answers 503 on demand."""

from __future__ import annotations

import http.client
import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of one moto server (S3 and friends) for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and MLflow) at moto with dummy credentials; returns the endpoint URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


def _raw_client(endpoint: str):
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint)


@pytest.fixture
def s3_bucket(s3_env: str) -> str:
    """A fresh, empty bucket on moto (unique name per test)."""
    name = f"ferflow-{uuid.uuid4().hex[:12]}"
    _raw_client(s3_env).create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_client(s3_env: str):
    """A plain boto3 client on moto, independent of fer_adapters.store, for checking what landed in the bucket."""
    return _raw_client(s3_env)


@dataclass
class FlakyProxy:
    """A loopback HTTP proxy in front of moto that answers 503 SlowDown to its first ``fail_first`` requests.

    Attributes:
        url: the proxy's endpoint URL (use it as AWS_ENDPOINT_URL).
        fail_first: how many requests to refuse before forwarding.
        seen: ``(method, path, status)`` of every request received, in order.
    """

    url: str = ""
    fail_first: int = 1
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length", 0)))


def _make_handler(state: FlakyProxy, upstream: tuple[str, int]):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _relay(self) -> None:
            body = _read_body(self)
            with state.lock:
                refuse = len(state.seen) < state.fail_first
                state.seen.append((self.command, self.path, 503 if refuse else 0))
            if refuse:
                self._answer(503, {"Content-Type": "application/xml"}, _SLOWDOWN)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(*upstream, timeout=30)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            with state.lock:
                state.seen[-1] = (self.command, self.path, resp.status)
            passed = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")}
            self._answer(resp.status, passed, data)
            conn.close()

        def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

    return Handler


@pytest.fixture
def flaky_s3(moto_endpoint: str) -> Iterator[FlakyProxy]:
    """A `FlakyProxy` on a free loopback port forwarding to moto; set ``fail_first`` before use."""
    host, port = moto_endpoint.removeprefix("http://").split(":")
    state = FlakyProxy()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state, (host, int(port))))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
