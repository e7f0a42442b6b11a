//! Reading the owner's knowledge folder (docs/knowledge-format.md) into a list of
//! retrievable [`Entry`]s, with `path:line` errors and warnings.
//!
//! This module only reads files under the folder it is given; it knows nothing of
//! indexes, models or channels. A folder with any error yields no knowledge base,
//! so callers keep serving the last good one.

pub mod business;
pub mod forms;
pub mod hours;
mod lint;
pub mod markdown;
pub mod menu;
#[cfg(test)]
mod proptests;
pub mod slug;
mod spans;

use crate::domain::SourceId;
use business::{format_spans, Business, WEEKDAYS};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file, printed as `path:line: error: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl Issue {
    pub fn error(path: &str, line: usize, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            path: path.into(),
            line,
            message: message.into(),
        }
    }
    pub fn warning(path: &str, line: usize, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {kind}: {}", self.path, self.line, self.message)
    }
}

/// The folder could not be loaded; every error is listed.
#[derive(Debug, thiserror::Error)]
#[error("{}", .issues.iter().filter(|i| i.severity == Severity::Error).map(|i| i.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct KnowledgeError {
    pub issues: Vec<Issue>,
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

pub(crate) fn toml_error(path: &str, text: &str, error: &toml::de::Error) -> Issue {
    let line = error
        .span()
        .map(|span| line_of(text, span.start))
        .unwrap_or(1);
    let message = error.message().trim().replace('\n', " ");
    Issue::error(path, line, message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Faq,
    MenuItem,
    Section,
    Business,
}

/// One retrievable unit of knowledge, cited by its source id.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub source: SourceId,
    pub kind: EntryKind,
    /// The heading or item name.
    pub title: String,
    /// The ways customers ask for this entry: the heading and every `Also asked`.
    pub phrasings: Vec<String>,
    /// The owner's own text, sent as the extractive reply.
    pub answer: String,
    /// The `# ` title of the document a section comes from.
    pub context: Option<String>,
    pub path: String,
    pub line: usize,
    /// Line where `answer` starts in its file (for warnings about the answer).
    pub answer_line: usize,
}

/// A loaded knowledge folder.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub root: PathBuf,
    pub business: Business,
    pub entries: Vec<Entry>,
    pub menu: Vec<menu::MenuItem>,
    /// forms.toml: details to collect before a custom request is handed over.
    pub forms: Vec<forms::Form>,
    /// Warnings found while loading (errors prevent loading altogether).
    pub warnings: Vec<Issue>,
}

impl KnowledgeBase {
    pub fn entry(&self, source: &SourceId) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.source == source)
    }

    /// Reads and validates the folder.
    pub fn load(root: &Path) -> Result<KnowledgeBase, KnowledgeError> {
        let mut issues = Vec::new();
        let files = match list_files(root) {
            Ok(files) => files,
            Err(error) => {
                return Err(KnowledgeError {
                    issues: vec![Issue::error(
                        &root.display().to_string(),
                        0,
                        format!("cannot read folder: {error}"),
                    )],
                })
            }
        };
        let read = |relative: &str, issues: &mut Vec<Issue>| -> Option<String> {
            match std::fs::read(root.join(relative)) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => Some(text),
                    Err(error) => {
                        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                        issues.push(Issue::error(relative, line, "file is not valid UTF-8 text"));
                        None
                    }
                },
                Err(error) => {
                    issues.push(Issue::error(relative, 0, format!("cannot read: {error}")));
                    None
                }
            }
        };

        let business = if files.iter().any(|f| f == "business.toml") {
            read("business.toml", &mut issues)
                .and_then(|text| business::parse("business.toml", &text, &mut issues))
        } else {
            issues.push(Issue::error(
                "business.toml",
                0,
                format!(
                    "missing: every knowledge folder needs a business.toml (looked in {})",
                    root.display()
                ),
            ));
            None
        };

        let mut entries = Vec::new();
        let mut menu_items = Vec::new();
        let mut menu_currency = None;
        let mut form_list = Vec::new();
        for relative in &files {
            if relative == "business.toml" {
                continue;
            }
            if relative == "menu.toml" {
                if let Some(text) = read(relative, &mut issues) {
                    let (items, currency) = menu::parse(relative, &text, &mut issues);
                    menu_items = items;
                    menu_currency = currency;
                }
            } else if relative == "forms.toml" {
                if let Some(text) = read(relative, &mut issues) {
                    form_list = forms::parse(relative, &text, &mut issues);
                }
            } else if relative.ends_with(".md") {
                if let Some(text) = read(relative, &mut issues) {
                    let document = markdown::parse(relative, &text, &mut issues);
                    let is_faq = relative == "faq.md";
                    let mut slugs = slug::SlugAllocator::default();
                    if !is_faq && document.sections.is_empty() && !text.trim().is_empty() {
                        issues.push(Issue::warning(
                            relative,
                            1,
                            "no `## ` sections: nothing in this file can be found by the bot",
                        ));
                    }
                    for section in document.sections {
                        let slug = slugs.allocate(&section.heading);
                        let mut phrasings = vec![section.heading.clone()];
                        phrasings.extend(section.also_asked);
                        entries.push(Entry {
                            source: SourceId::new(relative, &slug),
                            kind: if is_faq {
                                EntryKind::Faq
                            } else {
                                EntryKind::Section
                            },
                            title: section.heading,
                            phrasings,
                            answer: section.body,
                            context: if is_faq { None } else { document.title.clone() },
                            path: relative.clone(),
                            line: section.line,
                            answer_line: section.body_line,
                        });
                    }
                }
            } else if relative.ends_with(".toml") {
                issues.push(Issue::warning(
                    relative,
                    1,
                    "ignored: only business.toml, menu.toml and forms.toml are read",
                ));
            }
        }

        if issues.iter().any(|i| i.severity == Severity::Error) {
            return Err(KnowledgeError { issues });
        }
        let mut business = business.expect("no errors means business.toml parsed");
        if let Some(currency) = menu_currency {
            business.currency = currency;
        }

        let mut slugs = slug::SlugAllocator::default();
        let menu_lists_allergens = menu_items.iter().any(|item| !item.allergens.is_empty());
        for item in &menu_items {
            let slug = slugs.allocate(&item.name);
            let mut phrasings = vec![item.name.clone()];
            phrasings.extend(item.also_asked.iter().cloned());
            entries.push(Entry {
                source: SourceId::new("menu.toml", &slug),
                kind: EntryKind::MenuItem,
                title: item.name.clone(),
                phrasings,
                answer: item.describe(&business.currency, menu_lists_allergens),
                context: item.category.clone(),
                path: "menu.toml".into(),
                line: item.line,
                answer_line: item.line,
            });
        }
        entries.extend(business_entries(&business));
        let known: Vec<SourceId> = entries.iter().map(|e| e.source.clone()).collect();
        forms::check_sources("forms.toml", &form_list, &known, &mut issues);
        if issues.iter().any(|i| i.severity == Severity::Error) {
            return Err(KnowledgeError { issues });
        }
        lint::check(&entries, &menu_items, &business, &mut issues);

        Ok(KnowledgeBase {
            root: root.to_path_buf(),
            business,
            entries,
            menu: menu_items,
            forms: form_list,
            warnings: issues,
        })
    }
}

