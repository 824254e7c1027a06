"""The official MCP Python SDK against /mcp of the real binary, with the
sample MCP server (stdio) registered through the admin API twice: as `local`
(tools listed directly) and as `coded` (in Code Mode, behind the four
meta-tools)."""

import asyncio
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import McpError

from conftest import BIN, free_port, wait_up


def admin(base: str, token: str, method: str, path: str, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def mcp_gateway():
    port = free_port()
    env = dict(os.environ, TOLLGATE_LOG="warn")
    with tempfile.TemporaryDirectory() as data:
        config = os.path.join(data, "tollgate.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data}/data"\n'
                    '[mcp]\nallow_stdio = true\n')
        gw = subprocess.Popen([BIN, "serve", "--config", config], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(f"{base}/ready", gw)
            with open(f"{data}/data/admin-token") as t:
                token = t.read().strip()
            server = {"transport": {"type": "stdio", "command": os.path.abspath(BIN),
                                    "args": ["sample-mcp", "--stdio"]}}
            admin(base, token, "PUT", "/api/mcp/servers/local", server)
            admin(base, token, "PUT", "/api/mcp/servers/coded", dict(server, code_mode=True))
            deadline = time.time() + 30
            for name in ["local", "coded"]:
                while admin(base, token, "GET", f"/api/mcp/servers/{name}")["status"]["state"] != "connected":
                    assert time.time() < deadline, f"the sample server {name} never connected"
                    time.sleep(0.05)
            everything = admin(base, token, "POST", "/api/keys", {"name": "all"})["secret"]
            echo_only = admin(base, token, "POST", "/api/keys",
                              {"name": "echo", "tools": ["local-echo"]})["secret"]
            coder = admin(base, token, "POST", "/api/keys",
                          {"name": "coder", "tools": ["coded-*"]})["secret"]
            yield base, everything, echo_only, coder
        finally:
            gw.terminate()
            gw.wait(timeout=30)


async def with_session(base: str, key: str, work):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.serverInfo.name == "tollgate"
                return await work(session)


META_TOOLS = ["executeToolCode", "getToolDocs", "listToolFiles", "readToolFile"]


def test_initialize_list_and_call(mcp_gateway):
    base, everything, _, _ = mcp_gateway

    async def work(s: ClientSession):
        names = sorted(t.name for t in (await s.list_tools()).tools)
        assert names == sorted(["local-add", "local-echo", "local-exit", "local-read_file",
                                "local-write_file"] + META_TOOLS)
        r = await s.call_tool("local-add", {"a": 1, "b": 2})
        assert not r.isError
        assert r.content[0].text == "3"
        failed = await s.call_tool("local-read_file", {"path": "does-not-exist"})
        assert failed.isError

    asyncio.run(with_session(base, everything, work))


def test_a_scoped_key_sees_and_calls_only_its_tools(mcp_gateway):
    base, _, echo_only, _ = mcp_gateway

    async def work(s: ClientSession):
        assert [t.name for t in (await s.list_tools()).tools] == ["local-echo"]
        r = await s.call_tool("local-echo", {"text": "hi"})
        assert r.content[0].text == "hi"
        with pytest.raises(McpError, match="unknown tool"):
            await s.call_tool("local-add", {"a": 1, "b": 2})

    asyncio.run(with_session(base, echo_only, work))


def test_code_mode_reads_stubs_and_runs_a_script(mcp_gateway):
    base, _, _, coder = mcp_gateway

    async def work(s: ClientSession):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert sorted(tools) == META_TOOLS
        assert sorted(tools["readToolFile"].inputSchema["properties"]) == [
            "endLine", "fileName", "startLine"]
        files = await s.call_tool("listToolFiles", {})
        assert files.content[0].text == "servers/coded.pyi  (5 tools)\n"
        stub = await s.call_tool("readToolFile", {"fileName": "servers/coded.pyi"})
        assert "def add(a: float, b: float) -> Any:" in stub.content[0].text
        docs = await s.call_tool("getToolDocs", {"server": "coded", "tool": "echo"})
        assert "text (str, required)" in docs.content[0].text
        script = "total = 0\nfor i in range(3):\n    total += int(coded.add(a = i, b = 10))\nprint(coded.echo(text = 'sum'))\nresult = total\n"
        run = await s.call_tool("executeToolCode", {"code": script})
        assert not run.isError, run.content[0].text
        assert run.content[0].text == "sum\nresult = 33\n"
        bad = await s.call_tool("executeToolCode", {"code": "import os\n"})
        assert bad.isError
        assert bad.content[0].text.startswith("compile error:")

    asyncio.run(with_session(base, coder, work))

