//! Grounded generation: the local LLM rewrites the retrieved passages into a
//! short reply in the channel's style, and a verifier decides whether it may be
//! sent. A reply is sent only if every fact in it (numbers, prices, times,
//! phones, emails, URLs) appears in the passages, it keeps every fact the
//! passages state (a rewrite that drops the price the customer asked for is
//! worse than the owner's text), and every sentence is close in meaning to a
//! passage sentence. Otherwise it is regenerated once if the time budget allows,
//! and then dropped: the caller sends the owner's own text instead. The
//! customer's text is data in the prompt, never instructions (ChatML roles;
//! special-token text is not parsed).
//!
//! The prompt puts the fixed part first: the system block depends only on the
//! business and the channel's style (four texts, each one's KV cache reused by
//! the generator), and the per-question passages and message follow in the user
//! turn.

use super::grounding::{self, Fact};
use crate::domain::{Channel, Speaker, Turn};
use crate::inference::embedder::{cosine, Embedder};
use crate::inference::generator::{ChatRole, GenerationLimits, Generator, StopReason};
use crate::inference::ModelError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A reply sentence must be at least this similar (MiniLM cosine) to some
/// passage sentence. Chosen so that paraphrases of a passage pass and sentences
/// about something else do not; see BENCHMARKS.md for the measured effect.
pub const SENTENCE_SUPPORT: f32 = 0.6;
/// Wall-clock budget of all attempts together (prompt, decoding and
/// verification), so that a generated reply stays under 4 s end to end; when
/// it runs out the owner's text is sent.
pub const TOTAL_BUDGET: Duration = Duration::from_millis(3_300);
/// A second attempt is only started with at least this much budget left: less
/// cannot process a prompt and write a sentence on two CPU cores.
const MIN_RETRY_BUDGET: Duration = Duration::from_millis(1_200);

/// How a channel's replies look, which sets the system prompt and the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelStyle {
    /// SMS: plain text, ≤ 320 characters.
    Sms,
    /// WhatsApp, Instagram, Messenger: short, light formatting.
    Chat,
    /// Email: a fuller body; greeting and sign-off are added afterwards.
    Email,
    /// Web chat: short, Markdown.
    Webchat,
}

impl ChannelStyle {
    pub fn of(channel: Channel) -> Self {
        match channel {
            Channel::Sms => ChannelStyle::Sms,
            Channel::Whatsapp | Channel::Instagram | Channel::Messenger => ChannelStyle::Chat,
            Channel::Email => ChannelStyle::Email,
            Channel::Webchat => ChannelStyle::Webchat,
        }
    }

    /// The style line of the system prompt.
    fn instruction(self) -> &'static str {
        match self {
            ChannelStyle::Sms => {
                "This is an SMS: plain text, no Markdown, at most two short sentences (under 300 characters)."
            }
            ChannelStyle::Chat => {
                "This is a chat message: one to three short, friendly sentences, no headings."
            }
            ChannelStyle::Email => {
                "This is an email body: two to four clear sentences. Do not write a greeting or a sign-off."
            }
            ChannelStyle::Webchat => {
                "This is a web chat: one to three short sentences; Markdown is fine, a short list for several items."
            }
        }
    }

    /// Token budget of one attempt.
    fn max_new_tokens(self) -> usize {
        match self {
            ChannelStyle::Sms => 70,
            ChannelStyle::Chat | ChannelStyle::Webchat => 80,
            ChannelStyle::Email => 100,
        }
    }
}

#[derive(Clone)]
pub struct GroundedWriter {
    generator: Arc<Generator>,
    embedder: Arc<Embedder>,
}

/// Why one generated reply was not sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Empty,
    /// Facts the reply states that no passage does.
    UnsupportedFacts(Vec<Fact>),
    /// Facts of the passages the reply left out.
    DroppedFacts(Vec<Fact>),
    /// A sentence not close in meaning to any passage sentence.
    UnsupportedSentence {
        similarity: f32,
        sentence: String,
    },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Empty => write!(f, "empty reply"),
            Rejection::UnsupportedFacts(facts) => write!(f, "facts not in the passages: {facts:?}"),
            Rejection::DroppedFacts(facts) => write!(f, "passage facts left out: {facts:?}"),
            Rejection::UnsupportedSentence {
                similarity,
                sentence,
            } => write!(f, "unsupported sentence ({similarity:.2}): {sentence}"),
        }
    }
}

