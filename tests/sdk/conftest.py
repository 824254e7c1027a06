"""Starts the real tollgate binary (mock provider + gateway) for the SDK tests.

`gateway_url` is one plain gateway for the whole session; `start_mock` and
`start_gateway` start more, with their own configuration, for suites that
need one (the response cache)."""

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

BIN = os.environ.get("TOLLGATE_BIN", "target/debug/tollgate")
ADMIN_TOKEN = "sdk-tests-admin-token-0123456789"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def eventually(what: str, check, timeout: float = 30, interval: float = 0.1):
    """Polls `check` until it returns something truthy (returned), failing
    the test naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(interval)


def http_json(method: str, url: str, body=None, token: str | None = None):
    """`(status, JSON body or None)` of one request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, (json.loads(raw) if raw else None)


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.terminate()
        p.wait(timeout=30)


class Mock:
    """A `tollgate mock` process: the upstream every provider below points at."""

    def __init__(self, port: int, proc: subprocess.Popen):
        self.url, self.proc = f"http://127.0.0.1:{port}", proc

    def requests(self) -> int:
        """How many requests reached the upstream so far."""
        return http_json("GET", f"{self.url}/mock/stats")[1]["requests"]

    def providers_toml(self) -> str:
        return (
            f'[providers.mock]\nbase_url = "{self.url}/v1"\n'
            # The same mock, answering in Anthropic's own format.
            f'[providers.ant]\nkind = "anthropic"\napi_key = "mock-key"\n'
            f'base_url = "{self.url}/v1"\n'
            f'[providers.gem]\nkind = "gemini"\napi_key = "mock-key"\n'
            f'base_url = "{self.url}/v1beta"\n'
            # Streams cut by the upstream after two content events.
            f'[providers.cut]\nkind = "anthropic"\napi_key = "mock-key"\nmax_retries = 0\n'
            f'base_url = "{self.url}/v1"\n'
            f'headers = {{ "x-mock-fail-after" = "2" }}\n'
        )


class Gateway:
    """A `tollgate serve` process, with the admin API at hand."""

    def __init__(self, port: int, proc: subprocess.Popen):
        self.url, self.proc = f"http://127.0.0.1:{port}", proc

    def admin(self, method: str, path: str, body=None):
        return http_json(method, f"{self.url}{path}", body, ADMIN_TOKEN)

    def cache(self) -> dict:
        """`GET /api/cache`: this node's cache counters."""
        status, v = self.admin("GET", "/api/cache")
        assert status == 200, v
        return v

    def create_key(self, name: str, **fields) -> dict:
        """A new virtual key (with its `secret`)."""
        status, k = self.admin("POST", "/api/keys", dict(name=name, **fields))
        assert status == 201, k
        return k


@contextlib.contextmanager
def start_mock():
    port = free_port()
    proc = subprocess.Popen([BIN, "mock", "--listen", f"127.0.0.1:{port}"], env=dict(os.environ, TOLLGATE_LOG="warn"))
    try:
        wait_up(f"http://127.0.0.1:{port}/v1/models", proc)
        yield Mock(port, proc)
    finally:
        stop(proc)


@contextlib.contextmanager
def start_gateway(mock: Mock, config: str = "", env: dict | None = None):
    """A gateway in front of `mock`'s providers, with `config` (TOML after
    `[server]`) and `env` added to its own."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        path = os.path.join(data, "tollgate.toml")
        with open(path, "w") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}/data"\n'
                f'admin_token = "{ADMIN_TOKEN}"\n{mock.providers_toml()}{config}\n'
            )
        proc = subprocess.Popen(
            [BIN, "serve", "--config", path], env=dict(os.environ, TOLLGATE_LOG="warn", **(env or {}))
        )
        try:
            wait_up(f"http://127.0.0.1:{port}/ready", proc)
            yield Gateway(port, proc)
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def gateway_url():
    with start_mock() as mock, start_gateway(mock) as gw:
        yield gw.url
