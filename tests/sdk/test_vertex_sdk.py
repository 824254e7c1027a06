"""The SDKs' Vertex AI clients, unchanged but for their base URL, against
the gateway's Vertex-shaped routes (`/vertex/...`): `anthropic`'s
AnthropicVertex (rawPredict, streamRawPredict) and google-genai in Vertex
mode (generateContent and streams), with the virtual key as the access
token; with OpenAI-, Anthropic-, Gemini- and Vertex-format upstreams behind
them."""

import pytest
from anthropic import AnthropicVertex
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from conftest import start_gateway, start_mock

ASK = "weather in Paris?"


@pytest.fixture(scope="module")
def gateway():
    with start_mock() as mock:
        vertex = (
            f'[providers.vx]\nkind = "vertex"\nbase_url = "{mock.url}"\n'
            'project = "proj-1"\napi_key = "ya29.sdk-token"\n'
        )
        with start_gateway(mock, vertex) as gw:
            yield gw


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key("vertex-sdk")["secret"]


@pytest.mark.parametrize("model", ["ant/claude-mock", "vx/claude-sonnet-4-5@20250929", "mock/mock-1"])
def test_anthropic_vertex_messages_and_stream(gateway, key, model):
    client = AnthropicVertex(
        project_id="proj-1", region="us-east5", base_url=f"{gateway.url}/vertex/v1", access_token=key
    )
    r = client.messages.create(model=model, max_tokens=256, messages=[{"role": "user", "content": ASK}])
    assert len(r.content[0].text.split(" ")) == 12
    assert r.stop_reason == "end_turn"
    assert r.usage.output_tokens == 12
    with client.messages.stream(model=model, max_tokens=256, messages=[{"role": "user", "content": ASK}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert len(text.split(" ")) == 12
    assert final.usage.output_tokens == 12


@pytest.mark.parametrize("model", ["gem/gemini-mock", "vx/gemini-2.5-flash", "mock/mock-1"])
def test_genai_in_vertex_mode(gateway, key, model):
    client = genai.Client(
        vertexai=True,
        project="proj-1",
        location="us-central1",
        credentials=Credentials(token=key),
        http_options=types.HttpOptions(base_url=f"{gateway.url}/vertex"),
    )
    r = client.models.generate_content(model=model, contents=ASK)
    assert len(r.text.split(" ")) == 12
    assert r.usage_metadata.candidates_token_count == 12
    chunks = list(client.models.generate_content_stream(model=model, contents=ASK))
    assert len("".join(c.text or "" for c in chunks).split(" ")) == 12


def test_a_bad_key_is_refused_as_vertex_would(gateway):
    client = AnthropicVertex(
        project_id="proj-1", region="us-east5", base_url=f"{gateway.url}/vertex/v1", access_token="sk-tg-not-a-key"
    )
    with pytest.raises(Exception) as e:
        client.messages.create(model="ant/claude-mock", max_tokens=16, messages=[{"role": "user", "content": ASK}])
    assert getattr(e.value, "status_code", None) == 401
