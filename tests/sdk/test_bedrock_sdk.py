"""boto3's `bedrock-runtime` client, unchanged but for `endpoint_url`,
against the gateway's Bedrock surface (`/bedrock`): Converse and
ConverseStream (event-stream frames the SDK decodes itself), tool use and
its results, usage, and errors as the SDK raises them; with OpenAI-,
Anthropic-, Gemini- and Bedrock-format upstreams behind it.

The client authenticates with a virtual key as a Bedrock API key
(`AWS_BEARER_TOKEN_BEDROCK`, which botocore sends as `Authorization:
Bearer`). botocore sends a bearer token over HTTPS only, as a deployment
behind a TLS-terminating load balancer has it: the suite puts a TLS
terminator (Python's ssl, a self-signed certificate the client trusts) in
front of the gateway. boto3 has one major version, so this suite runs on the
current venv only."""

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import tempfile
import threading

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from conftest import http_json, start_gateway, start_mock  # noqa: E402

MODELS = [
    "mock/mock-1",
    "ant/claude-mock",
    "gem/gemini-mock",
    "bed/us.anthropic.claude-haiku-4-5-20251001-v1:0",
]
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather by city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    }
                },
            }
        }
    ]
}
ASK = [{"role": "user", "content": [{"text": "weather in Paris?"}]}]


@contextlib.contextmanager
def tls_in_front_of(port: int):
    """A TLS terminator at a free port forwarding to 127.0.0.1:`port`:
    `(https URL, the certificate to trust)`."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        loop = asyncio.new_event_loop()

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def serve(client_r, client_w):
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        front = sock.getsockname()[1]
        server = loop.run_until_complete(asyncio.start_server(serve, sock=sock, ssl=ctx))
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield f"https://127.0.0.1:{front}", cert
        finally:

            async def shutdown():
                server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


@pytest.fixture(scope="module")
def gateway():
    with start_mock() as mock:
        # The same mock as a Bedrock upstream, reached with SigV4 (the
        # mock's secret for access key id X is X-secret).
        bedrock = (
            f'[providers.bed]\nkind = "bedrock"\nbase_url = "{mock.url}"\nregion = "us-west-2"\n'
            'keys = [{ access_key_id = "AKIDSDK", secret = "AKIDSDK-secret" }]\n'
        )
        with start_gateway(mock, bedrock) as gw:
            with tls_in_front_of(int(gw.url.rsplit(":", 1)[1])) as (https, cert):
                gw.https, gw.cert = https, cert
                yield gw


def runtime(gateway, monkeypatch, token):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"{gateway.https}/bedrock",
        verify=gateway.cert,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def client(gateway, monkeypatch):
    key = gateway.create_key("boto3")
    return runtime(gateway, monkeypatch, key["secret"])


@pytest.mark.parametrize("model", MODELS)
def test_converse_text_and_usage(client, model):
    r = client.converse(
        modelId=model,
        messages=ASK,
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 256},
    )
    text = r["output"]["message"]["content"][0]["text"]
    assert len(text.split(" ")) == 12
    assert r["stopReason"] == "end_turn"
    assert r["usage"]["outputTokens"] == 12
    assert r["usage"]["inputTokens"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_converse_stream_events(client, model):
    r = client.converse_stream(modelId=model, messages=ASK, inferenceConfig={"maxTokens": 256})
    events = list(r["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart"
    assert kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert len(text.split(" ")) == 12
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 12


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_and_its_result(client, model, stream):
    if stream:
        events = list(client.converse_stream(modelId=model, messages=ASK, toolConfig=WEATHER)["stream"])
        start = next(e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e)
        args = "".join(
            e["contentBlockDelta"]["delta"]["toolUse"]["input"]
            for e in events
            if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
        )
        assert events[-2]["messageStop"]["stopReason"] == "tool_use"
        call = {"toolUseId": start["toolUseId"], "name": start["name"], "input": __import__("json").loads(args)}
    else:
        r = client.converse(modelId=model, messages=ASK, toolConfig=WEATHER)
        assert r["stopReason"] == "tool_use"
        call = next(b["toolUse"] for b in r["output"]["message"]["content"] if "toolUse" in b)
    assert call["name"] == "get_weather"
    assert call["input"] == {"city": "example"}
    assert call["toolUseId"]
    messages = ASK + [
        {"role": "assistant", "content": [{"toolUse": call}]},
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": call["toolUseId"], "content": [{"text": "sunny, 21C"}]}}],
        },
    ]
    r = client.converse(modelId=model, messages=messages, toolConfig=WEATHER)
    assert r["stopReason"] == "end_turn"
    assert r["output"]["message"]["content"][0]["text"]


def test_errors_are_raised_as_the_sdk_names_them(gateway, client, monkeypatch):
    with pytest.raises(ClientError) as e:
        client.converse(modelId="nope/no-such-model", messages=ASK)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    revoked = gateway.create_key("revoked")
    status, _ = gateway.admin("DELETE", f"/api/keys/{revoked['id']}")
    assert status in (200, 204)
    with pytest.raises(ClientError) as e:
        runtime(gateway, monkeypatch, revoked["secret"]).converse(modelId="mock/mock-1", messages=ASK)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401


def test_a_budget_holds_on_the_bedrock_surface(gateway, monkeypatch):
    # 1 µ$ per output token; a cap of 50 tokens is a 50 µ$ worst case.
    status, v = gateway.admin("PUT", "/api/pricing/ant/claude-mock", {"input": 0, "output": 1000000})
    assert status == 200, v
    small = gateway.create_key("small", default_max_tokens=50, budgets=[{"limit_usd": "0.000030", "period": "1d"}])
    with pytest.raises(ClientError) as e:
        runtime(gateway, monkeypatch, small["secret"]).converse(modelId="ant/claude-mock", messages=ASK)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert e.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    roomy = gateway.create_key("roomy", default_max_tokens=50, budgets=[{"limit_usd": "0.000100", "period": "1d"}])
    r = runtime(gateway, monkeypatch, roomy["secret"]).converse(modelId="ant/claude-mock", messages=ASK)
    assert r["usage"]["outputTokens"] == 12
    # 12 output tokens at 1 µ$ each, charged to the key's budget.
    status, me = http_json("GET", f"{gateway.url}/api/self", token=roomy["secret"])
    assert status == 200, me
    assert me["budgets"][0]["spent_usd"] in ("0.000012", "0.00001200"), me


def test_a_signed_request_counts_as_one_without_a_key(gateway, monkeypatch):
    # SigV4 cannot be checked against a key stored hashed: a signed request
    # is served where keyless requests are (here: loopback, auth not enforced).
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    signed = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"{gateway.url}/bedrock",
        aws_access_key_id="AKIDANY",
        aws_secret_access_key="any-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    r = signed.converse(modelId="mock/mock-1", messages=ASK)
    assert r["stopReason"] == "end_turn"
