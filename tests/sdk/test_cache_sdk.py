"""The response cache (docs/cache.md) through the official SDKs, unchanged
but for base_url and the virtual key: repeats are exact hits, paraphrases
semantic hits, streams are replayed in each client's own events, TTL and
no-store are obeyed, partitions and allow-lists hold, and an answer cached
through one node of a cluster is a hit through another. The mock's request
count proves every hit was answered without the upstream.

The semantic cache needs the embedding model: scripts/test.sh exports
TOLLGATE_EMBED_MODEL (from scripts/cache/fetch-model.sh) before these run."""

import dataclasses
import os
import socket

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from conftest import eventually, free_port, start_gateway, start_mock

# The question, a paraphrase and another intent, with the similarity of each
# to the question as the gateway reported it on a semantic hit (probed with
# `x-tollgate-cache-threshold: 0.01` and no-store; the model is fixed, so so
# are these): paraphrase 0.8736, other intent 0.3313. The threshold sits
# between them with a wide margin either side. (Also measured, not used:
# "What is the capital of France?" vs "what's the capital city of France"
# 0.8406, vs "What is the population of France?" 0.6796.)
QUESTION = "How do I reset my password?"
PARAPHRASE = "I forgot my password, how can I reset it?"
OTHER_INTENT = "How do I delete my account?"
PARAPHRASE_SIMILARITY, OTHER_SIMILARITY = 0.8736, 0.3313
THRESHOLD = 0.6

# The cache's own probe: any nearest stored question is a hit, and nothing is stored.
PROBE = {"x-tollgate-cache-threshold": "0.01", "x-tollgate-cache-no-store": "1"}
CLUSTER_SECRET = "sdk-tests-cluster-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def embed_model():
    path = os.environ.get("TOLLGATE_EMBED_MODEL")
    if not path:
        pytest.fail(
            "TOLLGATE_EMBED_MODEL is not set: the semantic cache needs the embedding model. "
            'Run `export TOLLGATE_EMBED_MODEL="$(scripts/cache/fetch-model.sh)"` (scripts/test.sh does).'
        )
    if not os.path.isdir(path):
        pytest.fail(f"TOLLGATE_EMBED_MODEL={path} is not a directory: run scripts/cache/fetch-model.sh")
    return path


def cache_config(model_dir: str | None = None) -> str:
    """`[cache]` on, in team scope (teammates share answers, the partition
    test needs it; keys without a team keep their own); semantic with
    `model_dir`."""
    config = '[client]\nenforce_auth = true\n[cache]\nenabled = true\nttl = "1h"\nscope = "team"\n'
    if model_dir:
        config += f'[cache.semantic]\nenabled = true\nmodel = "{model_dir}"\nthreshold = {THRESHOLD}\n'
    return config


@pytest.fixture(scope="module")
def mock():
    with start_mock() as m:
        yield m


@pytest.fixture(scope="module")
def gateway(mock, embed_model):
    with start_gateway(mock, cache_config(embed_model)) as gw:
        yield gw


@pytest.fixture
def secret(gateway, request):
    """A fresh key per test: its own partition, so tests never see each
    other's answers (semantic lookups included)."""
    return gateway.create_key(request.node.name)["secret"]


# --- One client per surface, each reading the cache's headers its own way.


@dataclasses.dataclass
class Answer:
    text: str
    finish: str
    cache: str | None
    kind: str | None = None
    similarity: float | None = None

    @classmethod
    def of(cls, text, finish, headers) -> "Answer":
        h = {k.lower(): v for k, v in headers.items()}
        similarity = h.get("x-tollgate-cache-similarity")
        return cls(
            text,
            str(finish),
            h.get("x-tollgate-cache"),
            h.get("x-tollgate-cache-type"),
            None if similarity is None else float(similarity),
        )


