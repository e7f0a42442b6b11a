//! Our BERT forward pass (`inference::bert`, unpadded batches) against candle's
//! `BertModel` (padded, masked) on the real all-MiniLM-L6-v2 weights: the same
//! sentence vectors, one sentence at a time and in a batch of mixed lengths.

use crate::helpers::*;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

const SENTENCES: [&str; 6] = [
    "are you open sunday?",
    "Do you deliver to Brooklyn, and how much does delivery cost for a large order of cupcakes?",
    "hi",
    "how much is the red velvet",
    "Can I get a custom birthday cake with a unicorn on it for 30 people next Saturday? It needs to be nut free because my nephew has a severe allergy.",
    "¿hablan español?",
];

/// candle's reference: padded batch, attention mask, mean over the mask, L2.
fn candle_vectors(texts: &[&str]) -> Vec<Vec<f32>> {
    let dir = repo().join("models/all-minilm-l6-v2");
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
    }
    .unwrap();
    let model = BertModel::load(vb, &config).unwrap();
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
    let encodings = tokenizer.encode_batch(texts.to_vec(), true).unwrap();
    let (rows, width) = (encodings.len(), encodings[0].get_ids().len());
    let ids: Vec<u32> = encodings
        .iter()
        .flat_map(|e| e.get_ids().to_vec())
        .collect();
    let mask: Vec<u32> = encodings
        .iter()
        .flat_map(|e| e.get_attention_mask().to_vec())
        .collect();
    let ids = Tensor::from_vec(ids, (rows, width), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, (rows, width), &Device::Cpu).unwrap();
    let hidden = model
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
        .unwrap();
    let mask = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let mean = hidden
        .broadcast_mul(&mask)
        .unwrap()
        .sum(1)
        .unwrap()
        .broadcast_div(&mask.sum(1).unwrap())
        .unwrap();
    let norm = mean.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    mean.broadcast_div(&norm).unwrap().to_vec2::<f32>().unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn our_bert_forward_matches_candle_bert_model_on_the_real_weights() {
    let embedder = frontdesk::inference::load_embedder(&repo().join("models")).expect("loads");
    let expected = candle_vectors(&SENTENCES);
    let batched = embedder.embed(&SENTENCES).unwrap();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let alone = embedder.embed_one(sentence).unwrap();
        let norm = alone.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length: {norm}");
        let (one, many) = (
            cosine(&alone, &expected[i]),
            cosine(&batched[i], &expected[i]),
        );
        assert!(
            one > 0.9999 && many > 0.9999,
            "{sentence:?}: cosine {one} alone, {many} batched"
        );
        // Each token row is computed with the same additions in the same order
        // whatever else is in the batch, so batching changes no bit.
        assert_eq!(
            alone, batched[i],
            "{sentence:?}: batched differs from alone"
        );
    }
    // And the vectors still mean something: a paraphrase beats an unrelated text.
    let [open, sunday, cake] = [
        "are you open on sundays",
        "what are your sunday hours",
        "how much is a wedding cake",
    ]
    .map(|t| embedder.embed_one(t).unwrap());
    assert!(cosine(&open, &sunday) > cosine(&open, &cake) + 0.1);
}