/// One generation attempt's cost, for eval details and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub prompt_tokens: usize,
    pub reused_prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prompt_ms: f64,
    pub decode_ms: f64,
    pub stop: StopReason,
}

/// What happened to the generation attempts for one answer, for eval and logs.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    pub attempts: usize,
    pub attempt_costs: Vec<Attempt>,
    pub rejected: Vec<Rejection>,
    /// The total budget ran out before a reply passed.
    pub out_of_time: bool,
    /// Wall-clock time of all attempts and their verification.
    pub generate_ms: f64,
}

impl WriteReport {
    pub fn unsupported_sentences(&self) -> usize {
        self.rejected
            .iter()
            .filter(|r| matches!(r, Rejection::UnsupportedSentence { .. }))
            .count()
    }

    /// Attempts rejected for a fact: stated without support or left out.
    pub fn fact_rejections(&self) -> usize {
        self.rejected
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Rejection::UnsupportedFacts(_) | Rejection::DroppedFacts(_)
                )
            })
            .count()
    }
}

/// The generated text cut to its last complete sentence when generation was
/// stopped by the token budget or the deadline; None when nothing complete is left.
fn complete_sentences(text: &str, stop: StopReason) -> Option<String> {
    let text = text.trim();
    if stop == StopReason::Eos {
        return (!text.is_empty()).then(|| text.to_string());
    }
    let end = text.rfind(['.', '!', '?'])?;
    let kept = text[..=end].trim();
    (!kept.is_empty()).then(|| kept.to_string())
}

impl GroundedWriter {
    pub fn new(generator: Arc<Generator>, embedder: Arc<Embedder>) -> Self {
        GroundedWriter {
            generator,
            embedder,
        }
    }

    /// The fixed part of the prompt: it depends only on the business and the
    /// channel's style, so its KV cache is computed once per style.
    pub fn system_prompt(business: &str, style: ChannelStyle) -> String {
        format!(
            "You reply to customers of {business}. Answer the customer's question using only the facts you are given, and keep every price, time and number exactly as written there. Never add a price, time, date, number or promise that is not in the facts. {}",
            style.instruction()
        )
    }

    /// The per-question part: the passages, then the customer's message.
    pub fn user_prompt(passages: &[&str], message: &str) -> String {
        let mut prompt = String::from("Facts:\n");
        for passage in passages {
            prompt.push_str("- ");
            prompt.push_str(&passage.split_whitespace().collect::<Vec<_>>().join(" "));
            prompt.push('\n');
        }
        prompt.push_str("\nCustomer: ");
        prompt.push_str(message.trim());
        prompt
    }