class OpenAIChat:
    model = "mock/mock-1"

    def __init__(self, url, secret):
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)

    def ask(self, question, headers=None) -> Answer:
        raw = self.client.chat.completions.with_raw_response.create(
            model=self.model, messages=[{"role": "user", "content": question}], extra_headers=headers
        )
        choice = raw.parse().choices[0]
        return Answer.of(choice.message.content, choice.finish_reason, raw.headers)

    def ask_stream(self, question, headers=None) -> Answer:
        raw = self.client.chat.completions.with_raw_response.create(
            model=self.model,
            messages=[{"role": "user", "content": question}],
            stream=True,
            extra_headers=headers,
        )
        text, finish = "", None
        for chunk in raw.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        return Answer.of(text, finish, raw.headers)


class OpenAIResponses:
    model = "mock/mock-1"

    def __init__(self, url, secret):
        self.client = openai.OpenAI(base_url=f"{url}/openai/v1", api_key=secret, max_retries=0)

    def ask(self, question, headers=None) -> Answer:
        raw = self.client.responses.with_raw_response.create(model=self.model, input=question, extra_headers=headers)
        r = raw.parse()
        return Answer.of(r.output_text, r.status, raw.headers)

    def ask_stream(self, question, headers=None) -> Answer:
        raw = self.client.responses.with_raw_response.create(
            model=self.model, input=question, stream=True, extra_headers=headers
        )
        deltas, final = [], None
        for ev in raw.parse():
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
            elif ev.type == "response.completed":
                final = ev.response
        assert final is not None, "the stream ended without response.completed"
        assert final.output_text == "".join(deltas)
        return Answer.of(final.output_text, final.status, raw.headers)


class AnthropicMessages:
    model = "ant/claude-mock"

    def __init__(self, url, secret):
        self.client = anthropic.Anthropic(base_url=f"{url}/anthropic", api_key=secret, max_retries=0)

    def ask(self, question, headers=None) -> Answer:
        raw = self.client.messages.with_raw_response.create(
            model=self.model,
            max_tokens=256,
            messages=[{"role": "user", "content": question}],
            extra_headers=headers,
        )
        m = raw.parse()
        return Answer.of(m.content[0].text, m.stop_reason, raw.headers)

    def ask_stream(self, question, headers=None) -> Answer:
        with self.client.messages.stream(
            model=self.model,
            max_tokens=256,
            messages=[{"role": "user", "content": question}],
            extra_headers=headers,
        ) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert final.content[0].text == text
        return Answer.of(text, final.stop_reason, s.response.headers)


class GenaiContent:
    model = "gem/gemini-mock"

    def __init__(self, url, secret):
        self.client = genai.Client(api_key=secret, http_options=types.HttpOptions(base_url=f"{url}/genai"))

    def config(self, headers):
        return types.GenerateContentConfig(http_options=types.HttpOptions(headers=headers) if headers else None)

    @staticmethod
    def headers(response) -> dict:
        # Both majors in use (1.x, 3.x) carry the HTTP response's headers.
        assert response.sdk_http_response is not None, "this google-genai returns no HTTP headers"
        return response.sdk_http_response.headers

    def ask(self, question, headers=None) -> Answer:
        r = self.client.models.generate_content(model=self.model, contents=question, config=self.config(headers))
        return Answer.of(r.text, r.candidates[0].finish_reason, self.headers(r))

    def ask_stream(self, question, headers=None) -> Answer:
        chunks = list(
            self.client.models.generate_content_stream(model=self.model, contents=question, config=self.config(headers))
        )
        text = "".join(c.text or "" for c in chunks)
        return Answer.of(text, chunks[-1].candidates[0].finish_reason, self.headers(chunks[0]))


SURFACES = [OpenAIChat, OpenAIResponses, AnthropicMessages, GenaiContent]


def each_surface():
    return pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.__name__)


def ask_stream_until_stored(gateway, client, question) -> Answer:
    """A streamed miss: its answer is stored once the stream has ended,
    a moment after the client read the last event, so this polls the store
    counter before anything asks again."""
    stores = gateway.cache()["stores"]
    answer = client.ask_stream(question)
    assert answer.cache == "miss"
    eventually("the streamed answer is stored", lambda: gateway.cache()["stores"] == stores + 1)
    return answer


# --- Exact hits


