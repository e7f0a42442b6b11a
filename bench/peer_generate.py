#!/usr/bin/env python3
r"""The named peer of `frontdesk bench generate`: llama.cpp (through
llama-cpp-python) on the same GGUF and the same ChatML prompt, greedy decoding of
a fixed number of tokens. Prints one JSON object per thread count.

    CMAKE_ARGS="-DGGML_NATIVE=ON" python3 -m pip install llama-cpp-python

On a CPU that reports AMX but whose kernel does not grant the tile state (this
build VM), llama.cpp dies with "Illegal instruction" (tileloadd); build it with
AMX off instead:

    CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 \
      -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'" \
      python3 -m pip install --no-deps --no-build-isolation llama-cpp-python
    python3 bench/peer_generate.py [--threads 1 2] [--model path.gguf]

The prompt must stay identical to BENCH_SYSTEM / BENCH_QUESTION in
src/inference/generator.rs; compare `prompt_tokens` with the Rust bench's.
Speeds are counted the way the Rust bench counts them: prompt tokens over the
time to process them, and (generated - 1) forward passes over the decode time,
since the first generated token comes from the prompt's logits.
"""

import argparse
import json
import pathlib
import time

import llama_cpp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_GGUF = ROOT / "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

BENCH_SYSTEM = (
    "You are the assistant of Crumb & Co, a small bakery. "
    "Answer in one or two short sentences, using only these facts.\n"
    "- We open at 7am and close at 6pm, Monday to Saturday. Closed on Sundays.\n"
    "- A sourdough loaf costs $6.50; a croissant costs $3.20.\n"
    "- Birthday cakes must be ordered 48 hours ahead; a 20 cm cake costs $42.00.\n"
    "- We deliver within 5 km for $4; orders over $30 are delivered free.\n"
    "- All breads are baked with organic flour. We have no gluten-free bread."
)
BENCH_QUESTION = "Hi! Do you deliver, and how much is a birthday cake?"
DECODE_TOKENS = 64


def chatml(system, user):
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def greedy(llm):
    logits = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),)
    )
    return int(np.argmax(logits))


def run_once(llm, prompt_tokens):
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt_tokens)
    token = greedy(llm)
    prompt_s = time.perf_counter() - started
    generated = [token]
    started = time.perf_counter()
    while len(generated) < DECODE_TOKENS:
        llm.eval([token])
        token = greedy(llm)
        generated.append(token)
    decode_s = time.perf_counter() - started
    return prompt_s, decode_s, generated


def bench(model_path, threads):
    started = time.perf_counter()
    llm = llama_cpp.Llama(
        str(model_path),
        n_ctx=1024,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    load_ms = (time.perf_counter() - started) * 1000
    prompt_tokens = llm.tokenize(
        chatml(BENCH_SYSTEM, BENCH_QUESTION).encode(), add_bos=False, special=True
    )
    best = None
    # Best of three; the first run also warms caches.
    for _ in range(3):
        prompt_s, decode_s, generated = run_once(llm, prompt_tokens)
        if best is None or prompt_s + decode_s < best[0] + best[1]:
            best = (prompt_s, decode_s, generated)
    prompt_s, decode_s, generated = best
    return {
        "peer": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})",
        "threads": threads,
        "load_ms": round(load_ms, 1),
        "prompt_tokens": len(prompt_tokens),
        "generated_tokens": len(generated),
        "prompt_tokens_per_s": round(len(prompt_tokens) / prompt_s, 1),
        "decode_tokens_per_s": round((len(generated) - 1) / decode_s, 1),
        "text": llm.detokenize(generated).decode("utf-8", "replace"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_GGUF)
    args = parser.parse_args()
    for threads in args.threads:
        print(json.dumps(bench(args.model, threads), ensure_ascii=False))


if __name__ == "__main__":
    main()
