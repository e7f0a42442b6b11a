#!/usr/bin/env python3
"""Writes tests/fixtures/smollm2_tokens.json: reference token ids for a few tricky
strings, computed without frontdesk's Rust code.

The GGUF ships no tokenizer.json, so the reference tokenizer is rebuilt here from
the GGUF metadata (read with the `gguf` package) using the Python `tokenizers`
package: byte-level BPE, pre-tokenizer Digits(individual) + ByteLevel(regex),
token types 3 (control) and 4 (user-defined) added as special tokens. When
llama-cpp-python is installed, the ids are also checked against llama.cpp's own
tokenizer, which shares no code with `tokenizers`.

    python3 -m pip install gguf tokenizers      # llama-cpp-python optional
    python3 bench/make_tokenizer_fixture.py [path/to/model.gguf]
"""

import hashlib
import json
import pathlib
import re
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_GGUF = ROOT / "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
FIXTURE = ROOT / "tests/fixtures/smollm2_tokens.json"

CASES = [
    "Café crème — $5.50 🎂",
    "Birthday cakes 🎂🎉🧁 and a 👩‍🍳 baker!",
    "$42.00",
    "Prices: $42.00, €3,50 and 1234567 crumbs at 7:30am.",
    "naïve façade, Zürich, São Paulo, 東京, Ελληνικά",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "<|im_start|>system\nWe open at 7am.<|im_end|>\n"
    "<|im_start|>user\nWhen do you open?<|im_end|>\n"
    "<|im_start|>assistant\n",
]


def field(reader, key):
    found = reader.fields.get(key)
    return None if found is None else found.contents()


def build_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = field(reader, "tokenizer.ggml.merges")
    vocab = {token: index for index, token in enumerate(tokens)}
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(
                add_prefix_space=False, trim_offsets=True, use_regex=True
            ),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    specials = [tokens[i] for i, kind in enumerate(types) if kind in (3, 4)]
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in specials])
    return tokenizer


def llama_cpp_ids(path, texts):
    try:
        import llama_cpp
    except ImportError:
        return None
    model = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    return [model.tokenize(t.encode(), add_bos=False, special=True) for t in texts]


def main():
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GGUF
    reader = GGUFReader(str(path))
    tokenizer = build_tokenizer(reader)
    cases = []
    for text in CASES:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if tokenizer.decode(ids, skip_special_tokens=False) != text:
            sys.exit(f"reference tokenizer does not round-trip {text!r}")
        cases.append({"text": text, "ids": ids})
    checked_by = ["tokenizers (Python)"]
    peer = llama_cpp_ids(path, CASES)
    if peer is not None:
        for case, peer_ids in zip(cases, peer):
            if case["ids"] != peer_ids:
                sys.exit(f"llama.cpp disagrees on {case['text']!r}: {peer_ids}")
        checked_by.append("llama.cpp (llama-cpp-python)")
    fixture = {
        "model": path.name,
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "generated_by": "bench/make_tokenizer_fixture.py",
        "checked_by": checked_by,
        "cases": cases,
    }
    # One case per line keeps the fixture readable in a diff.
    text = json.dumps(fixture, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s*([0-9,\s]+?)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    FIXTURE.write_text(text + "\n")
    print(f"wrote {FIXTURE} ({len(cases)} cases, checked by {', '.join(checked_by)})")


if __name__ == "__main__":
    main()
