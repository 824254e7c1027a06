"""OAuth to upstream MCP servers, end to end: a real authorization server
(`oauth_server.py`, Authlib), the sample MCP server as a protected resource
of it (`sample-mcp --oauth-issuer`: 401 with a challenge, tokens checked by
introspection and audience on every request), and two gateway nodes of one
cluster reached through the official MCP SDK with no sticky routing.

Access tokens live 4 s here, so expiry and refresh happen while the tests
run. Two servers are registered: `gw` (gateway mode, the gateway is its
client through a client ID metadata document) and `me` (per user, dynamic
registration). Authorising is what a browser would do: open the link, let
the authorization server redirect (it approves `?user=` at once), and
follow the redirect to the gateway's callback -- on the other node than the
one that made the link (`mcp.public_url` names node 2)."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests

from conftest import BIN, eventually, free_port, http_json, wait_up
from test_mcp_sdk import MCP_MAJOR, SECRET, attr, with_client

TOKEN_TTL = 4
MODE = "2026-07-28" if MCP_MAJOR >= 2 else "legacy"
HERE = os.path.dirname(os.path.abspath(__file__))


def start_node(data: str, port: int, public: str, seed: str | None):
    os.makedirs(data, exist_ok=True)
    config = os.path.join(data, "tollgate.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}/data"\n'
                f'[mcp]\npublic_url = "{public}"\nuser_header = "x-tollgate-user"\n'
                'ping_interval = "1s"\nbackoff_max = "2s"\n')
    env = dict(os.environ, TOLLGATE_LOG="warn", TOLLGATE_CLUSTER_SECRET=SECRET,
               TOLLGATE_CLUSTER__LISTEN="127.0.0.1:0", TOLLGATE_SEEDS=seed or "")
    proc = subprocess.Popen([BIN, "serve", "--config", config], env=env)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/ready", proc)
    with open(f"{data}/data/admin-token") as t:
        return proc, base, t.read().strip()


class World:
    def __init__(self, auth: str, mcp: str, bases, tokens, ports, keys):
        self.auth, self.mcp, self.bases, self.tokens, self.ports, self.keys = (
            auth, mcp, bases, tokens, ports, keys)

    def admin(self, method, path, body=None, node=0):
        """The admin API of node `node` (each node has its own admin token)."""
        return http_json(method, self.bases[node] + path, body, self.tokens[node])

    def stats(self):
        return requests.get(f"{self.auth}/test/stats", timeout=10).json()

    def state(self, server, node):
        status, v = self.admin("GET", f"/api/mcp/servers/{server}", node=node)
        assert status == 200, v
        return v["status"]["state"]

    def authorise(self, link: str, user: str):
        """What the user's browser does with the link; returns the callback's page."""
        to_as = requests.get(link + "&" + urllib.parse.urlencode({"user": user}),
                             allow_redirects=False, timeout=10)
        assert to_as.status_code in (302, 303), (to_as.status_code, to_as.text)
        callback = to_as.headers["location"]
        assert callback.startswith(self.bases[1] + "/oauth/callback?"), callback
        page = requests.get(callback, timeout=30)
        assert page.status_code == 200, page.text
        assert "Authorised" in page.text
        return page.text


@pytest.fixture(scope="module")
def world():
    with tempfile.TemporaryDirectory() as data:
        procs = []
        try:
            as_port, mcp_port, port1, port2 = free_port(), free_port(), free_port(), free_port()
            auth = f"http://127.0.0.1:{as_port}"
            procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "oauth_server.py"),
                                           "--port", str(as_port), "--token-ttl", str(TOKEN_TTL)]))
            wait_up(f"{auth}/.well-known/oauth-authorization-server", procs[-1])
            procs.append(subprocess.Popen([BIN, "sample-mcp", "--http", f"127.0.0.1:{mcp_port}",
                                           "--oauth-issuer", auth],
                                          env=dict(os.environ, TOLLGATE_LOG="warn")))
            wait_up(f"http://127.0.0.1:{mcp_port}/health", procs[-1])
            public = f"http://127.0.0.1:{port2}"
            gw1, base1, token = start_node(f"{data}/n1", port1, public, None)
            procs.append(gw1)
            seed = http_json("GET", f"{base1}/api/cluster", None, token)[1]["quic"]
            gw2, base2, token2 = start_node(f"{data}/n2", port2, public, seed)
            procs.append(gw2)
            keys = {}
            for name in ("alice", "bob"):
                status, k = http_json("POST", f"{base1}/api/keys", {"name": name}, token)
                assert status == 201, k
                keys[name] = k["secret"]
            w = World(auth, f"http://127.0.0.1:{mcp_port}/mcp", [base1, base2], [token, token2],
                      [port1, port2], keys)
            # Node 2 knows the keys (replicated) before the tests use it.
            for secret in keys.values():
                eventually("keys replicated to node 2", lambda s=secret: http_json(
                    "GET", f"{base2}/api/self", None, s)[0] == 200)
            yield w
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                p.wait(timeout=30)


def call(w: World, key: str, tool: str, user: str | None = None):
    """Lists tools, then calls `tool` (the two go to different nodes); the result."""
    async def work(s):
        await s.list_tools()
        return await s.call_tool(tool, {})
    return asyncio.run(with_client(w.ports, key, MODE, work, headers=user_header(user)))


def names(w: World, key: str, user: str | None = None):
    """The tools listed (then the prompts, from the other node: the SDK
    keeps a tool list for its `ttlMs`)."""
    async def work(s):
        listed = sorted(t.name for t in (await s.list_tools()).tools)
        await s.list_prompts()
        return listed
    return asyncio.run(with_client(w.ports, key, MODE, work, headers=user_header(user)))


def catalog(w: World, key: str, read_it: bool = True):
    """Resources and prompts listed; the readme read and `greet` got, if asked."""
    async def work(s):
        listed = {"resources": sorted(r.name for r in (await s.list_resources()).resources),
                  "prompts": sorted(p.name for p in (await s.list_prompts()).prompts)}
        if not read_it:
            return listed, None, None
        read = await s.read_resource("sample://readme")
        prompt = await s.get_prompt("me-greet", {"name": "Ada"})
        return listed, read, prompt
    return asyncio.run(with_client(w.ports, key, MODE, work))


def user_header(user):
    return {"x-tollgate-user": user} if user else {}


def text(result) -> str:
    return result.content[0].text


def link_in(result) -> str:
    assert attr(result, "is_error", "isError"), text(result)
    structured = attr(result, "structured_content", "structuredContent")
    return structured["authorization_url"]


def test_gateway_mode_discovers_authorises_with_pkce_on_any_node(world):
    w = world
    status, server = w.admin("PUT", "/api/mcp/servers/gw", {
        "transport": {"type": "http", "url": w.mcp}, "oauth": {"mode": "gateway"}})
    assert status == 200, server
    for node in (0, 1):
        eventually("gw waits for authorisation", lambda n=node: w.state("gw", n) == "needs_authorisation")
    status, started = w.admin("POST", "/api/mcp/servers/gw/oauth")
    assert status == 200, started
    link = started["authorization_url"]
    q = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)
    # Discovered from the 401's challenge: the authorization server's endpoint,
    # the resource, PKCE with S256, and the gateway's metadata document as client.
    assert link.startswith(w.auth + "/authorize?")
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["resource"] == [w.mcp]
    assert q["client_id"] == [w.bases[1] + "/oauth/client.json"]
    before = w.stats()
    w.authorise(link, "admin")
    after = w.stats()
    assert after["code_exchanges"] == before["code_exchanges"] + 1
    assert after["metadata_document_fetches"] > before["metadata_document_fetches"]
    assert after["code_challenge_methods"][-1] == "S256"
    # The token was written on node 2 and replicated: both nodes connect.
    for node in (0, 1):
        eventually("gw connects", lambda n=node: w.state("gw", n) == "connected")
    status, standing = w.admin("GET", "/api/mcp/servers/gw/oauth")
    assert standing["authorised"] and standing["expires_at_ms"], standing
    assert "token" not in str(standing).lower().replace("oauth", "")
    for key in ("alice", "bob"):
        assert text(call(w, w.keys[key], "gw-whoami")) == "admin"


def test_tokens_are_refreshed_before_they_expire_by_one_node_at_a_time(world):
    w = world
    for node in (0, 1):
        eventually("gw connected", lambda n=node: w.state("gw", n) == "connected")
    before = w.stats()
    connects = [w.admin("GET", "/api/mcp/servers/gw", node=n)[1]["status"]["connects"] for n in (0, 1)]

    async def work(s):
        # One client session, through both nodes, over three token
        # lifetimes: every call works.
        calls = 0
        deadline = time.time() + 3 * TOKEN_TTL
        while time.time() < deadline:
            r = await s.call_tool("gw-whoami", {})
            assert not attr(r, "is_error", "isError"), text(r)
            assert text(r) == "admin"
            calls += 1
            await asyncio.sleep(0.25)
        return calls

    assert asyncio.run(with_client(w.ports, w.keys["alice"], MODE, work)) >= 12
    after = w.stats()
    assert after["refreshes"] >= before["refreshes"] + 2, (before, after)
    # Refreshed in place: the gateway's own connections stayed open.
    assert connects == [w.admin("GET", "/api/mcp/servers/gw", node=n)[1]["status"]["connects"]
                        for n in (0, 1)]
    # Refresh tokens rotate: two nodes refreshing with the same one would
    # make the second fail. None did.
    assert after["refresh_failures"] == before["refresh_failures"], (before, after)


def test_a_revoked_token_asks_for_authorisation_again(world):
    w = world
    revoked = requests.post(f"{w.auth}/test/revoke-user", json={"user": "admin"}, timeout=10).json()
    assert revoked["revoked"] >= 1
    for node in (0, 1):
        eventually("gw asks for authorisation", lambda n=node: w.state("gw", n) == "needs_authorisation")
    status, standing = w.admin("GET", "/api/mcp/servers/gw/oauth")
    assert not standing["authorised"] and "authorise again" in standing["problem"], standing
    assert "gw-whoami" not in names(w, w.keys["alice"])
    # Not locked out: a new authorisation replaces the revoked tokens.
    w.authorise(w.admin("POST", "/api/mcp/servers/gw/oauth", node=1)[1]["authorization_url"], "admin")
    for node in (0, 1):
        eventually("gw reconnects", lambda n=node: w.state("gw", n) == "connected")
    assert text(call(w, w.keys["bob"], "gw-whoami")) == "admin"


def test_per_user_tokens_are_never_used_for_another_user(world):
    w = world
    status, server = w.admin("PUT", "/api/mcp/servers/me", {
        "transport": {"type": "http", "url": w.mcp},
        "oauth": {"mode": "per_user", "registration": "dynamic"}})
    assert status == 200, server
    assert server["status"]["state"] == "per_user"
    alice, bob = w.keys["alice"], w.keys["bob"]
    # Before authorising, alice sees the server's authorize tool, and a call
    # answers with her link.
    assert "me-authorize" in names(w, alice) and "me-whoami" not in names(w, alice)
    registrations = w.stats()["registrations"]
    link = link_in(call(w, alice, "me-whoami"))
    assert "client_id=" in link
    w.authorise(link, "alice")
    assert w.stats()["registrations"] == registrations + 1, "dynamic registration"
    assert text(call(w, alice, "me-whoami")) == "alice"
    assert "me-whoami" in names(w, alice) and "me-authorize" not in names(w, alice)
    # Its resources and prompts too, over alice's connection ("gw" serves the
    # same URIs: off for this test, so that only "me" can answer them).
    assert w.admin("PATCH", "/api/mcp/servers/gw", {"enabled": False})[0] == 200
    listed, read, prompt = catalog(w, alice)
    assert "me-readme" in listed["resources"] and "me-greet" in listed["prompts"], listed
    assert read.contents[0].text.startswith("# The sample MCP server")
    assert "Ada" in prompt.messages[0].content.text
    # Bob holds no token: none of it.
    assert catalog(w, bob, read_it=False)[0] == {"resources": [], "prompts": []}
    # Bob has no token yet: he gets his own link, not alice's connection.
    r = call(w, bob, "me-whoami")
    w.authorise(link_in(r), "bob")
    assert text(call(w, bob, "me-whoami")) == "bob"
    assert text(call(w, alice, "me-whoami")) == "alice"
    # An end user of alice's key named by the operator's header is a user of
    # its own: carol authorises for herself, alice's token is not hers.
    w.authorise(link_in(call(w, alice, "me-whoami", user="carol")), "carol")
    assert text(call(w, alice, "me-whoami", user="carol")) == "carol"
    assert text(call(w, alice, "me-whoami")) == "alice"
    # Forgetting bob's tokens leaves alice's alone.
    status, self_info = http_json("GET", f"{w.bases[0]}/api/self", None, bob)
    bob_id = self_info["key"]["id"]
    status, _ = w.admin("DELETE", f"/api/mcp/servers/me/oauth?subject=key:{bob_id}")
    assert status == 204
    link_in(call(w, bob, "me-whoami"))
    assert text(call(w, alice, "me-whoami")) == "alice"


def test_a_refused_refresh_recovers_by_authorising_again(world):
    w = world
    alice = w.keys["alice"]
    assert text(call(w, alice, "me-whoami")) == "alice"
    requests.post(f"{w.auth}/test/fail-refresh", json={"on": True}, timeout=10)
    try:
        failures = w.stats()["refresh_failures"]
        # Once the token is due, its refresh is refused: alice gets a link.
        result = eventually("alice is asked to authorise again", lambda: (
            lambda r: r if attr(r, "is_error", "isError") else None)(call(w, alice, "me-whoami")),
            timeout=4 * TOKEN_TTL, interval=0.5)
        link = link_in(result)
        assert w.stats()["refresh_failures"] > failures
    finally:
        requests.post(f"{w.auth}/test/fail-refresh", json={"on": False}, timeout=10)
    w.authorise(link, "alice")
    assert text(call(w, alice, "me-whoami")) == "alice"