    /// Why `reply` may not be sent, or None when it passes.
    pub fn verify(&self, reply: &str, passages: &[&str]) -> Result<Option<Rejection>, ModelError> {
        let reply = reply.trim();
        if reply.is_empty() {
            return Ok(Some(Rejection::Empty));
        }
        let unsupported = grounding::unsupported_facts(reply, passages);
        if !unsupported.is_empty() {
            return Ok(Some(Rejection::UnsupportedFacts(unsupported)));
        }
        // The reverse check: facts of the passages the reply does not state.
        let dropped: Vec<Fact> = passages
            .iter()
            .flat_map(|passage| grounding::unsupported_facts(passage, &[reply]))
            .collect();
        if !dropped.is_empty() {
            return Ok(Some(Rejection::DroppedFacts(dropped)));
        }
        let passage_sentences: Vec<&str> = passages
            .iter()
            .flat_map(|p| crate::text::sentences(p))
            .collect();
        // A one- or two-word sentence ("No.", "Yes!") carries no meaning an
        // embedding can compare, yet it can flip the answer: it must open a
        // passage sentence, or be a greeting.
        let (reply_sentences, short): (Vec<&str>, Vec<&str>) = crate::text::sentences(reply)
            .into_iter()
            .partition(|s| s.split_whitespace().count() >= 3);
        if let Some(sentence) = short
            .iter()
            .find(|s| !short_sentence_supported(s, &passage_sentences))
        {
            return Ok(Some(Rejection::UnsupportedSentence {
                similarity: 0.0,
                sentence: sentence.to_string(),
            }));
        }
        if reply_sentences.is_empty() || passage_sentences.is_empty() {
            return Ok(None);
        }
        let mut texts = reply_sentences.clone();
        texts.extend(passage_sentences.iter());
        let vectors = self.embedder.embed(&texts)?;
        let (reply_vectors, passage_vectors) = vectors.split_at(reply_sentences.len());
        for (sentence, vector) in reply_sentences.iter().zip(reply_vectors) {
            let (best_index, best) = passage_vectors
                .iter()
                .map(|p| cosine(vector, p))
                .enumerate()
                .fold((0, f32::MIN), |b, (i, c)| if c > b.1 { (i, c) } else { b });
            // Embeddings barely see "not": "we do not deliver" sits next to "we
            // deliver". The closest passage sentence must agree on negation.
            if best < SENTENCE_SUPPORT
                || negated(sentence) != negated(passage_sentences[best_index])
            {
                return Ok(Some(Rejection::UnsupportedSentence {
                    similarity: best,
                    sentence: sentence.to_string(),
                }));
            }
        }
        Ok(None)
    }

    /// A verified generated reply, or None (send the owner's text instead).
    /// All attempts together stay within [`TOTAL_BUDGET`].
    pub fn write(
        &self,
        business: &str,
        channel: Channel,
        passages: &[&str],
        history: &[Turn],
        message: &str,
    ) -> Result<(Option<String>, WriteReport), ModelError> {
        let started = Instant::now();
        let style = ChannelStyle::of(channel);
        let system = Self::system_prompt(business, style);
        let user = Self::user_prompt(passages, message);
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
        turns.push((ChatRole::User, &user));
        let mut report = WriteReport::default();
        let mut verified = None;
        for (attempt, temperature) in [(0u64, 0.0), (1, 0.7)] {
            let left = TOTAL_BUDGET.saturating_sub(started.elapsed());
            if attempt > 0 && left < MIN_RETRY_BUDGET {
                report.out_of_time = true;
                break;
            }
            let limits = GenerationLimits {
                max_new_tokens: style.max_new_tokens(),
                deadline: left,
                temperature,
                seed: 7 + attempt,
            };
            let generation = self
                .generator
                .generate(&system, &turns, &limits, &mut |_| {})?;
            report.attempts += 1;
            report.attempt_costs.push(Attempt {
                prompt_tokens: generation.prompt_tokens,
                reused_prompt_tokens: generation.reused_prompt_tokens,
                generated_tokens: generation.generated_tokens,
                prompt_ms: generation.prompt_ms,
                decode_ms: generation.decode_ms,
                stop: generation.stop,
            });
            if generation.stop == StopReason::Deadline {
                report.out_of_time = true;
            }
            let text = complete_sentences(&generation.text, generation.stop).unwrap_or_default();
            match self.verify(&text, passages)? {
                None => {
                    verified = Some(text);
                    report.out_of_time = false;
                    break;
                }
                Some(why) => report.rejected.push(why),
            }
            if started.elapsed() >= TOTAL_BUDGET {
                report.out_of_time = true;
                break;
            }
        }
        report.generate_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok((verified, report))
    }
}

/// Lower-case words of `text`, apostrophes kept (typographic ones made plain).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('\u{2019}', "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Whether a sentence denies or refuses something.
fn negated(sentence: &str) -> bool {
    const NEGATIONS: &[&str] = &[
        "no", "not", "never", "none", "nothing", "nobody", "nowhere", "cannot", "without",
    ];
    words(sentence)
        .iter()
        .any(|w| NEGATIONS.contains(&w.as_str()) || w.ends_with("n't"))
}

