"""The official OpenAI Python SDK, unchanged but for base_url, against the gateway."""

import json

import openai
import pytest
from openai import OpenAI


@pytest.fixture(scope="module")
def client(gateway_url):
    return OpenAI(base_url=f"{gateway_url}/v1", api_key="unused-without-virtual-keys", max_retries=0)


def test_chat(client):
    r = client.chat.completions.create(
        model="mock/mock-1", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.model == "mock-1"


def test_chat_raw_response_has_overhead_header(client):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert int(raw.headers["x-tollgate-overhead-us"]) >= 0
    assert raw.parse().choices[0].message.content


def test_streaming_with_usage(client):
    stream = client.chat.completions.create(
        model="mock/mock-1",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert len(text.split()) > 3
    assert usage is not None and usage.completion_tokens > 0


def test_tools(client):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                    "required": ["city", "unit"],
                },
            },
        }
    ]
    r = client.chat.completions.create(
        model="mock/mock-1", messages=[{"role": "user", "content": "weather in Oslo?"}], tools=tools
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "c"}
    # Round trip: the tool result goes back, and the model answers in text.
    r2 = client.chat.completions.create(
        model="mock/mock-1",
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "12C, rain"},
        ],
        tools=tools,
    )
    assert r2.choices[0].message.content
    assert r2.choices[0].finish_reason == "stop"


def test_streaming_tool_call(client):
    stream = client.chat.completions.create(
        model="mock/mock-1",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}],
        stream=True,
    )
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(args) == {"x": 1}


def test_embeddings(client):
    # The SDK asks for base64 by default and decodes it.
    r = client.embeddings.create(model="mock/mock-embed", input=["one", "two"], dimensions=16)
    assert len(r.data) == 2
    assert len(r.data[0].embedding) == 16
    norm = sum(x * x for x in r.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3
    f = client.embeddings.create(model="mock/mock-embed", input="one", dimensions=16, encoding_format="float")
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-6)


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert "mock/mock-1" in ids


def test_errors_raise_typed_exceptions(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nosuch/model", messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "x"}], stream="yes")
