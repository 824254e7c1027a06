"""The official google-genai SDK, unchanged but for base_url, against the
gateway's Gemini surface: generateContent JSON and streams, function calls,
thoughts and errors, with OpenAI-, Anthropic- and Gemini-format upstreams.

The client keeps the SDK's own API version (`v1` from google-genai 3,
`v1beta` before), as applications do; every version the SDK can be set to
is then exercised explicitly."""

import pytest
from google import genai
from google.genai import errors, types

MODELS = ["mock/mock-1", "ant/claude-mock", "gem/gemini-mock"]
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather by city",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)
ASK = "weather in Paris?"


@pytest.fixture
def client(gateway_url):
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=f"{gateway_url}/genai"))


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_every_api_version_is_served(gateway_url, version):
    client = genai.Client(
        api_key="unused",
        http_options=types.HttpOptions(base_url=f"{gateway_url}/genai", api_version=version),
    )
    r = client.models.generate_content(model="mock/mock-1", contents=ASK)
    assert len(r.text.split(" ")) == 12
    chunks = list(client.models.generate_content_stream(model="gem/gemini-mock", contents=ASK))
    assert len("".join(c.text or "" for c in chunks).split(" ")) == 12
    assert client.models.count_tokens(model="gem/gemini-mock", contents=ASK).total_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_generate_text_and_usage(client, model):
    r = client.models.generate_content(
        model=model,
        contents=ASK,
        config=types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=256),
    )
    assert len(r.text.split(" ")) == 12
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.candidates_token_count == 12
    assert r.usage_metadata.prompt_token_count > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_text(client, model):
    chunks = list(client.models.generate_content_stream(model=model, contents=ASK))
    text = "".join(c.text or "" for c in chunks)
    assert len(text.split(" ")) == 12
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 12


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(client, model, stream):
    config = types.GenerateContentConfig(tools=[WEATHER])
    if stream:
        chunks = list(client.models.generate_content_stream(model=model, contents=ASK, config=config))
        calls = [fc for c in chunks for fc in (c.function_calls or [])]
        content = types.Content(role="model", parts=[types.Part(function_call=fc) for fc in calls])
    else:
        r = client.models.generate_content(model=model, contents=ASK, config=config)
        calls = r.function_calls
        content = r.candidates[0].content
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "example"})]
    follow = [
        types.Content(role="user", parts=[types.Part(text=ASK)]),
        content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"result": "sunny"})],
        ),
    ]
    r2 = client.models.generate_content(model=model, contents=follow, config=config)
    assert not r2.function_calls
    assert r2.text


@pytest.mark.parametrize("model", ["ant/claude-mock", "gem/gemini-mock"])
def test_thoughts_are_parts_marked_thought(client, model):
    r = client.models.generate_content(
        model=model,
        contents=ASK,
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=1024, include_thoughts=True)
        ),
    )
    parts = r.candidates[0].content.parts
    assert parts[0].thought and parts[0].text.startswith("The user wrote ")
    assert len(r.text.split(" ")) == 12


def test_errors_are_typed(client):
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model="nope/none", contents=ASK)
    assert e.value.code == 404
    assert "nope/none" in str(e.value)


def test_a_cut_stream_raises_instead_of_hanging(client):
    with pytest.raises(errors.APIError) as e:
        for _ in client.models.generate_content_stream(model="cut/claude-mock", contents=ASK):
            pass
    assert e.value.code == 502


def test_count_tokens(client):
    short = client.models.count_tokens(model="gem/gemini-mock", contents=ASK).total_tokens
    long = client.models.count_tokens(model="gem/gemini-mock", contents=ASK * 50).total_tokens
    assert 0 < short < long
