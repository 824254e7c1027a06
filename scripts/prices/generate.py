#!/usr/bin/env python3
"""Build src/governance/prices.json, the gateway's built-in price catalog,
from LiteLLM's public model cost map.

    python3 scripts/prices/generate.py [--litellm-version X.Y.Z] [--from-json PATH]

By default this downloads the pinned litellm wheel from PyPI with pip (no
dependencies, no install) and reads the cost map packaged inside it. With
--from-json it reads a local copy of that map instead.

Prices are integer micro-dollars per million tokens, i.e. USD per token
x 10^12, rounded up (computed exactly from the decimal text in the JSON), so
the gateway never undercharges. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

DEFAULT_LITELLM_VERSION = "1.110.2"
WHEEL_MEMBER = "litellm/model_prices_and_context_window_backup.json"

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "src" / "governance" / "prices.json"
GENERATED_BY = "scripts/prices/generate.py"

# LiteLLM `litellm_provider` -> our provider kind. Anything else is dropped
# (notably azure_ai, bedrock's region-pinned entries, vertex_ai's other families).
PROVIDERS = {
    "cohere_chat": "cohere",
    "cohere": "cohere",
    "vertex_ai-language-models": "vertex",
    "vertex_ai-anthropic_models": "vertex",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "groq": "groq",
    "mistral": "mistral",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "cerebras": "cerebras",
    "deepseek": "deepseek",
    "xai": "xai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
}

MODES = {"chat", "completion", "responses", "embedding",
         "rerank", "image_generation", "audio_speech", "audio_transcription", "moderation"}

# Rates per unit billed besides tokens (`per` in the output), in micro-dollars
# per unit, ceil(USD x 1e6): ours <- LiteLLM's, for the modes that bill them.
UNIT_FIELDS = {
    "rerank": (("search_unit", "input_cost_per_query"),),
    "image_generation": (("image", "output_cost_per_image"), ("image", "input_cost_per_image")),
    "audio_transcription": (("audio_second", "input_cost_per_second"),),
    "audio_speech": (("character", "input_cost_per_character"),),
}

# An image model's size-and-quality entries: `[quality/]W-x-H/model`.
IMAGE_KEY_RE = re.compile(r"^(?:(?P<quality>[a-z]+)/)?(?P<w>\d+)-x-(?P<h>\d+)/(?P<model>[^/].*)$")

# Base price fields: ours <- LiteLLM's.
BASE_FIELDS = (
    ("input", "input_cost_per_token"),
    ("output", "output_cost_per_token"),
    ("cached_input", "cache_read_input_token_cost"),
    ("cache_write", "cache_creation_input_token_cost"),
    ("cache_write_1h", "cache_creation_input_token_cost_above_1hr"),
)

# Long-context tiers: `<litellm field>_above_<N>k_tokens`, exactly (service
# tier variants such as `..._above_200k_tokens_priority` or `_batches` are
# not list prices for a standard request and are ignored).
TIER_RE = re.compile(
    r"^(?P<field>input_cost_per_token|output_cost_per_token"
    r"|cache_read_input_token_cost|cache_creation_input_token_cost"
    r"|cache_creation_input_token_cost_above_1hr)"
    r"_above_(?P<k>\d+)k_tokens$"
)
TIER_FIELDS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
}
TIER_KEYS = ("input", "output", "cached_input", "cache_write", "cache_write_1h")

# Per-request fees, in micro-dollars per request, by search context size.
# LiteLLM's `search_context_cost_per_query` is, for Perplexity, a fee on
# every request (Sonar searches each time); for the other providers it is the
# price of a web-search tool call, billed only when the tool runs, and is not
# carried (the gateway refuses web search it cannot price for keys with
# budgets). `input_cost_per_request` is a flat fee on every request.
SEARCH_FEE_KINDS = {"perplexity"}
SEARCH_SIZES = ("low", "medium", "high")

# Counted, never silently: how many values were not a whole number of
# micro-dollars per million tokens and were rounded up.
ROUNDED_UP = 0


def micros_per_million(value) -> int:
    """USD per token (Decimal or int from the JSON) -> ceil(value * 1e12)."""
    global ROUNDED_UP
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"not a number: {value!r}")
    d = Decimal(value).scaleb(12)
    whole = d.to_integral_value(rounding=ROUND_CEILING)
    if whole != d:
        ROUNDED_UP += 1
    if whole < 0:
        raise ValueError(f"negative price: {value!r}")
    return int(whole)


def micros_per_request(value) -> int:
    """USD per request -> ceil(value * 1e6) micro-dollars."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"not a number: {value!r}")
    whole = Decimal(value).scaleb(6).to_integral_value(rounding=ROUND_CEILING)
    if whole < 0:
        raise ValueError(f"negative fee: {value!r}")
    return int(whole)