@each_surface()
def test_a_repeat_is_an_exact_hit_never_reaching_the_upstream(gateway, mock, secret, surface):
    client = surface(gateway.url, secret)
    before = mock.requests()
    first = client.ask("what is a gateway?")
    assert first.cache == "miss"
    assert first.text
    second = client.ask("what is a gateway?")
    assert (second.cache, second.kind, second.similarity) == ("hit", "exact", None)
    assert (second.text, second.finish) == (first.text, first.finish)
    assert mock.requests() == before + 1


@each_surface()
def test_a_streamed_answer_is_replayed_as_a_stream_and_as_a_whole(gateway, mock, secret, surface):
    client = surface(gateway.url, secret)
    before = mock.requests()
    streamed = ask_stream_until_stored(gateway, client, "tell me about caches")
    assert len(streamed.text.split(" ")) == 12
    replayed = client.ask_stream("tell me about caches")
    assert (replayed.cache, replayed.kind) == ("hit", "exact")
    assert (replayed.text, replayed.finish) == (streamed.text, streamed.finish)
    whole = client.ask("tell me about caches")
    assert (whole.cache, whole.kind) == ("hit", "exact")
    assert (whole.text, whole.finish) == (streamed.text, streamed.finish)
    assert mock.requests() == before + 1


# --- Semantic hits


@each_surface()
def test_a_paraphrase_is_a_semantic_hit_and_another_intent_a_miss(gateway, mock, secret, surface):
    client = surface(gateway.url, secret)
    before = mock.requests()
    first = client.ask(QUESTION)
    assert first.cache == "miss"

    para = client.ask(PARAPHRASE)
    assert (para.cache, para.kind) == ("hit", "semantic")
    assert para.similarity == pytest.approx(PARAPHRASE_SIMILARITY, abs=5e-4)
    assert para.text == first.text, "a semantic hit is served the first question's answer"
    assert mock.requests() == before + 1

    # The other intent's nearest stored question is the first one, below the threshold...
    probe = client.ask(OTHER_INTENT, PROBE)
    assert (probe.cache, probe.kind) == ("hit", "semantic")
    assert probe.similarity == pytest.approx(OTHER_SIMILARITY, abs=5e-4)
    assert probe.similarity < THRESHOLD
    # ...so without the probe's threshold it goes upstream for its own answer.
    other = client.ask(OTHER_INTENT)
    assert other.cache == "miss"
    assert other.text != first.text
    assert mock.requests() == before + 2


@each_surface()
def test_a_paraphrase_is_replayed_as_a_stream(gateway, mock, secret, surface):
    client = surface(gateway.url, secret)
    first = ask_stream_until_stored(gateway, client, QUESTION)
    before = mock.requests()
    para = client.ask_stream(PARAPHRASE)
    assert (para.cache, para.kind) == ("hit", "semantic")
    assert (para.text, para.finish) == (first.text, first.finish)
    assert mock.requests() == before


def test_exact_only_asked_by_the_request_misses_a_paraphrase(gateway, mock, secret):
    client = OpenAIChat(gateway.url, secret)
    client.ask(QUESTION)
    before = mock.requests()
    assert client.ask(PARAPHRASE, {"x-tollgate-cache": "exact"}).cache == "miss"
    assert mock.requests() == before + 1


# --- What is stored, and for how long


def test_an_answer_stored_for_one_second_expires(gateway, mock, secret):
    client = OpenAIChat(gateway.url, secret)
    stats, before = gateway.cache(), mock.requests()
    assert client.ask("short-lived", {"x-tollgate-cache-ttl": "1s"}).cache == "miss"
    assert gateway.cache()["stores"] == stats["stores"] + 1

    # Polled: hits until the second has passed, then the expired row is a miss.
    eventually("the answer expires", lambda: client.ask("short-lived").cache == "miss", timeout=30, interval=0.2)
    assert gateway.cache()["expirations"] >= stats["expirations"] + 1
    assert mock.requests() == before + 2
    # The new answer was stored for the configured hour.
    assert client.ask("short-lived").cache == "hit"
    assert mock.requests() == before + 2


def test_no_store_leaves_the_next_request_a_miss(gateway, mock, secret):
    client = OpenAIChat(gateway.url, secret)
    stats, before = gateway.cache(), mock.requests()
    assert client.ask("not for keeping", {"x-tollgate-cache-no-store": "1"}).cache == "miss"
    assert gateway.cache()["stores"] == stats["stores"]
    assert client.ask("not for keeping").cache == "miss"
    assert gateway.cache()["stores"] == stats["stores"] + 1
    assert client.ask("not for keeping").cache == "hit"
    assert mock.requests() == before + 2


