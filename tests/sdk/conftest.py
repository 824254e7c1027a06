"""Starts the real tollgate binary (mock provider + gateway) for the SDK tests."""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

BIN = os.environ.get("TOLLGATE_BIN", "target/debug/tollgate")


def free_port() -> int:
    with socket.socket() as s:
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


@pytest.fixture(scope="session")
def gateway_url():
    mock_port, gw_port = free_port(), free_port()
    env = dict(os.environ, TOLLGATE_LOG="warn")
    mock = subprocess.Popen([BIN, "mock", "--listen", f"127.0.0.1:{mock_port}"], env=env)
    with tempfile.TemporaryDirectory() as data:
        config = os.path.join(data, "tollgate.toml")
        with open(config, "w") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:{gw_port}"\ndata_dir = "{data}/data"\n'
                f'[providers.mock]\nbase_url = "http://127.0.0.1:{mock_port}/v1"\n'
                # The same mock, answering in Anthropic's own format.
                f'[providers.ant]\nkind = "anthropic"\napi_key = "mock-key"\n'
                f'base_url = "http://127.0.0.1:{mock_port}/v1"\n'
                f'[providers.gem]\nkind = "gemini"\napi_key = "mock-key"\n'
                f'base_url = "http://127.0.0.1:{mock_port}/v1beta"\n'
                # Streams cut by the upstream after two content events.
                f'[providers.cut]\nkind = "anthropic"\napi_key = "mock-key"\nmax_retries = 0\n'
                f'base_url = "http://127.0.0.1:{mock_port}/v1"\n'
                f'headers = {{ "x-mock-fail-after" = "2" }}\n'
            )
        gw = subprocess.Popen([BIN, "serve", "--config", config], env=env)
        try:
            wait_up(f"http://127.0.0.1:{mock_port}/v1/models", mock)
            wait_up(f"http://127.0.0.1:{gw_port}/ready", gw)
            yield f"http://127.0.0.1:{gw_port}"
        finally:
            for p in (gw, mock):
                p.terminate()
                p.wait(timeout=30)
