"""Browser tests of the dashboard: real `tollgate` processes, headless
Chromium driven by Selenium.

`node` is one `tollgate serve --demo` for the whole session; `cluster` is
three nodes joined over loopback, for the cluster page. `browser` makes a
fresh Chromium (own profile, so own cookies) that records console entries,
CSP violations and alerts."""

import contextlib
import json
import os
import secrets
import shutil
import socket
import string
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BIN = os.environ.get("TOLLGATE_BIN", "/var/cache/tollgate/target/debug/tollgate")
ARTIFACTS = os.environ.get("TOLLGATE_ARTIFACTS", "target/browser-artifacts")
ADMIN_TOKEN = "browser-tests-admin-token-0123456789abcdef"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
XSS = "<img src=x onerror=alert(1)>"
WAIT = 20

# Runs in every document before its own scripts: records CSP violations and
# alerts (which still open, so `switch_to.alert` sees them too).
HOOKS = """
window.__csp = [];
window.__xss = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
(function () {
  var original = window.alert;
  window.alert = function (m) { window.__xss.push(String(m)); return original.call(window, m); };
})();
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30):
    """`(status, JSON body or None)` of one request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, (json.loads(raw) if raw else None)
    except ValueError:
        return status, raw.decode(errors="replace")


def eventually(what: str, check, timeout: float = 30, interval: float = 0.1):
    """Polls `check` until it returns something truthy (returned)."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(interval)


class Node:
    """A running `tollgate serve` process and its admin API."""

    def __init__(self, port: int, proc: subprocess.Popen, log_path: str):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc
        self.log_path = log_path

    def admin(self, method: str, path: str, body=None):
        return http(method, self.url + path, body, {"authorization": f"Bearer {ADMIN_TOKEN}"})

    def create(self, kind: str, **fields) -> dict:
        status, obj = self.admin("POST", f"/api/{kind}", fields)
        assert status == 201, (status, obj)
        return obj

    def chat(self, secret: str | None, model: str = "demo/mock-1", content: str = "hi"):
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        return http("POST", self.url + "/v1/chat/completions",
                    {"model": model, "messages": [{"role": "user", "content": content}]}, headers)

    def mcp_call(self, secret: str, tool: str, arguments: dict) -> dict:
        """Calls a tool through the gateway's /mcp (streamable HTTP, JSON answers)."""
        headers = {"authorization": f"Bearer {secret}", "content-type": "application/json",
                   "accept": "application/json, text/event-stream"}
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "browser-tests", "version": "1"}}}
        req = urllib.request.Request(self.url + "/mcp", data=json.dumps(init).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            session = r.headers["mcp-session-id"]
            r.read()
        headers.update({"mcp-session-id": session, "mcp-protocol-version": "2025-06-18"})
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        req = urllib.request.Request(self.url + "/mcp", data=json.dumps(call).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
        assert "result" in answer, answer
        return answer["result"]

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_ready(node: Node, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if node.proc.poll() is not None:
            raise RuntimeError(f"tollgate exited with {node.proc.returncode}:\n{node.log_tail()}")
        try:
            with urllib.request.urlopen(node.url + "/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{node.url}/ready did not answer 200:\n{node.log_tail()}")


@contextlib.contextmanager
def start_node(args=("serve", "--demo"), env: dict | None = None):
    if not os.path.exists(BIN):
        pytest.fail(f"no tollgate binary at {BIN} (build it, or set TOLLGATE_BIN)")
    port = free_port()
    data = tempfile.mkdtemp(prefix="tollgate-browser-")
    log_path = os.path.join(data, "node.log")
    full_env = dict(os.environ)
    # The node's own settings only: a developer's TOLLGATE_* variables would change what is tested.
    for k in list(full_env):
        if k.startswith("TOLLGATE_") and k not in ("TOLLGATE_DASHBOARD_DIR",):
            del full_env[k]
    full_env.update({
        "TOLLGATE_LOG": "warn",
        "TOLLGATE_SERVER__LISTEN": f"127.0.0.1:{port}",
        "TOLLGATE_SERVER__DATA_DIR": os.path.join(data, "data"),
        "TOLLGATE_SERVER__ADMIN_TOKEN": ADMIN_TOKEN,
    })
    full_env.update(env or {})
    log = open(log_path, "w")
    proc = subprocess.Popen([BIN, *args], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    node = Node(port, proc, log_path)
    try:
        wait_ready(node)
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def node():
    with start_node() as n:
        # The demo registers its MCP server through the node's own API once ready.
        def connected():
            status, server = n.admin("GET", "/api/mcp/servers/demo")
            return status == 200 and server["status"]["state"] == "connected"
        eventually("MCP server demo registered and connected", connected, timeout=30)
        yield n


@pytest.fixture(scope="module")
def cluster():
    """Three nodes on loopback with one cluster secret; the 2nd and 3rd join
    through the first. Yields the nodes once the first sees both peers alive."""
    alphabet = string.ascii_letters + string.digits
    secret = "".join(secrets.choice(alphabet) for _ in range(40))
    udp = [free_port(socket.SOCK_DGRAM) for _ in range(3)]
    with contextlib.ExitStack() as stack:
        nodes = []
        for i, port in enumerate(udp):
            env = {
                "TOLLGATE_CLUSTER_SECRET": secret,
                "TOLLGATE_CLUSTER__LISTEN": f"127.0.0.1:{port}",
                "TOLLGATE_CLUSTER__ADVERTISE": f"127.0.0.1:{port}",
            }
            if i > 0:
                env["TOLLGATE_SEEDS"] = f"127.0.0.1:{udp[0]}"
            nodes.append(stack.enter_context(start_node(("serve",), env)))

        def all_alive():
            status, view = nodes[0].admin("GET", "/api/cluster")
            if status != 200 or not view.get("enabled"):
                return None
            alive = [m for m in view.get("members", []) if m.get("state") == "alive"]
            return view if len(alive) == 2 else None

        view = eventually("three alive members in /api/cluster of node 1", all_alive, timeout=60, interval=0.25)
        yield nodes, view


def make_driver(width: int = 1280, height: int = 900, dark: bool | None = None):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
              "--disable-gpu", "--no-first-run", "--disable-extensions", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An alert must stay open for the test to see it, not be dismissed by the driver.
    opts.set_capability("unhandledPromptBehavior", "ignore")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOKS})
    if dark is not None:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
    return driver


@pytest.fixture
def browser():
    drivers = []

    def make(**kw):
        d = make_driver(**kw)
        drivers.append(d)
        return d

    yield make
    for d in drivers:
        with contextlib.suppress(Exception):
            d.quit()


@pytest.fixture
def driver(browser):
    return browser()


@pytest.fixture(scope="session")
def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


# ---------- page helpers ----------


def wait(driver, timeout: float = WAIT):
    # Pages re-render their tables after a write: an element found a moment
    # ago may be gone, and the next poll finds its replacement.
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def tid(value: str) -> str:
    return f'[data-testid="{value}"]'


def page_ready(driver, name: str, timeout: float = WAIT):
    """Waits until page `name` has loaded its data; returns its root."""
    return wait(driver, timeout).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, f'[data-testid="page-{name}"][data-state="ready"]')),
        f"page {name} did not finish loading")


