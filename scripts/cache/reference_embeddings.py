#!/usr/bin/env python3
"""Writes tests/golden/cache/embeddings.json: WordLlama's own embeddings of a
fixed set of texts, which tests/cache_embed.rs compares with the Rust
embedder's (cosine >= 0.999 each, identical token ids).

Run once per model or wordllama upgrade, in any venv with the pinned package:

    python3 -m venv /tmp/wl && /tmp/wl/bin/pip install wordllama==0.4.0.post1
    /tmp/wl/bin/python scripts/cache/reference_embeddings.py "$(scripts/cache/fetch-model.sh)"

The model directory is the one scripts/cache/fetch-model.sh writes; it has
WordLlama's cache layout, so WordLlama loads exactly the files the Rust side
loads, with downloads disabled.
"""

import json
import sys
from pathlib import Path

import numpy as np
import wordllama
from wordllama import WordLlama

PINNED = "0.4.0.post1"
OUT = Path(__file__).resolve().parents[2] / "tests/golden/cache/embeddings.json"

# Chosen to exercise the tokenizer's corners as well as ordinary prompts:
# leading/trailing/repeated spaces, newlines and tabs, punctuation and code,
# digits, accents, CJK and emoji (byte fallback), a literal special token,
# and one 50-word prompt.
TEXTS = [
    "What is the capital of France?",
    "what's the capital city of france",
    "How do I reverse a linked list in Python?",
    "Write a haiku about autumn leaves.",
    "hello",
    " leading space",
    "trailing space ",
    "two  spaces   and three",
    "line one\nline two\n\nline four",
    "tab\tseparated\tvalues",
    "fn main() { println!(\"Hello, world!\"); }",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    "The invoice total is $1,234.56 due on 2026-03-15.",
    "Café, naïve, résumé, coöperate, Ångström",
    "東京の天気はどうですか？",
    "Как дела? Всё хорошо.",
    "I love Rust 🦀 and coffee ☕!",
    "<s> a literal start token and </s> an end token",
    "Summarise the following meeting notes for an executive audience: the team "
    "agreed to migrate the billing service to the new cluster by the end of the "
    "quarter, pending a load test next week; finance asked for a cost estimate; "
    "security wants an audit of the access keys before any traffic moves, and the "
    "on-call rotation changes on Monday.",
    "x" * 300,
]


def main() -> None:
    if wordllama.__version__ != PINNED:
        sys.exit(f"wordllama {wordllama.__version__} installed; the golden file is for {PINNED}")
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    model_dir = Path(sys.argv[1])
    wl = WordLlama.load("l2_supercat", dim=256, cache_dir=model_dir, disable_download=True)
    vectors = wl.embed(TEXTS, norm=True)
    entries = []
    for text, vector, enc in zip(TEXTS, vectors, wl.tokenize(TEXTS)):
        ids = [i for i, m in zip(enc.ids, enc.attention_mask) if m]
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5, text
        entries.append(
            {
                "text": text,
                "ids": ids,
                "embedding": [round(float(x), 8) for x in vector],
            }
        )
    golden = {
        "model": "wordllama l2_supercat_256",
        "wordllama": wordllama.__version__,
        "made_by": "scripts/cache/reference_embeddings.py",
        "texts": entries,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(entries)} embeddings to {OUT}")


if __name__ == "__main__":
    main()