/// A short reply sentence is a greeting, or the words a passage sentence opens with.
fn short_sentence_supported(sentence: &str, passage_sentences: &[&str]) -> bool {
    const GREETINGS: &[&str] = &["hi", "hello", "hey", "thanks", "thank", "you", "welcome"];
    let short = words(sentence);
    if short.is_empty() || short.iter().all(|w| GREETINGS.contains(&w.as_str())) {
        return true;
    }
    passage_sentences
        .iter()
        .any(|p| words(p).starts_with(&short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_no_is_not_supported_by_a_passage_that_says_yes() {
        let passages = ["Yes.", "We deliver within 5 miles of the shop."];
        assert!(!short_sentence_supported("No.", &passages));
        assert!(short_sentence_supported("Yes!", &passages));
        assert!(short_sentence_supported("Thank you!", &passages));
        assert!(!short_sentence_supported("Sure!", &passages));
        assert!(short_sentence_supported("We deliver.", &passages));
    }

    #[test]
    fn negation_is_seen_in_its_usual_spellings() {
        assert!(negated("We don't deliver on Sundays."));
        assert!(negated("We don\u{2019}t deliver on Sundays."));
        assert!(negated("Sorry, we have no gluten-free bread."));
        assert!(negated("We cannot ship cakes."));
        assert!(!negated("We deliver within 5 miles."));
        assert!(!negated("Notes are welcome on every order."));
    }

    #[test]
    fn the_system_prompt_is_fixed_per_business_and_style() {
        let sms = GroundedWriter::system_prompt("Jasmine's Bakery", ChannelStyle::Sms);
        assert!(sms.contains("Jasmine's Bakery"));
        assert!(
            sms.contains("SMS") && sms.contains("300 characters") && sms.contains("no Markdown")
        );
        let email = GroundedWriter::system_prompt("Jasmine's Bakery", ChannelStyle::Email);
        assert!(email.contains("email") && email.contains("greeting"));
        assert!(
            GroundedWriter::system_prompt("B", ChannelStyle::Webchat).contains("Markdown is fine")
        );
        // One system text per style: WhatsApp, Instagram and Messenger share one cache.
        let chat: Vec<String> = [Channel::Whatsapp, Channel::Instagram, Channel::Messenger]
            .into_iter()
            .map(|c| GroundedWriter::system_prompt("B", ChannelStyle::of(c)))
            .collect();
        assert!(chat.iter().all(|s| *s == chat[0]));
        let distinct: std::collections::HashSet<String> = Channel::ALL
            .into_iter()
            .map(|c| GroundedWriter::system_prompt("B", ChannelStyle::of(c)))
            .collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn the_user_turn_holds_every_passage_then_the_message() {
        let prompt = GroundedWriter::user_prompt(
            &["Delivery is $5.", "We open at 7am.\nClosed Mondays."],
            " do u deliver? ",
        );
        assert!(prompt.contains("- Delivery is $5.\n"));
        assert!(prompt.contains("- We open at 7am. Closed Mondays.\n"));
        assert!(prompt.ends_with("Customer: do u deliver?"));
        assert!(prompt.find("Delivery").unwrap() < prompt.find("Customer:").unwrap());
    }

    #[test]
    fn a_cut_off_reply_keeps_only_whole_sentences() {
        assert_eq!(
            complete_sentences("We deliver for $5. We also", StopReason::Deadline).as_deref(),
            Some("We deliver for $5.")
        );
        assert_eq!(
            complete_sentences("We deliver", StopReason::TokenBudget),
            None
        );
        assert_eq!(
            complete_sentences(" Yes, we do ", StopReason::Eos).as_deref(),
            Some("Yes, we do")
        );
    }

    #[test]
    fn rejections_are_counted_by_kind() {
        let report = WriteReport {
            attempts: 2,
            rejected: vec![
                Rejection::DroppedFacts(vec![Fact::Money(5.0)]),
                Rejection::UnsupportedSentence {
                    similarity: 0.4,
                    sentence: "We love you.".into(),
                },
            ],
            out_of_time: false,
            generate_ms: 1.0,
            ..WriteReport::default()
        };
        assert_eq!(report.fact_rejections(), 1);
        assert_eq!(report.unsupported_sentences(), 1);
    }
}