def unit_rates(entry: dict, mode, key: str) -> dict:
    """The `per` rates of an entry: its listed per-unit prices, and for an
    image size without one, its per-pixel price times the size's pixels."""
    per = {}
    for ours, theirs in UNIT_FIELDS.get(mode, ()):
        v = entry.get(theirs)
        if v is not None and ours not in per and micros_per_request(v) > 0:
            per[ours] = micros_per_request(v)
    if mode == "image_generation" and "image" not in per:
        m = IMAGE_KEY_RE.match(key.split("/", 1)[1] if key.startswith("azure/") else key)
        pixel = entry.get("input_cost_per_pixel") or entry.get("output_cost_per_pixel")
        if m and pixel:
            pixels = int(m.group("w")) * int(m.group("h"))
            n = micros_per_request(Decimal(pixel) * pixels)
            if n > 0:
                per["image"] = n
    return per


def request_fee(entry: dict, kind: str):
    """The per-request fee by search context size, or None."""
    fee = None
    flat = entry.get("input_cost_per_request")
    if flat is not None:
        n = micros_per_request(flat)
        fee = {size: n for size in SEARCH_SIZES}
    search = entry.get("search_context_cost_per_query")
    if kind in SEARCH_FEE_KINDS and isinstance(search, dict):
        by_size = {}
        for size in SEARCH_SIZES:
            v = search.get(f"search_context_size_{size}")
            if v is None:
                sys.exit(f"{entry!r}: search_context_cost_per_query lacks {size}")
            by_size[size] = micros_per_request(v)
        fee = by_size if fee is None else {k: fee[k] + by_size[k] for k in SEARCH_SIZES}
    if fee is not None and not any(fee.values()):
        return None
    return fee


def dearer_fee(a, b):
    if a is None or b is None:
        return a or b
    return {k: max(a[k], b[k]) for k in SEARCH_SIZES}


def opt_price(entry: dict, field: str):
    v = entry.get(field)
    return None if v is None else micros_per_million(v)


