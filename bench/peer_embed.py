#!/usr/bin/env python3
r"""The named peer of `frontdesk bench retrieval`'s embedding figures: llama.cpp's
BERT embedding path (through llama-cpp-python) on the same all-MiniLM-L6-v2
weights that candle runs, converted here to an f32 GGUF, with mean pooling and L2
normalisation as frontdesk does. Prints one JSON object on stdout:

    {"batch1": sentences/s, "batch32": sentences/s, "threads": 2,
     "model": ".../all-minilm-l6-v2-<sha>-f32.gguf", "dtype": "f32",
     "llama_cpp_version": "...", ...}

`bench retrieval` writes the sentences it embedded (the sample knowledge's
phrasings, at most 320) to a JSON list and runs `python3 bench/peer_embed.py
<that file>`; it reads "batch1" and "batch32" and prints candle/llama.cpp ratios.
It is measured the way the Rust side measures it: batch 1 is one sentence per call
over the first 64 sentences; batch 32 is every sentence, 32 per `embed` call. Each
32-sentence call is one llama.cpp decode (n_batch = n_ubatch = 512, llama-cpp-
python's default, or the largest group's token count if more), in which llama.cpp
packs the 32 sequences without padding, where candle pads each group of 32 (sorted
by length) to its longest member. Both are timed after a warm-up (candle's first
call is not warmed up). `--repeat N` times N passes and reports the medians.

llama.cpp's threads meet at a barrier after every op; on a machine with more
runnable processes than cores they keep missing each other and its figures
collapse (on this VM at load average 10 on 2 cores, 2 threads: 2-10 sentences/s
at batch 1 with the default wait policy, 75-100 with OMP_WAIT_POLICY=passive). The JSON carries the load average and a
warning goes to stderr when it exceeds the core count: measure on a quiet machine.

Dependencies (package names, installed with pip):

    python3 -m pip install gguf numpy
    CMAKE_ARGS="-DGGML_NATIVE=ON" python3 -m pip install llama-cpp-python

On a CPU that reports AMX but whose kernel does not grant the tile state (this
build VM), llama.cpp dies with "Illegal instruction"; build it with AMX off (and
without the multimodal library, which this script does not use):

    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF \
      -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
      -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'" \
      python3 -m pip install llama-cpp-python

(cmake and a C++ compiler are needed: `apt-get install -y cmake build-essential`.)
`tokenizers` (pip) is optional: when present, llama.cpp's token ids are checked
against tokenizer.json's.

The conversion is done here, not with llama.cpp's convert_hf_to_gguf.py, because
that script needs torch and transformers. It does what that converter does for
`BertModel`: tensor names from gguf-py's BERT name map, the position_ids and
pooler tensors dropped, the WordPiece vocabulary turned into llama.cpp's
"phantom space" form ("##ab" -> "ab", "ab" -> "\u2581ab", [CLS]-style special
tokens kept and typed CONTROL), BERT hyper-parameters from config.json, causal
attention off, mean pooling. Weights stay f32 (what candle runs; `--dtype f16`
writes the 2-D matrices but the position and token-type embeddings as f16, as
the converter's default would). The
GGUF is written once to $XDG_CACHE_HOME/frontdesk (default ~/.cache/frontdesk),
named after the weights' sha256, and reused.

Before timing, the vectors are checked: against a NumPy forward pass of the same
safetensors on llama.cpp's token ids (cosine must be > 0.999), for unit norm, for
a paraphrase scoring above an unrelated sentence, for batch 1 and batch 32 giving
the same vectors, and, when frontdesk's embedding cache (data/cache) holds some of
the sentences, against candle's own vectors. A failed check exits non-zero.

    python3 bench/peer_embed.py sentences.json [--threads 2] [--repeat 1]
        [--model-dir models/all-minilm-l6-v2] [--gguf out.gguf] [--dtype f32]
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import statistics
import struct
import sys
import time
import tomllib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_NAME = "all-minilm-l6-v2"
# Bump when the conversion changes, so that a cached GGUF is not reused.
CONVERTER_REVISION = 2
SINGLE = 64  # batch 1: the first 64 sentences, as `bench retrieval` does
BATCH = 32
MAX_TOKENS = 128  # frontdesk's (and tokenizer.json's) truncation

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def fail(message):
    print(f"peer_embed: {message}", file=sys.stderr)
    sys.exit(1)


def model_dir(arg):
    if arg:
        return pathlib.Path(arg)
    env = os.environ.get("FRONTDESK_MODEL_ALL_MINILM_L6_V2_DIR")
    if env:
        return pathlib.Path(env)
    models = pathlib.Path(os.environ.get("FRONTDESK_MODELS_DIR", ROOT / "models"))
    if not models.is_absolute():
        models = ROOT / models
    return models / MODEL_NAME


def read_safetensors(path):
    """name -> ndarray (read-only views of one read of the file)."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    body = memoryview(data)[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
    return tensors


