//! Grounded generation: the local LLM rewrites the retrieved passages into a
//! short reply, and a verifier decides whether it may be sent. A reply is sent
//! only if every fact in it (numbers, prices, times, phones, emails, URLs)
//! appears in the passages and every sentence is close in meaning to a passage
//! sentence; otherwise it is regenerated once and then dropped, and the caller
//! sends the owner's own text instead. The customer's text is data in the
//! prompt, never instructions (ChatML roles; special-token text is not parsed).

use crate::domain::{Speaker, Turn};
use crate::inference::embedder::{cosine, Embedder};
use crate::inference::generator::{ChatRole, GenerationLimits, Generator};
use crate::inference::ModelError;
use std::sync::Arc;
use std::time::Duration;

/// A reply sentence must be at least this similar (MiniLM cosine) to some
/// passage sentence. Chosen so that paraphrases of a passage pass and sentences
/// about something else do not; see BENCHMARKS.md for the measured effect.
pub const SENTENCE_SUPPORT: f32 = 0.6;
const MAX_NEW_TOKENS: usize = 80;
const DEADLINE: Duration = Duration::from_secs(4);

pub struct GroundedWriter {
    generator: Arc<Generator>,
    embedder: Arc<Embedder>,
}

/// What happened to one generation attempt, for eval and logs.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    pub attempts: usize,
    pub rejected: Vec<String>,
    pub generate_ms: f64,
}

impl GroundedWriter {
    pub fn new(generator: Arc<Generator>, embedder: Arc<Embedder>) -> Self {
        GroundedWriter {
            generator,
            embedder,
        }
    }

    fn system_prompt(business: &str, passages: &[&str]) -> String {
        let mut prompt = format!(
            "You reply to customers of {business}. Use only the facts below. Never add a price, time, date, number or promise that is not in the facts. Reply in one or two short, friendly sentences.\n\nFacts:\n"
        );
        for passage in passages {
            prompt.push_str("- ");
            prompt.push_str(&passage.replace('\n', " "));
            prompt.push('\n');
        }
        prompt
    }

    /// Why `reply` may not be sent, or None when it passes.
    pub fn verify(&self, reply: &str, passages: &[&str]) -> Result<Option<String>, ModelError> {
        let reply = reply.trim();
        if reply.is_empty() {
            return Ok(Some("empty reply".into()));
        }
        let unsupported = super::grounding::unsupported_facts(reply, passages);
        if !unsupported.is_empty() {
            return Ok(Some(format!("facts not in the passages: {unsupported:?}")));
        }
        let reply_sentences: Vec<&str> = crate::text::sentences(reply)
            .into_iter()
            .filter(|s| s.split_whitespace().count() >= 3)
            .collect();
        let passage_sentences: Vec<&str> = passages
            .iter()
            .flat_map(|p| crate::text::sentences(p))
            .collect();
        if reply_sentences.is_empty() || passage_sentences.is_empty() {
            return Ok(None);
        }
        let mut texts = reply_sentences.clone();
        texts.extend(passage_sentences.iter());
        let vectors = self.embedder.embed(&texts)?;
        let (reply_vectors, passage_vectors) = vectors.split_at(reply_sentences.len());
        for (sentence, vector) in reply_sentences.iter().zip(reply_vectors) {
            let best = passage_vectors
                .iter()
                .map(|p| cosine(vector, p))
                .fold(f32::MIN, f32::max);
            if best < SENTENCE_SUPPORT {
                return Ok(Some(format!(
                    "unsupported sentence ({best:.2}): {sentence}"
                )));
            }
        }
        Ok(None)
    }

    /// A verified generated reply, or None (send the owner's text instead).
    pub fn write(
        &self,
        business: &str,
        passages: &[&str],
        history: &[Turn],
        message: &str,
    ) -> Result<(Option<String>, WriteReport), ModelError> {
        let system = Self::system_prompt(business, passages);
        let mut turns: Vec<(ChatRole, &str)> = history
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|t| {
                (
                    if t.from == Speaker::Customer {
                        ChatRole::User
                    } else {
                        ChatRole::Assistant
                    },
                    t.text.as_str(),
                )
            })
            .collect();
        turns.push((ChatRole::User, message));
        let mut report = WriteReport::default();
        for (attempt, temperature) in [(0u64, 0.0), (1, 0.7)] {
            let limits = GenerationLimits {
                max_new_tokens: MAX_NEW_TOKENS,
                deadline: DEADLINE,
                temperature,
                seed: 7 + attempt,
            };
            let generation = self
                .generator
                .generate(&system, &turns, &limits, &mut |_| {})?;
            report.attempts += 1;
            report.generate_ms += generation.prompt_ms + generation.decode_ms;
            match self.verify(&generation.text, passages)? {
                None => return Ok((Some(generation.text.trim().to_string()), report)),
                Some(why) => report.rejected.push(why),
            }
        }
        Ok((None, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_holds_the_business_and_every_passage() {
        let prompt = GroundedWriter::system_prompt(
            "Jasmine's Bakery",
            &["Delivery is $5.", "We open at 7am.\nClosed Mondays."],
        );
        assert!(prompt.contains("Jasmine's Bakery"));
        assert!(prompt.contains("- Delivery is $5.\n"));
        assert!(prompt.contains("- We open at 7am. Closed Mondays.\n"));
    }
}
