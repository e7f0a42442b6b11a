//! Reading the GGUF: opening the file, its metadata values, and the
//! tokenizer, special tokens and stop tokens its metadata describes.

use super::generator_error;
use crate::inference::models::ModelError;
use candle_core::quantized::gguf_file::{Content, Value};
use std::io::BufReader;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

pub(super) fn open_gguf(path: &Path) -> Result<BufReader<std::fs::File>, ModelError> {
    let file =
        std::fs::File::open(path).map_err(|e| generator_error(&path.display().to_string(), e))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

fn metadata<'a>(content: &'a Content, key: &str) -> Result<&'a Value, ModelError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| generator_error("GGUF metadata", format!("`{key}` is missing")))
}

pub(super) fn metadata_string<'a>(content: &'a Content, key: &str) -> Result<&'a str, ModelError> {
    metadata(content, key)?
        .to_string()
        .map(String::as_str)
        .map_err(|_| generator_error("GGUF metadata", format!("`{key}` is not a string")))
}

fn metadata_strings<'a>(content: &'a Content, key: &str) -> Result<Vec<&'a str>, ModelError> {
    let not_strings = || generator_error("GGUF metadata", format!("`{key}` is not a string array"));
    metadata(content, key)?
        .to_vec()
        .map_err(|_| not_strings())?
        .iter()
        .map(|v| v.to_string().map(String::as_str).map_err(|_| not_strings()))
        .collect()
}

/// Any integer metadata value (writers differ on the width and signedness).
pub(in crate::inference) fn integer(value: &Value) -> Option<u64> {
    match *value {
        Value::U8(v) => Some(v.into()),
        Value::U16(v) => Some(v.into()),
        Value::U32(v) => Some(v.into()),
        Value::U64(v) => Some(v),
        Value::I8(v) => u64::try_from(v).ok(),
        Value::I16(v) => u64::try_from(v).ok(),
        Value::I32(v) => u64::try_from(v).ok(),
        Value::I64(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

/// GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
/// 6 byte. Control and user-defined tokens are matched whole in the text.
pub(super) fn special_token_texts(content: &Content) -> Result<Vec<String>, ModelError> {
    let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
    let types = match content.metadata.get("tokenizer.ggml.token_type") {
        None => return Ok(Vec::new()),
        Some(types) => types.to_vec().map_err(|_| {
            generator_error(
                "GGUF metadata",
                "`tokenizer.ggml.token_type` is not an array",
            )
        })?,
    };
    if types.len() != tokens.len() {
        return Err(generator_error(
            "GGUF metadata",
            format!("{} token types for {} tokens", types.len(), tokens.len()),
        ));
    }
    Ok(tokens
        .iter()
        .zip(types)
        .filter(|(_, kind)| matches!(integer(kind), Some(3 | 4)))
        .map(|(token, _)| token.to_string())
        .collect())
}

/// Builds the byte-level BPE tokenizer described by a GGUF's `tokenizer.ggml.*`
/// metadata (the file ships no tokenizer.json). No BOS is prepended.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, ModelError> {
    let kind = metadata_string(content, "tokenizer.ggml.model")?;
    if kind != "gpt2" {
        return Err(generator_error(
            "tokenizer",
            format!(
                "`tokenizer.ggml.model` is `{kind}`; only byte-level BPE (`gpt2`) is supported"
            ),
        ));
    }
    let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
    let merges = metadata_strings(content, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(left, right)| (left.to_string(), right.to_string()))
                .ok_or_else(|| {
                    generator_error("tokenizer", format!("merge `{merge}` is not `a b`"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.to_string(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| generator_error("tokenizer", e))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let byte_level = ByteLevel::new(false, true, true);
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str);
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        // llama.cpp's `smollm`: every digit on its own, then GPT-2's split.
        Some("smollm") => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
        None | Some("gpt2") => byte_level.into(),
        Some(other) => {
            return Err(generator_error(
                "tokenizer",
                format!("pre-tokenizer `{other}` is not supported (smollm, gpt2)"),
            ))
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(byte_level));
    let specials = special_token_texts(content)?;
    tokenizer
        .add_special_tokens(specials.into_iter().map(|t| AddedToken::from(t, true)))
        .map_err(|e| generator_error("tokenizer", e))?;
    Ok(tokenizer)
}

pub(super) fn stop_tokens(
    content: &Content,
    tokenizer: &Tokenizer,
) -> Result<Vec<u32>, ModelError> {
    let mut stops: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|key| content.metadata.get(*key).and_then(integer))
        .map(|id| id as u32)
        .collect();
    stops.extend(tokenizer.token_to_id("<|im_end|>"));
    stops.sort_unstable();
    stops.dedup();
    if stops.is_empty() {
        return Err(generator_error("GGUF metadata", "no end-of-sequence token"));
    }
    Ok(stops)
}
