"""The official openai SDK's Responses client, unchanged but for base_url
(as Codex CLI sets it: .../openai/v1), against the gateway with OpenAI-,
Anthropic- and Gemini-format upstreams: text, streams, function tools,
previous_response_id, errors and a stream cut by the upstream."""

import json

import openai
import pytest
from openai import OpenAI

MODELS = ["mock/mock-1", "ant/claude-mock", "gem/gemini-mock"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK = "weather in Paris?"


@pytest.fixture
def client(gateway_url):
    return OpenAI(base_url=f"{gateway_url}/openai/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_text_and_usage(client, model):
    r = client.responses.create(model=model, instructions="be brief", input=ASK)
    assert r.status == "completed"
    assert r.id.startswith("resp_")
    assert len(r.output_text.split(" ")) == 12
    assert r.usage.output_tokens == 12
    assert r.usage.input_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accumulates_the_final_response(client, model):
    deltas = []
    with client.responses.stream(model=model, input=ASK) as s:
        for ev in s:
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
        final = s.get_final_response()
    assert final.output_text == "".join(deltas)
    assert len(final.output_text.split(" ")) == 12


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_call_then_previous_response_id(client, model, stream):
    if stream:
        with client.responses.stream(model=model, input=ASK, tools=[WEATHER]) as s:
            r = s.get_final_response()
    else:
        r = client.responses.create(model=model, input=ASK, tools=[WEATHER])
    (call,) = [o for o in r.output if o.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example"}
    r2 = client.responses.create(
        model=model,
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert r2.status == "completed"
    assert not [o for o in r2.output if o.type == "function_call"]
    assert r2.output_text
    # The node replayed the history: more input than the tool output alone.
    assert r2.usage.input_tokens > r.usage.input_tokens


def test_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope/none", input=ASK)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="mock/mock-1", input=ASK, previous_response_id="resp_gone")
    assert "resp_gone" in str(e.value)


def test_a_cut_stream_ends_failed_instead_of_hanging(client):
    events = list(client.responses.create(model="cut/claude-mock", input=ASK, stream=True))
    types = [e.type for e in events]
    assert "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"]
    assert "upstream" in events[-1].response.error.message
