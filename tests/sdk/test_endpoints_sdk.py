"""The OpenAI endpoints beyond chat (images, speech, transcriptions,
moderations, rerank) through the official OpenAI SDK, and rerank through
the official Cohere SDK (v1 `Client` at `/v1/rerank`, `ClientV2` at
`/v2/rerank`), against the gateway and the mock, with what each costs."""

import io
import struct

import pytest
from openai import OpenAI

from conftest import eventually, start_gateway, start_mock

PRICES = """
[pricing."mock-image"]
input = 0
output = 0
per = { image = 40000 }
[pricing."mock-tts"]
input = 0
output = 0
per = { character = 15 }
[pricing."mock-whisper"]
input = 0
output = 0
per = { audio_second = 100 }
"""


@pytest.fixture(scope="module")
def gateway():
    with start_mock() as mock, start_gateway(
        mock,
        PRICES
        + f'[providers.coh]\nkind = "cohere"\napi_key = "cohere-key"\nbase_url = "{mock.url}/v2"\n',
    ) as gw:
        yield gw


@pytest.fixture(scope="module")
def client(gateway):
    return OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def logged_cost(gateway, endpoint: str) -> int:
    def newest():
        status, page = gateway.admin("GET", f"/api/logs?endpoint={endpoint}&limit=1")
        assert status == 200, page
        return page["data"]

    return eventually(f"a {endpoint} log", newest)[0]["cost_micros"]


def wav(seconds: int) -> bytes:
    data = 32_000 * seconds
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16_000, 32_000, 2, 16
    ) + b"data" + struct.pack("<I", data)
    return header + bytes(data)


def test_images(client, gateway):
    r = client.images.generate(model="mock/mock-image", prompt="a lighthouse at dusk", n=2)
    assert len(r.data) == 2 and r.data[0].b64_json
    assert logged_cost(gateway, "images") == 80_000


def test_speech(client, gateway):
    audio = client.audio.speech.create(model="mock/mock-tts", voice="alloy", input="Hello there")
    assert audio.content.startswith(b"ID3 mock speech: Hello there")
    assert logged_cost(gateway, "speech") == 11 * 15


def test_transcription(client, gateway):
    t = client.audio.transcriptions.create(
        model="mock/mock-whisper", file=("hello.wav", io.BytesIO(wav(2)), "audio/wav")
    )
    assert t.text == f"mock transcript of {len(wav(2))} bytes"
    assert logged_cost(gateway, "transcriptions") == 200


def test_transcription_as_text(client):
    t = client.audio.transcriptions.create(
        model="mock/mock-whisper",
        file=("hello.wav", io.BytesIO(wav(1)), "audio/wav"),
        response_format="text",
    )
    assert "mock transcript" in t


def test_moderations(client):
    r = client.moderations.create(model="mock/mock-moderation", input=["plan the attack", "a picnic"])
    assert [x.flagged for x in r.results] == [True, False]


def test_cohere_v1_client_reranks(gateway):
    cohere = pytest.importorskip("cohere")
    co = cohere.Client(api_key="unused", base_url=gateway.url)
    r = co.rerank(
        model="coh/rerank-v3.5",
        query="capital of France",
        documents=["Berlin is in Germany", "Paris is the capital of France", "France"],
        top_n=2,
    )
    assert [x.index for x in r.results] == [1, 2]
    assert r.results[0].relevance_score >= r.results[1].relevance_score
    # $2 per thousand searches, at the catalog's list price.
    assert logged_cost(gateway, "rerank") == 2_000


def test_cohere_v2_client_reranks(gateway):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key="unused", base_url=gateway.url)
    r = co.rerank(model="coh/rerank-v3.5", query="blue sky", documents=["red", "a blue sky"])
    assert r.results[0].index == 1


def test_openai_compatible_rerank_through_cohere_sdk(gateway):
    # The same SDK against an OpenAI-compatible reranker (Jina's and vLLM's
    # answer shape, usage in tokens).
    cohere = pytest.importorskip("cohere")
    co = cohere.Client(api_key="unused", base_url=gateway.url)
    r = co.rerank(model="mock/mock-rerank", query="apples", documents=["pears", "apples"])
    assert r.results[0].index == 1
