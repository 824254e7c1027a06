"""The official MCP Python SDK against /mcp of the real binary: two nodes of
one cluster behind a load balancer with no stickiness (each HTTP request goes
to the other node), with the sample MCP server (stdio) registered through the
admin API twice: as `local` (tools listed directly) and as `coded` (in Code
Mode, behind the four meta-tools).

On the SDK's current major (2.x) every test runs in each way it connects:
pinned to 2026-07-28 (stateless), `auto` (probes `server/discover`) and
`legacy` (the `initialize` handshake and a session). On a 1.x SDK (the
previous-majors suite) only the handshake exists."""

import asyncio
import importlib.metadata
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import BIN, free_port, wait_up

MCP_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])
if MCP_MAJOR >= 2:
    import httpx2 as httpx
    from mcp import Client
    from mcp.shared.exceptions import MCPError as McpError

    MODES = ["2026-07-28", "auto", "legacy"]
else:
    import httpx
    from mcp import ClientSession
    from mcp.shared.exceptions import McpError

    MODES = ["legacy"]
from mcp.client.streamable_http import streamable_http_client

SECRET = "a cluster secret for the MCP SDK tests"


def admin(base: str, token: str, method: str, path: str, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def start_node(data: str, seed: str | None):
    port = free_port()
    os.makedirs(data, exist_ok=True)
    config = os.path.join(data, "tollgate.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}/data"\n'
                '[mcp]\nallow_stdio = true\n')
    env = dict(os.environ, TOLLGATE_LOG="warn", TOLLGATE_CLUSTER_SECRET=SECRET,
               TOLLGATE_CLUSTER__LISTEN="127.0.0.1:0", TOLLGATE_SEEDS=seed or "")
    gw = subprocess.Popen([BIN, "serve", "--config", config], env=env)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/ready", gw)
    with open(f"{data}/data/admin-token") as t:
        token = t.read().strip()
    return gw, port, base, token


def connected(base: str, token: str, names):
    deadline = time.time() + 30
    for name in names:
        while True:
            try:
                state = admin(base, token, "GET", f"/api/mcp/servers/{name}")["status"]["state"]
            except urllib.error.HTTPError:
                state = None
            if state == "connected":
                break
            assert time.time() < deadline, f"the sample server {name} never connected on {base}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def mcp_gateway():
    with tempfile.TemporaryDirectory() as data:
        gw1, port1, base1, token1 = start_node(f"{data}/n1", None)
        procs = [gw1]
        try:
            seed = admin(base1, token1, "GET", "/api/cluster")["quic"]
            gw2, port2, base2, token2 = start_node(f"{data}/n2", seed)
            procs.append(gw2)
            # Every sample process (two servers on each node) serves one
            # directory, as a deployment's nodes share what a server serves.
            files = f"{data}/files"
            os.makedirs(files)
            server = {"transport": {"type": "stdio", "command": os.path.abspath(BIN),
                                    "args": ["sample-mcp", "--stdio", "--dir", files]}}
            local = {"transport": dict(server["transport"],
                                       args=server["transport"]["args"] + ["--progress-tool"])}
            admin(base1, token1, "PUT", "/api/mcp/servers/local", local)
            admin(base1, token1, "PUT", "/api/mcp/servers/coded", dict(server, code_mode=True))
            connected(base1, token1, ["local", "coded"])
            connected(base2, token2, ["local", "coded"])
            keys = {
                "everything": {"name": "all"},
                "echo_only": {"name": "echo", "tools": ["local-echo"]},
                "coder": {"name": "coder", "tools": ["coded-*"]},
            }
            secrets = {k: admin(base1, token1, "POST", "/api/keys", v)["secret"] for k, v in keys.items()}
            # Written on node 1; wait until node 2 knows them too.
            deadline = time.time() + 10
            for secret in secrets.values():
                while True:
                    req = urllib.request.Request(
                        f"{base2}/mcp", method="POST", headers={
                            "Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                            "Accept": "application/json, text/event-stream"},
                        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                            "protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "probe", "version": "1"}}}).encode())
                    try:
                        with urllib.request.urlopen(req, timeout=10):
                            break
                    except urllib.error.HTTPError:
                        assert time.time() < deadline, "a key never reached node 2"
                        time.sleep(0.05)
            yield [port1, port2], secrets, (base1, token1, server)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)


class Alternating(httpx.AsyncBaseTransport):
    """A load balancer with no stickiness: each request to the other node."""

    def __init__(self, ports):
        self.ports = ports
        self.sent = 0
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        request.url = request.url.copy_with(port=self.ports[self.sent % len(self.ports)])
        self.sent += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def attr(obj, snake: str, camel: str):
    """A field of an SDK model: snake_case on 2.x, camelCase on 1.x."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


async def with_client(ports, key: str, mode: str, work, headers=None):
    balancer = Alternating(ports)
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}", **(headers or {})},
                             transport=balancer,
                             timeout=httpx.Timeout(30, read=300))
    url = f"http://127.0.0.1:{ports[0]}/mcp"
    async with http:
        if MCP_MAJOR >= 2:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                if mode != "2026-07-28":  # pinned: no discovery, so no server info
                    assert client.server_info.name == "tollgate"
                stateless = client.protocol_version == "2026-07-28"
                assert stateless == (mode != "legacy"), (mode, client.protocol_version)
                result = await work(client)
        else:
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.serverInfo.name == "tollgate"
                    result = await work(session)
    # Requests went to both nodes.
    assert balancer.sent >= 2
    return result


META_TOOLS = ["executeToolCode", "getToolDocs", "listToolFiles", "readToolFile"]


@pytest.mark.parametrize("mode", MODES)
def test_list_and_call(mcp_gateway, mode):
    ports, keys, _ = mcp_gateway

    async def work(s):
        names = sorted(t.name for t in (await s.list_tools()).tools)
        assert names == sorted(["local-add", "local-count", "local-echo", "local-exit",
                                "local-read_file", "local-write_file"] + META_TOOLS)
        r = await s.call_tool("local-add", {"a": 1, "b": 2})
        assert not attr(r, "is_error", "isError")
        assert r.content[0].text == "3"
        failed = await s.call_tool("local-read_file", {"path": "does-not-exist"})
        assert attr(failed, "is_error", "isError")

    asyncio.run(with_client(ports, keys["everything"], mode, work))


@pytest.mark.parametrize("mode", MODES)
def test_progress_of_a_tool_reaches_the_callback(mcp_gateway, mode):
    ports, keys, _ = mcp_gateway

    async def work(s):
        seen = []

        async def progress(done, total, message):
            seen.append((done, total, message))

        r = await s.call_tool("local-count", {"n": 3, "delay_ms": 20}, progress_callback=progress)
        assert r.content[0].text == "counted to 3"
        # In order, under this call; one racing the result may be dropped.
        expected = [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]
        assert seen and all(step in expected for step in seen), seen
        assert seen == sorted(seen), seen

    asyncio.run(with_client(ports, keys["everything"], mode, work))


@pytest.mark.parametrize("mode", MODES)
def test_resources_and_prompts(mcp_gateway, mode):
    ports, keys, _ = mcp_gateway

    async def work(s):
        resources = (await s.list_resources()).resources
        assert sorted(r.name for r in resources) == ["coded-readme", "local-readme"]
        assert {str(r.uri) for r in resources} == {"sample://readme"}
        templates = attr(await s.list_resource_templates(), "resource_templates", "resourceTemplates")
        assert sorted(t.name for t in templates) == ["coded-file", "local-file"]
        assert attr(templates[0], "uri_template", "uriTemplate") == "sample://files/{path}"
        read = await s.read_resource("sample://readme")
        assert read.contents[0].text == "# The sample MCP server\n"
        await s.call_tool("local-write_file", {"path": "sdk.txt", "content": "written by the SDK"})
        read = await s.read_resource("sample://files/sdk.txt")
        assert read.contents[0].text == "written by the SDK"
        prompts = (await s.list_prompts()).prompts
        assert sorted(p.name for p in prompts) == ["coded-greet", "local-greet"]
        got = await s.get_prompt("local-greet", {"name": "Ada"})
        assert got.messages[0].content.text == "Say hello to Ada."
        with pytest.raises(McpError, match="unknown prompt"):
            await s.get_prompt("nowhere-greet", {"name": "Ada"})

    asyncio.run(with_client(ports, keys["everything"], mode, work))


@pytest.mark.parametrize("mode", MODES)
def test_a_scoped_key_sees_and_calls_only_its_tools(mcp_gateway, mode):
    ports, keys, _ = mcp_gateway

    async def work(s):
        assert [t.name for t in (await s.list_tools()).tools] == ["local-echo"]
        r = await s.call_tool("local-echo", {"text": "hi"})
        assert r.content[0].text == "hi"
        with pytest.raises(McpError, match="unknown tool"):
            await s.call_tool("local-add", {"a": 1, "b": 2})
        assert (await s.list_resources()).resources == []
        assert (await s.list_prompts()).prompts == []
        with pytest.raises(McpError, match="unknown resource"):
            await s.read_resource("sample://readme")

    asyncio.run(with_client(ports, keys["echo_only"], mode, work))


@pytest.mark.parametrize("mode", MODES)
def test_code_mode_reads_stubs_and_runs_a_script(mcp_gateway, mode):
    ports, keys, _ = mcp_gateway

    async def work(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert sorted(tools) == META_TOOLS
        schema = attr(tools["readToolFile"], "input_schema", "inputSchema")
        assert sorted(schema["properties"]) == ["endLine", "fileName", "startLine"]
        files = await s.call_tool("listToolFiles", {})
        assert files.content[0].text == "servers/coded.pyi  (5 tools)\n"
        stub = await s.call_tool("readToolFile", {"fileName": "servers/coded.pyi"})
        assert "def add(a: float, b: float) -> Any:" in stub.content[0].text
        docs = await s.call_tool("getToolDocs", {"server": "coded", "tool": "echo"})
        assert "text (str, required)" in docs.content[0].text
        script = "total = 0\nfor i in range(3):\n    total += int(coded.add(a = i, b = 10))\nprint(coded.echo(text = 'sum'))\nresult = total\n"
        run = await s.call_tool("executeToolCode", {"code": script})
        assert not attr(run, "is_error", "isError"), run.content[0].text
        assert run.content[0].text == "sum\nresult = 33\n"
        bad = await s.call_tool("executeToolCode", {"code": "import os\n"})
        assert attr(bad, "is_error", "isError")
        assert bad.content[0].text.startswith("compile error:")

    asyncio.run(with_client(ports, keys["coder"], mode, work))


@pytest.mark.skipif(MCP_MAJOR < 2, reason="subscriptions/listen is of 2026-07-28")
def test_a_listen_stream_tells_of_new_tools(mcp_gateway):
    ports, keys, (base, token, server) = mcp_gateway

    async def work(client):
        async with client.listen(tools_list_changed=True) as sub:
            assert sub.honored.tools_list_changed is True
            admin(base, token, "PUT", "/api/mcp/servers/extra", server)
            try:
                event = await asyncio.wait_for(sub.__anext__(), timeout=30)
                assert type(event).__name__ == "ToolsListChanged"
                # The other node may connect a moment later: ask past the cache.
                deadline = time.time() + 30
                while True:
                    listed = await client.list_tools(cache_mode="bypass")
                    if "extra-echo" in {t.name for t in listed.tools}:
                        break
                    assert time.time() < deadline, "the new server's tools never showed"
                    await asyncio.sleep(0.1)
            finally:
                admin(base, token, "DELETE", "/api/mcp/servers/extra")
                connected_gone = time.time() + 30
                while any(t.name.startswith("extra-")
                          for t in (await client.list_tools(cache_mode="bypass")).tools):
                    assert time.time() < connected_gone, "the removed server's tools stayed"
                    await asyncio.sleep(0.1)

    asyncio.run(with_client(ports, keys["everything"], "2026-07-28", work))