def test_cache_off_bypasses(gateway, mock, secret):
    client = OpenAIChat(gateway.url, secret)
    client.ask("bypass me")
    before = mock.requests()
    assert client.ask("bypass me", {"x-tollgate-cache": "off"}).cache == "bypass"
    assert mock.requests() == before + 1


# --- Partitions


def test_a_hit_is_refused_outside_its_partition(gateway, mock):
    status, team = gateway.admin("POST", "/api/teams", {"name": "cache-team"})
    assert status == 201, team
    owner = gateway.create_key("owner", team_id=team["id"])["secret"]
    teammate = gateway.create_key("teammate", team_id=team["id"])["secret"]
    stranger = gateway.create_key("stranger")["secret"]
    # In the team's partition, but not allowed the model.
    barred = gateway.create_key("barred", team_id=team["id"], models=["mock/other-*"])["secret"]
    before = mock.requests()

    first = OpenAIChat(gateway.url, owner).ask("team question")
    assert first.cache == "miss"
    # In team scope a teammate is served the owner's answer...
    shared = OpenAIChat(gateway.url, teammate).ask("team question")
    assert (shared.cache, shared.text) == ("hit", first.text)
    # ...a key of another owner is not.
    assert OpenAIChat(gateway.url, stranger).ask("team question").cache == "miss"
    assert mock.requests() == before + 2

    # The answer is in the barred key's partition, but its allow-list is
    # checked before the cache is: 403, and no lookup.
    stats = gateway.cache()
    with pytest.raises(openai.PermissionDeniedError) as e:
        OpenAIChat(gateway.url, barred).ask("team question")
    assert e.value.body["code"] == "model_not_allowed"
    assert "x-tollgate-cache" not in e.value.response.headers
    after = gateway.cache()
    assert (after["hits"], after["misses"]) == (stats["hits"], stats["misses"])
    assert mock.requests() == before + 2


# --- Across a cluster


@pytest.fixture(scope="module")
def cluster(mock):
    """Two nodes joined by QUIC, the second seeded with the first, both in
    front of the same mock; yields them once each sees the other alive."""

    def env(quic, seeds=""):
        return {
            "TOLLGATE_CLUSTER_SECRET": CLUSTER_SECRET,
            "TOLLGATE_CLUSTER__LISTEN": quic,
            "TOLLGATE_CLUSTER__SYNC_INTERVAL": '"1s"',
            "TOLLGATE_SEEDS": seeds,
        }

    quic1, quic2 = (f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}" for _ in range(2))
    with start_gateway(mock, cache_config(), env(quic1)) as n1, start_gateway(
        mock, cache_config(), env(quic2, seeds=quic1)
    ) as n2:
        for n in (n1, n2):
            eventually(f"{n.url} sees its peer alive", lambda: alive_peers(n) == 1)
        yield n1, n2


def alive_peers(node) -> int:
    status, v = node.admin("GET", "/api/cluster")
    assert status == 200, v
    return sum(1 for m in v["members"] if m["state"] == "alive")


def test_an_answer_cached_through_one_node_is_a_hit_through_another(cluster, mock):
    n1, n2 = cluster
    key = n1.create_key("cluster-owner")
    eventually("the key reaches node 2", lambda: n2.admin("GET", f"/api/keys/{key['id']}")[0] == 200)
    imported = n2.cache()["replication"]["imported"]
    before = mock.requests()

    first = AnthropicMessages(n1.url, key["secret"]).ask("asked through node 1")
    assert first.cache == "miss"
    eventually(
        "node 2 imports node 1's answer",
        lambda: n2.cache()["replication"]["imported"] >= imported + 1,
    )
    second = AnthropicMessages(n2.url, key["secret"]).ask("asked through node 1")
    assert (second.cache, second.kind) == ("hit", "exact")
    assert (second.text, second.finish) == (first.text, first.finish)
    assert mock.requests() == before + 1