def goto(driver, node: Node, name: str, query: str = ""):
    """Navigates to page `name` through the hash router and waits for it."""
    target = f"#/{name}{'?' + query if query else ''}"
    driver.execute_script("location.hash = arguments[0]", target)
    # A new page root replaces the old one, so a root in "ready" state is the new page's.
    wait(driver).until(lambda d: d.execute_script(
        "var r = document.querySelector('[data-testid^=\"page-\"]');"
        "return r && r.dataset.testid === arguments[0] && r.dataset.state === 'ready' && location.hash === arguments[1];",
        f"page-{name}", target), f"page {name} did not finish loading")
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="page-{name}"]')


def login(driver, node: Node, token: str = ADMIN_TOKEN):
    driver.get(node.url + "/")
    field = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
    field.clear()
    field.send_keys(token + "\n")
    page_ready(driver, "overview")


def save_page(driver, path: str, max_height: int = 4000) -> None:
    """A PNG of the whole page (the window grown to the document's height)."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    full = driver.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    chrome = height - driver.execute_script("return window.innerHeight")
    if full > height - chrome:
        driver.set_window_size(width, min(max_height, full + chrome))
    try:
        driver.save_screenshot(path)
    finally:
        driver.set_window_size(width, height)


def severe_entries(driver, allow=()):
    """SEVERE console entries, except favicon 404s and the patterns in `allow`."""
    out = []
    for e in driver.get_log("browser"):
        if e.get("level") != "SEVERE":
            continue
        msg = e.get("message", "")
        if "favicon" in msg:
            continue
        if any(a in msg for a in allow):
            continue
        out.append(msg)
    return out
