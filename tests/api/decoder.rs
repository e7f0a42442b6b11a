//! Our CPU decoder (`inference::llama`) against candle's `quantized_llama` on the
//! same real GGUF (Q4_1 as shipped): the same logits to the rounding of 8-bit
//! activations, and the same greedy reply, with the prompt split as a reused
//! prefix splits it.

use crate::helpers::*;
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use frontdesk::inference::generator::{greedy_tokens, ChatRole, Generator};
use frontdesk::inference::llama::Llama;
use std::path::PathBuf;

fn gguf_path() -> PathBuf {
    repo().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn generator() -> Generator {
    Generator::load(&gguf_path(), "decoder-test").expect("loads")
}

fn candle_logits(model: &mut ModelWeights, tokens: &[u32], position: usize) -> Vec<f32> {
    let input = Tensor::new(tokens, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.forward(&input, position).unwrap().squeeze(0).unwrap();
    logits.to_vec1::<f32>().unwrap()
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn decoder_matches_candle_quantized_llama_on_the_real_model() {
    let generator = generator();
    let file = gguf_path();
    let prompt = generator
        .encode(&generator.chat_prompt(
            "You reply to customers of Crumb & Co. A sourdough loaf costs $6.50; we open at 7am.",
            &[(
                ChatRole::User,
                "Hi! How much is the sourdough, and when do you open?",
            )],
        ))
        .unwrap();

    let mut reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let mut reference = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
    let mut reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let ours = Llama::from_gguf(&content, &mut reader, 2048).unwrap();

    // The prompt in two uneven pieces, as a reused system prefix plus the rest.
    let split = prompt.len() / 3;
    let mut cache = ours.new_cache();
    ours.forward(&mut cache, &prompt[..split]).unwrap();
    let ours_logits = ours.forward(&mut cache, &prompt[split..]).unwrap();
    assert_eq!(cache.len(), prompt.len());
    let expected = candle_logits(&mut reference, &prompt, 0);
    assert_eq!(ours_logits.len(), expected.len());
    // candle multiplies Q4_1 with f32-scaled 8-bit activations (Q8_1) and we
    // with Q8_0-style ones, so the logits agree to that rounding, not bit for bit.
    let spread = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let differences: Vec<f32> = ours_logits
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let mean = differences.iter().sum::<f32>() / differences.len() as f32;
    let worst = differences.iter().fold(0f32, |m, &v| m.max(v));
    // Both are roundings of the exact product (dequantized weights, f32
    // activations). Rounding 8-bit activations is chaotic over 30 layers, so one
    // position's error varies about 2× between equally good roundings; a wrong
    // rotation, norm or head layout is off by whole logits.
    let mut reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let exact = Llama::from_gguf_exact(&content, &mut reader, 2048).unwrap();
    let exact_logits = exact.forward(&mut exact.new_cache(), &prompt).unwrap();
    let error = |logits: &[f32]| {
        logits
            .iter()
            .zip(&exact_logits)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / logits.len() as f32
    };
    let (ours_error, candle_error) = (error(&ours_logits), error(&expected));
    assert!(
        ours_error <= 2.5 * candle_error && ours_error < 0.5,
        "mean error against f32: ours {ours_error}, candle {candle_error}"
    );
    assert!(
        mean < 0.02 * spread && worst < 0.08 * spread,
        "logits differ by {mean} on average, {worst} at most (largest logit {spread})"
    );
    assert_eq!(argmax(&ours_logits), argmax(&expected));

    // Twenty greedy steps: the same tokens.
    let mut reference_tokens = vec![argmax(&expected)];
    while reference_tokens.len() < 20 {
        let position = prompt.len() + reference_tokens.len() - 1;
        let last = *reference_tokens.last().unwrap();
        reference_tokens.push(argmax(&candle_logits(&mut reference, &[last], position)));
    }
    let our_tokens = greedy_tokens(&generator, &prompt, 20).unwrap();
    // The reply, up to the reference's end of turn (past it, near-ties between
    // tokens nobody sends may go either way).
    let end = generator.encode("<|im_end|>").unwrap()[0];
    let reply_len = reference_tokens
        .iter()
        .position(|&t| t == end)
        .unwrap_or(reference_tokens.len());
    assert!(reply_len >= 5, "the reference wrote a reply");
    assert_eq!(
        generator
            .tokenizer()
            .decode(&our_tokens[..reply_len], false)
            .unwrap(),
        generator
            .tokenizer()
            .decode(&reference_tokens[..reply_len], false)
            .unwrap()
    );
}

#[test]
fn decoder_refuses_tokens_past_its_context_and_outside_the_vocabulary() {
    let file = gguf_path();
    let mut reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    let content = Content::read(&mut reader).unwrap();
    let small = Llama::from_gguf(&content, &mut reader, 8).unwrap();
    let mut cache = small.new_cache();
    small.forward(&mut cache, &[1, 2, 3, 4, 5, 6]).unwrap();
    let error = small
        .forward(&mut cache, &[7, 8, 9])
        .unwrap_err()
        .to_string();
    assert!(error.contains("exceed the 8-token context"), "{error}");
    assert_eq!(cache.len(), 6, "a refused call leaves the cache as it was");
    let error = small
        .forward(&mut cache, &[u32::MAX])
        .unwrap_err()
        .to_string();
    assert!(error.contains("outside the vocabulary"), "{error}");
    assert!(small.forward(&mut cache, &[]).is_err());
}
