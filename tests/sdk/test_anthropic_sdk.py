"""The official Anthropic SDK, unchanged but for base_url, against the gateway:
Messages JSON and streams, tools, thinking, token counting, models and errors,
with both an OpenAI-format upstream (mock/...) and an Anthropic one (ant/...)."""

import base64

import anthropic
import pytest

WEATHER = {
    "name": "get_weather",
    "description": "Weather by city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
MODELS = ["mock/mock-1", "ant/claude-mock"]
ASK = [{"role": "user", "content": "weather in Paris?"}]


@pytest.fixture
def client(gateway_url):
    return anthropic.Anthropic(base_url=f"{gateway_url}/anthropic", api_key="unused", max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_message_text_and_usage(client, model):
    m = client.messages.create(model=model, max_tokens=256, system="be brief", messages=ASK)
    assert m.role == "assistant"
    assert m.stop_reason == "end_turn"
    assert [b.type for b in m.content] == ["text"]
    assert len(m.content[0].text.split(" ")) == 12
    assert m.usage.output_tokens == 12
    assert m.usage.input_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_matches_final_message(client, model):
    with client.messages.stream(model=model, max_tokens=256, messages=ASK) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert len(text.split(" ")) == 12
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(client, model, stream):
    kwargs = dict(model=model, max_tokens=256, tools=[WEATHER], messages=ASK)
    if stream:
        with client.messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = client.messages.create(**kwargs)
    assert m.stop_reason == "tool_use"
    (call,) = [b for b in m.content if b.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"city": "example"}
    follow = ASK + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    m2 = client.messages.create(model=model, max_tokens=256, tools=[WEATHER], messages=follow)
    assert m2.stop_reason == "end_turn"
    assert m2.content[0].type == "text" and m2.content[0].text


def test_thinking_streams_with_its_signature(client):
    with client.messages.stream(
        model="ant/claude-mock",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=ASK,
    ) as s:
        m = s.get_final_message()
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].thinking.startswith("The user wrote ")
    assert base64.b64decode(m.content[0].signature).startswith(b"mock-signature-")


def test_count_tokens_and_models(client):
    short = client.messages.count_tokens(model="ant/claude-mock", messages=ASK).input_tokens
    long = client.messages.count_tokens(
        model="ant/claude-mock", messages=[{"role": "user", "content": "weather in Paris? " * 50}]
    ).input_tokens
    assert 0 < short < long
    ids = [m.id for m in client.models.list()]
    assert "mock/mock-1" in ids and "ant/claude-sonnet-4-5" in ids


def test_errors_are_typed(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="nope/none", max_tokens=16, messages=ASK)
    assert "nope/none" in str(e.value)


def test_a_cut_stream_raises_instead_of_hanging(client):
    with pytest.raises(anthropic.APIError) as e:
        with client.messages.stream(model="cut/claude-mock", max_tokens=256, messages=ASK) as s:
            for _ in s.text_stream:
                pass
    assert "upstream" in str(e.value)