/// Entries made from business.toml so "when are you open?" finds the hours.
fn business_entries(business: &Business) -> Vec<Entry> {
    let make = |key: &str, title: &str, phrasings: &[&str], answer: String| Entry {
        source: SourceId::new("business.toml", key),
        kind: EntryKind::Business,
        title: title.into(),
        phrasings: phrasings.iter().map(|p| p.to_string()).collect(),
        answer,
        context: None,
        path: "business.toml".into(),
        line: 1,
        answer_line: 1,
    };
    let mut entries = Vec::new();
    if let Some(hours) = &business.hours {
        let lines: Vec<String> = WEEKDAYS
            .iter()
            .zip(hours.iter())
            .map(|(day, spans)| format!("{day}: {}", format_spans(spans)))
            .collect();
        entries.push(make(
            "hours",
            "Opening hours",
            &[
                "What are your opening hours?",
                "When are you open?",
                "What time do you open and close?",
                "Are you open today?",
                "Are you open on the weekend?",
            ],
            format!(
                "Our opening hours:\n{}{}",
                lines.join("\n"),
                special_hours_text(business)
            ),
        ));
    }
    if !business.closures.is_empty() {
        let lines: Vec<String> = business
            .closures
            .iter()
            .map(|c| {
                let date = if c.first == c.last {
                    c.first.strftime("%A %B %-d, %Y").to_string()
                } else {
                    format!(
                        "{} to {}",
                        c.first.strftime("%A %B %-d"),
                        c.last.strftime("%A %B %-d, %Y")
                    )
                };
                match &c.reason {
                    Some(reason) => format!("{date} ({reason})"),
                    None => date,
                }
            })
            .collect();
        entries.push(make(
            "closures",
            "Holiday closures",
            &[
                "When are you closed for the holidays?",
                "Are you open on public holidays?",
                "Which days are you closed?",
            ],
            format!("We are closed on: {}.", lines.join("; ")),
        ));
    }
    let mut contact = Vec::new();
    if let Some(phone) = &business.phone {
        contact.push(format!("Phone: {phone}"));
    }
    if let Some(email) = &business.email {
        contact.push(format!("Email: {email}"));
    }
    if let Some(website) = &business.website {
        contact.push(format!("Website: {website}"));
    }
    if !contact.is_empty() {
        entries.push(make(
            "contact",
            "Contact details",
            &[
                "What is your phone number?",
                "How can I contact you?",
                "What is your email address?",
                "Do you have a website?",
            ],
            format!("You can reach {}: {}.", business.name, contact.join(", ")),
        ));
    }
    if let Some(address) = &business.address {
        entries.push(make(
            "address",
            "Address and location",
            &[
                "Where are you located?",
                "What is your address?",
                "Where is the shop?",
                "How do I find you?",
            ],
            format!("{} is at {address}.", business.name),
        ));
    }
    entries
}

/// The `[[special_hours]]` lines under the weekly table, so an answer computed
/// from them is grounded in the hours entry's own text.
fn special_hours_text(business: &Business) -> String {
    if business.special_hours.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = business
        .special_hours
        .iter()
        .map(|special| {
            let date = special.date.strftime("%A %B %-d, %Y");
            match &special.reason {
                Some(reason) => format!("{date} ({reason}): {}", format_spans(&special.spans)),
                None => format!("{date}: {}", format_spans(&special.spans)),
            }
        })
        .collect();
    format!("\nSpecial hours:\n{}", lines.join("\n"))
}

/// Every `.md` and `.toml` file under `root`, relative, with `/` separators, sorted.
/// Hidden files and folders (`.git`, editor swap files) are skipped.
fn list_files(root: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for dir_entry in std::fs::read_dir(&dir)? {
            let dir_entry = dir_entry?;
            let name = dir_entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let path = dir_entry.path();
            if dir_entry.file_type()?.is_dir() {
                stack.push(path);
            } else if name.ends_with(".md") || name.ends_with(".toml") {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    // README.md at the top of a folder is documentation for the owner, not knowledge.
    found.retain(|f| f != "README.md");
    Ok(found)
}
