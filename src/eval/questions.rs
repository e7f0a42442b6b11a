//! Question files (FORMATS.md §2): reading a `.jsonl` file into [`Question`]s
//! with `path:line` errors, each line's expectation and its optional local time.
//!
//! Only reads and validates; asking and scoring are [`super::run`] and
//! [`super::score`]'s job, so nothing here touches the assistant.

use crate::domain::{Action, Channel, Reason, Turn};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// One source or several, any of which counts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ExpectedSources {
    One(String),
    Any(Vec<String>),
}

impl ExpectedSources {
    pub fn contains(&self, source: &str) -> bool {
        match self {
            ExpectedSources::One(one) => one == source,
            ExpectedSources::Any(any) => any.iter().any(|s| s == source),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expectation {
    pub action: Action,
    pub source: Option<ExpectedSources>,
    #[serde(default)]
    pub mentions: Vec<String>,
    pub reason: Option<Reason>,
    /// The form in progress (or completed) after this message (FORMATS.md §7).
    pub form: Option<String>,
    /// Values captured so far; only the listed keys are checked.
    pub fields: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    #[serde(default)]
    pub channel: Channel,
    pub message: String,
    pub expect: Expectation,
    #[serde(default)]
    pub history: Vec<Turn>,
    /// When the message is sent, business-local `"YYYY-MM-DDTHH:MM:SS"`
    /// (FORMATS.md §7); absent: the time of the run.
    #[serde(default)]
    pub now: Option<String>,
}

/// Reads a `.jsonl` question file; blank lines and `#` lines are skipped.
pub fn read_questions(path: &Path) -> Result<Vec<Question>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_questions(&path.display().to_string(), &text)
}

pub fn parse_questions(path: &str, text: &str) -> Result<Vec<Question>, EvalError> {
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let question: Question = serde_json::from_str(trimmed).map_err(|e| EvalError::Parse {
            path: path.to_string(),
            line: index + 1,
            message: e.to_string(),
        })?;
        if let Some(now) = &question.now {
            if now.parse::<jiff::civil::DateTime>().is_err() {
                return Err(EvalError::Parse {
                    path: path.to_string(),
                    line: index + 1,
                    message: format!("`now`: `{now}` is not a local time like 2026-12-24T14:30:00"),
                });
            }
        }
        questions.push(question);
    }
    Ok(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_lines_parse_with_lists_history_and_unknown_fields() {
        let text = "# comment\n\n{\"id\":\"q1\",\"channel\":\"sms\",\"message\":\"hi\",\"note\":\"x\",\"expect\":{\"action\":\"answer\",\"source\":[\"a#b\",\"c#d\"],\"mentions\":[\"$5\"]},\"history\":[{\"from\":\"customer\",\"text\":\"yo\"}]}\n{\"id\":\"q2\",\"channel\":\"email\",\"message\":\"person pls\",\"expect\":{\"action\":\"escalate\",\"reason\":\"human_requested\"}}\n";
        let questions = parse_questions("q.jsonl", text).unwrap();
        assert_eq!(questions.len(), 2);
        assert!(questions[0].expect.source.as_ref().unwrap().contains("c#d"));
        assert_eq!(questions[0].history.len(), 1);
        assert_eq!(questions[1].expect.reason, Some(Reason::HumanRequested));
    }

    #[test]
    fn a_line_may_carry_its_local_time_and_a_bad_one_is_reported() {
        let good = "{\"id\":\"h1\",\"message\":\"open now?\",\"now\":\"2026-12-01T14:30:00\",\"expect\":{\"action\":\"answer\"}}\n";
        let questions = parse_questions("h.jsonl", good).unwrap();
        assert_eq!(questions[0].now.as_deref(), Some("2026-12-01T14:30:00"));
        let bad = good.replace("2026-12-01T14:30:00", "tuesday 2pm");
        let error = parse_questions("h.jsonl", &bad).unwrap_err();
        assert!(error.to_string().starts_with("h.jsonl:1: `now`"), "{error}");
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let error = parse_questions(
            "q.jsonl",
            "\n{\"id\":\"q1\",\"message\":\"x\",\"expect\":{\"action\":\"maybe\"}}\n",
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("q.jsonl:2: "), "{error}");
    }
}