def fetch_wheel_json(version: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="litellm-wheel-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--only-binary=:all:", "-d", tmp, f"litellm=={version}",
        ]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        wheels = sorted(glob.glob(os.path.join(tmp, "litellm-*.whl")))
        if len(wheels) != 1:
            sys.exit(f"expected one litellm wheel in {tmp}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                return z.read(WHEEL_MEMBER)
            except KeyError:
                sys.exit(f"{os.path.basename(wheels[0])} has no {WHEEL_MEMBER}")


def model_id(key: str, provider: str) -> str:
    for prefix in (provider + "/", "vertex_ai/"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def tiers(entry: dict) -> list[dict]:
    by_threshold: dict[int, dict] = {}
    for field, value in entry.items():
        m = TIER_RE.match(field)
        if not m or value is None:
            continue
        tokens = int(m.group("k")) * 1000
        t = by_threshold.setdefault(tokens, {})
        t[TIER_FIELDS[m.group("field")]] = micros_per_million(value)
    out = []
    for tokens in sorted(by_threshold):
        t = by_threshold[tokens]
        out.append({"tokens": tokens, **{k: t.get(k) for k in TIER_KEYS}})
    return out


def max_output(entry: dict):
    for field in ("max_output_tokens", "max_tokens"):
        v = entry.get(field)
        if v is None:
            continue
        if isinstance(v, Decimal):
            if v != v.to_integral_value():
                continue
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def effective(m: dict) -> list[int]:
    """A model's base prices with absent ones resolved the way a biller would
    fall back: cached input and cache writes at the input price, 1h cache
    writes at the (resolved) cache write price."""
    cached = m["input"] if m["cached_input"] is None else m["cached_input"]
    write = m["input"] if m["cache_write"] is None else m["cache_write"]
    write_1h = write if m["cache_write_1h"] is None else m["cache_write_1h"]
    return [m["input"], m["output"], cached, write, write_1h]


def tier_vector(m: dict) -> list[int]:
    vec = []
    for t in m["above"]:
        vec.append(t["tokens"])
        vec.extend(-1 if t[k] is None else t[k] for k in TIER_KEYS)
    return vec


def dearer(a: dict, b: dict) -> dict:
    """Of two entries for one output id, the one to keep so as never to
    under-price: the one at least as dear on every base price; failing
    that, the dearer on input + output, then price by price, then on the
    long-context tiers. Ties keep `a`."""
    ea, eb = effective(a), effective(b)
    if all(x >= y for x, y in zip(ea, eb)) and (ea != eb or tier_vector(a) >= tier_vector(b)):
        return a
    if all(y >= x for x, y in zip(ea, eb)) and ea != eb:
        return b
    ka = [ea[0] + ea[1], *ea, *tier_vector(a)]
    kb = [eb[0] + eb[1], *eb, *tier_vector(b)]
    return b if kb > ka else a


def build(data: dict):
    skipped = collections.Counter()
    models: dict[str, dict] = {}
    origin: dict[str, str] = {}
    collisions = []
    for key in sorted(data):
        entry = data[key]
        if key == "sample_spec" or not isinstance(entry, dict):
            skipped["sample_spec / not an object"] += 1
            continue
        provider = entry.get("litellm_provider")
        kind = PROVIDERS.get(provider)
        if kind is None:
            skipped["provider not ours"] += 1
            continue
        if kind == "bedrock" and "/" in model_id(key, provider):
            # `bedrock/us-east-1/…`, `bedrock/invoke/…`: a region or API
            # pinned in the key; the model's own entry is the list price.
            skipped["bedrock entry pinned to a region or API"] += 1
            continue
        mode = entry.get("mode")
        if mode is not None and mode not in MODES:
            skipped[f"mode {mode}"] += 1
            continue
        per = unit_rates(entry, mode, key)
        if entry.get("input_cost_per_token") is None and not per and mode != "moderation":
            skipped["no input_cost_per_token"] += 1
            continue
        m = {
            "id": f"{kind}/{model_id(key, provider)}",
            "mode": mode,
            "input": opt_price(entry, "input_cost_per_token") or 0,
            "output": opt_price(entry, "output_cost_per_token") or 0,
            "cached_input": opt_price(entry, "cache_read_input_token_cost"),
            "cache_write": opt_price(entry, "cache_creation_input_token_cost"),
            "cache_write_1h": opt_price(entry, "cache_creation_input_token_cost_above_1hr"),
            "max_output": max_output(entry),
            "above": tiers(entry),
        }
        fee = request_fee(entry, kind)
        if fee is not None:
            m["request_fee"] = fee
        if per:
            m["per"] = per
        if mode == "moderation":
            # Listed at 0 because the provider charges nothing: priced, free.
            m["free"] = True
        mid = m["id"]
        if mid in models:
            prev = models[mid]
            keep = dearer(prev, m)
            same = all(prev.get(k) == m.get(k) for k in (*TIER_KEYS, "above", "request_fee", "per"))
            collisions.append((mid, origin[mid], key, origin[mid] if keep is prev else key, same))
            # Whichever entry's token prices are kept, the dearer fee is too.
            fee = dearer_fee(prev.get("request_fee"), m.get("request_fee"))
            # Whichever entry's token prices are kept, the dearer unit rates too.
            rates = dearer_rates(prev.get("per"), m.get("per"))
            if keep is m:
                models[mid], origin[mid] = m, key
            if fee is not None:
                models[mid]["request_fee"] = fee
            if rates:
                models[mid]["per"] = rates
        else:
            models[mid], origin[mid] = m, key
    image_models(models)
    return [models[k] for k in sorted(models)], collisions, skipped


def dearer_rates(a, b):
    a, b = a or {}, b or {}
    return {k: max(a.get(k, 0), b.get(k, 0)) for k in sorted(set(a) | set(b))}


def image_models(models: dict) -> None:
    """Gives each image model, as requested without a size or quality, the
    dearest per-image rate of its sizes and qualities (the gateway charges a
    request that names both at that size's rate): the bare entry is made
    when the catalog lists only sizes."""
    dearest: dict[str, int] = {}
    for mid, m in models.items():
        kind, rest = mid.split("/", 1)
        hit = IMAGE_KEY_RE.match(rest)
        image = (m.get("per") or {}).get("image")
        if hit and image:
            base = f"{kind}/{hit.group('model')}"
            dearest[base] = max(dearest.get(base, 0), image)
    for base, image in dearest.items():
        m = models.setdefault(base, {
            "id": base, "mode": "image_generation", "input": 0, "output": 0,
            "cached_input": None, "cache_write": None, "cache_write_1h": None,
            "max_output": None, "above": [],
        })
        per = dict(m.get("per") or {})
        per["image"] = max(per.get("image", 0), image)
        m["per"] = per


def render(source: str, comment: str, models: list[dict]) -> str:
    lines = [
        "{",
        f'"source": {json.dumps(source)},',
        f'"generated_by": {json.dumps(GENERATED_BY)},',
        f'"comment": {json.dumps(comment)},',
        '"models": [',
    ]
    rows = [json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in models]
    lines.append(",\n".join(rows))
    lines += ["]", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--litellm-version", default=DEFAULT_LITELLM_VERSION,
                    help=f"litellm release on PyPI to read (default {DEFAULT_LITELLM_VERSION})")
    ap.add_argument("--from-json", metavar="PATH",
                    help="read this local copy of model_prices_and_context_window.json instead")
    ap.add_argument("--output", default=str(OUTPUT), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.from_json:
        raw = Path(args.from_json).read_bytes()
        where = f"local file {os.path.basename(args.from_json)}"
    else:
        raw = fetch_wheel_json(args.litellm_version)
        where = f"PyPI litellm=={args.litellm_version} wheel, {WHEEL_MEMBER}"
    sha = hashlib.sha256(raw).hexdigest()
    source = f"LiteLLM model cost map: {where} (sha256 {sha})"

    # Floats as Decimal so prices come from the exact decimal text.
    data = json.loads(raw, parse_float=Decimal)
    models, collisions, skipped = build(data)

    differing = [c for c in collisions if not c[4]]
    comment = (
        "Prices: integer micro-dollars per million tokens, ceil(USD per token x 1e12). "
        f"{len(collisions)} LiteLLM keys collided on an id already taken "
        f"({len(differing)} with different prices); the dearer entry was kept"
        + (": " + "; ".join(f"{mid} from {kept!r}" for mid, _, _, kept, _ in differing)
           if differing else "")
        + "."
    )
    text = render(source, comment, models)
    out = Path(args.output)
    out.write_text(text, encoding="utf-8")

    per_kind = collections.Counter(m["id"].split("/", 1)[0] for m in models)
    print(f"wrote {out} ({len(text.encode())} bytes, {len(models)} models)")
    print(f"source: {source}")
    print("models per kind:")
    for kind in sorted(set(PROVIDERS.values())):
        print(f"  {kind:<11} {per_kind.get(kind, 0)}")
    print(f"collisions: {len(collisions)} ({len(collisions) - len(differing)} with identical "
          f"prices, {len(differing)} differing, dearer kept)")
    for mid, a, b, kept, _ in differing:
        print(f"  {mid}: {a!r} vs {b!r} -> kept {kept!r}")
    print(f"skipped: {sum(skipped.values())}")
    for reason, n in sorted(skipped.items(), key=lambda x: (-x[1], x[0])):
        print(f"  {n:>5}  {reason}")
    free = [m["id"] for m in models if m["input"] == 0 and m["output"] == 0]
    print(f"models priced at zero in and out (kept as LiteLLM lists them): {len(free)}")
    for mid in free:
        print(f"  {mid}")
    print(f"prices rounded up to a whole micro-dollar per million tokens: {ROUNDED_UP}")
    fees = [m for m in models if m.get("request_fee")]
    print(f"models with a per-request fee: {len(fees)}")
    for m in fees:
        print(f"  {m['id']}: {m['request_fee']}")


if __name__ == "__main__":
    main()