def sha256_of(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --- conversion ------------------------------------------------------------------


def convert(src, out, dtype):
    import gguf

    config = json.loads((src / "config.json").read_text())
    tokenizer = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        fail(f"{src}/config.json: model_type {config.get('model_type')!r}, expected 'bert'")
    if tokenizer["model"]["type"] != "WordPiece":
        fail(f"{src}/tokenizer.json: {tokenizer['model']['type']} model, expected WordPiece")

    n_layer = config["num_hidden_layers"]
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_file_type(
        gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16
    )
    writer.add_block_count(n_layer)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)  # sentence-transformers' pooling

    # Vocabulary, as convert_hf_to_gguf.py's BertModel.set_vocab writes it.
    vocab = tokenizer["model"]["vocab"]
    n_vocab = max(config["vocab_size"], max(vocab.values()) + 1)
    special = {t["id"]: t["content"] for t in tokenizer["added_tokens"] if t["special"]}
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for text, index in vocab.items():
        if index in special:
            tokens[index], types[index] = text, gguf.TokenType.CONTROL
        elif text.startswith("##"):
            tokens[index], types[index] = text[2:], gguf.TokenType.NORMAL
        else:
            tokens[index], types[index] = "\u2581" + text, gguf.TokenType.NORMAL
    ids = {content: index for index, content in special.items()}
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    # What the converter's tokenizer hash gives for this (bert-base-uncased)
    # vocabulary; llama.cpp ignores the pre-tokenizer for WordPiece.
    writer.add_tokenizer_pre("bert-bge")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_unk_token_id(ids.get("[UNK]", 100))
    writer.add_bos_token_id(ids.get("[CLS]", 101))  # llama.cpp's WordPiece "bos" is [CLS]
    writer.add_sep_token_id(ids.get("[SEP]", 102))
    writer.add_pad_token_id(ids.get("[PAD]", 0))
    writer.add_mask_token_id(ids.get("[MASK]", 103))

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    weights = read_safetensors(src / "model.safetensors")
    written = 0
    for name, array in weights.items():
        name = name.removeprefix("bert.")
        if name == "embeddings.position_ids" or name.startswith(("pooler.", "cls.")):
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            fail(f"no GGUF name for tensor {name!r}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        # As the converter: position and token-type embeddings always stay f32
        # (llama.cpp adds them to f32 activations).
        if dtype == "f16" and array.ndim == 2 and new_name not in (
            "position_embd.weight", "token_types.weight"
        ):
            array = array.astype(np.float16)
        writer.add_tensor(new_name, array)
        written += 1
    expected = 5 + 16 * n_layer
    if written != expected:
        fail(f"wrote {written} tensors, expected {expected}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)


def ensure_gguf(src, gguf_arg, dtype):
    files = [src / n for n in ("config.json", "tokenizer.json", "model.safetensors")]
    for path in files:
        if not path.is_file():
            fail(f"{path} missing (run `frontdesk models fetch`)")
    if gguf_arg:
        out = pathlib.Path(gguf_arg)
    else:
        cache = pathlib.Path(
            os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")
        ) / "frontdesk"
        key = sha256_of(files)[:16]
        out = cache / f"{MODEL_NAME}-{key}-r{CONVERTER_REVISION}-{dtype}.gguf"
    if out.is_file():
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    convert(src, out, dtype)
    return out, True


# --- reference -------------------------------------------------------------------


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


ERF = np.vectorize(math.erf, otypes=[np.float64])


def reference_embedding(w, config, ids):
    """BertModel forward in float64 (`w`: the safetensors, "bert." prefix removed,
    as float64), mean pooling, L2 normalisation."""
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    d = x.shape[1] // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def dense(v, name):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = layer_norm(x + dense(context, "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
        h = dense(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + ERF(h / math.sqrt(2.0)))
        x = layer_norm(x + dense(h, "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)


def frontdesk_cache_vectors(sentences):
    """candle's vectors for some of `sentences`, from frontdesk's embedding cache
    (records of sha256(text) + 384 little-endian f32, one file per model
    fingerprint), if it is there."""
    try:
        spec = next(m for m in tomllib.loads((ROOT / "models/models.toml").read_text())["model"]
                    if m["name"] == MODEL_NAME)
        fingerprint = f"{MODEL_NAME}:" + "-".join(f["sha256"][:16] for f in spec["files"])
        name = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        data_dir = pathlib.Path(os.environ.get("FRONTDESK_DATA_DIR", ROOT / "data"))
        if not data_dir.is_absolute():
            data_dir = ROOT / data_dir
        raw = (data_dir / "cache" / f"embeddings-{name}.bin").read_bytes()
    except (OSError, KeyError, StopIteration, tomllib.TOMLDecodeError):
        return {}
    record = 32 + 384 * 4
    wanted = {hashlib.sha256(s.encode()).digest(): i for i, s in enumerate(sentences)}
    found = {}
    for start in range(0, len(raw) - record + 1, record):
        index = wanted.get(raw[start : start + 32])
        if index is not None:
            found[index] = np.frombuffer(raw[start + 32 : start + record], dtype="<f4")
    return found


# --- the run ---------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sentences", help="JSON list of sentences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed passes of each kind; the median is reported")
    parser.add_argument("--model-dir", help="folder with config.json, tokenizer.json, "
                        "model.safetensors (default: models/all-minilm-l6-v2)")
    parser.add_argument("--gguf", help="where to write/read the converted model")
    parser.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    args = parser.parse_args()

    sentences = json.loads(pathlib.Path(args.sentences).read_text(encoding="utf-8"))
    if not isinstance(sentences, list) or not sentences or not all(
        isinstance(s, str) for s in sentences
    ):
        fail(f"{args.sentences}: expected a non-empty JSON list of strings")

    # On an abort, ggml forks gdb for a backtrace, which can hang the caller
    # (`bench retrieval` waits for this process); just exit with the message.
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    try:
        import llama_cpp
    except ImportError:
        fail("llama-cpp-python is not installed (see this script's docstring)")

    src = model_dir(args.model_dir)
    started = time.perf_counter()
    gguf_path, converted = ensure_gguf(src, args.gguf, args.dtype)
    convert_s = time.perf_counter() - started

    def load(n_batch):
        return llama_cpp.Llama(
            model_path=str(gguf_path),
            embedding=True,
            n_ctx=n_batch,
            n_batch=n_batch,
            n_ubatch=n_batch,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            verbose=False,
        )

    # n_batch = n_ubatch so that each 32-sentence call is one decode: 512 (the
    # model's context, llama-cpp-python's default) unless a group needs more.
    started = time.perf_counter()
    n_batch = 512
    llm = load(n_batch)
    load_s = time.perf_counter() - started
    lengths = [len(llm.tokenize(s.encode("utf-8"))) for s in sentences]
    if max(lengths) > MAX_TOKENS:
        print(f"peer_embed: warning: a sentence has {max(lengths)} tokens; frontdesk "
              f"truncates at {MAX_TOKENS}, llama.cpp does not", file=sys.stderr)
    group_tokens = max(sum(lengths[i : i + BATCH]) for i in range(0, len(lengths), BATCH))
    if group_tokens > n_batch:
        n_batch = -(-group_tokens // 64) * 64
        llm.close()
        llm = load(n_batch)

    def embed(texts):
        return np.asarray(llm.embed(texts, normalize=True), dtype=np.float64)

    # Checks, which also warm up both paths.
    probe = ["do you deliver to my office?", "can you bring my order to work?",
             "what is the capital of Mongolia"]
    vectors = embed(probe)
    norms = np.linalg.norm(vectors, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-4):
        fail(f"vectors are not unit length: {norms}")
    if not vectors[0] @ vectors[1] > vectors[0] @ vectors[2]:
        fail("a paraphrase scores below an unrelated sentence")
    weights = {k.removeprefix("bert."): v.astype(np.float64)
               for k, v in read_safetensors(src / "model.safetensors").items()
               if v.dtype != np.int64}
    config = json.loads((src / "config.json").read_text())
    reference_cos = min(
        float(vectors[i] @ reference_embedding(weights, config, llm.tokenize(t.encode("utf-8"))))
        for i, t in enumerate(probe)
    )
    del weights
    if reference_cos < 0.999:
        fail(f"llama.cpp's vectors differ from the NumPy reference (cosine {reference_cos:.5f})")
    token_check = "skipped (no tokenizers package)"
    try:
        from tokenizers import Tokenizer

        hf = Tokenizer.from_file(str(src / "tokenizer.json"))
        hf.no_padding()
        hf.enable_truncation(MAX_TOKENS)
        sample = sentences + probe
        differ = [s for s in sample
                  if hf.encode(s).ids != llm.tokenize(s.encode("utf-8"))[:MAX_TOKENS]]
        token_check = f"{len(sample) - len(differ)}/{len(sample)} identical"
        if differ:
            print(f"peer_embed: warning: token ids differ from tokenizer.json's on "
                  f"{len(differ)} sentences, e.g. {differ[0]!r}", file=sys.stderr)
    except ImportError:
        pass
    for text in sentences[:4]:
        embed(text)
    embed(sentences[:BATCH])

    single = sentences[:SINGLE]
    batch1, batch32, cpu1, cpu32 = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(max(1, args.repeat)):
        started, cpu = time.perf_counter(), time.process_time()
        one = [embed(s) for s in single]
        batch1.append(len(single) / (time.perf_counter() - started))
        cpu1.append(time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        many = [v for i in range(0, len(sentences), BATCH) for v in embed(sentences[i : i + BATCH])]
        batch32.append(len(sentences) / (time.perf_counter() - started))
        cpu32.append(time.process_time() - cpu)
    load_average = max(load_before, os.getloadavg()[0])
    cores = os.cpu_count() or 1
    if load_average > cores:
        print(f"peer_embed: warning: load average {load_average:.1f} on {cores} cores; "
              "llama.cpp's threads wait for each other at every op, so its figures "
              "collapse on a busy machine (OMP_WAIT_POLICY=passive softens it)",
              file=sys.stderr)

    many = np.asarray(many)
    batch_cos = float(min(np.sum(np.asarray(one) * many[: len(one)], axis=1)))
    if batch_cos < 0.999:
        fail(f"batch 1 and batch 32 give different vectors (cosine {batch_cos:.5f})")
    candle = frontdesk_cache_vectors(sentences)
    candle_cos = min((float(many[i] @ v) for i, v in candle.items()), default=None)
    if candle_cos is not None and candle_cos < 0.999:
        fail(f"llama.cpp's vectors differ from frontdesk's cached ones (cosine {candle_cos:.5f})")

    print(json.dumps({
        "batch1": round(statistics.median(batch1), 1),
        "batch32": round(statistics.median(batch32), 1),
        "batch1_runs": [round(x, 1) for x in batch1],
        "batch32_runs": [round(x, 1) for x in batch32],
        "batch1_cpu_s": [round(x, 3) for x in cpu1],
        "batch32_cpu_s": [round(x, 3) for x in cpu32],
        "load_average": round(load_average, 2),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "threads": args.threads,
        "model": str(gguf_path),
        "dtype": args.dtype,
        "converted_now": converted,
        "convert_s": round(convert_s, 2),
        "load_s": round(load_s, 2),
        "llama_cpp_version": llama_cpp.__version__,
        "sentences": len(sentences),
        "single": len(single),
        "tokens_mean": round(sum(lengths) / len(lengths), 1),
        "tokens_max": max(lengths),
        "n_batch": n_batch,
        "check": {
            "cosine_numpy_reference_min": round(reference_cos, 6),
            "cosine_batch1_vs_batch32_min": round(batch_cos, 6),
            "cosine_frontdesk_cache_min": None if candle_cos is None else round(candle_cos, 6),
            "frontdesk_cache_hits": len(candle),
            "token_ids": token_check,
        },
    }))


if __name__ == "__main__":
    main()
