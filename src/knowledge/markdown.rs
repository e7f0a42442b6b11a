//! Splits a Markdown file into `## ` sections: heading, optional `Also asked:`
//! phrasings, and body. Used for faq.md and every other `.md` file.
//!
//! Pure text in, sections out: no file access, no index.

use super::{Issue, Severity};

/// One `## ` section of a Markdown file.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    /// 1-based line of the `## ` heading.
    pub line: usize,
    pub also_asked: Vec<String>,
    pub body: String,
    /// 1-based line of the first non-blank line of `body` (the heading's line if empty).
    pub body_line: usize,
}

/// A parsed Markdown file: its `# ` title (if any) and its sections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub title: Option<String>,
    pub sections: Vec<Section>,
}

const ALSO_ASKED: &str = "also asked:";

/// Parses `text` (the content of `path`), pushing problems into `issues`.
pub fn parse(path: &str, text: &str, issues: &mut Vec<Issue>) -> Document {
    let mut document = Document::default();
    let mut current: Option<Section> = None;
    let mut body_lines: Vec<&str> = Vec::new();
    let mut in_fence = false;

    let finish = |section: Option<Section>, body_lines: &mut Vec<&str>, doc: &mut Document| {
        if let Some(mut section) = section {
            section.body = body_lines.join("\n").trim().to_string();
            doc.sections.push(section);
        }
        body_lines.clear();
    };

    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim_end();
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && (line.starts_with("## ") || line == "##") {
            finish(current.take(), &mut body_lines, &mut document);
            let heading = line[2..].trim();
            if heading.is_empty() {
                issues.push(Issue::error(path, line_no, "a `## ` heading has no text"));
            }
            current = Some(Section {
                heading: heading.to_string(),
                line: line_no,
                also_asked: Vec::new(),
                body: String::new(),
                body_line: line_no,
            });
            continue;
        }
        match current.as_mut() {
            None => {
                if let Some(title) = line.strip_prefix("# ") {
                    if document.title.is_none() {
                        document.title = Some(title.trim().to_string());
                    }
                }
            }
            Some(section) => {
                let is_also_asked = line
                    .get(..ALSO_ASKED.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ALSO_ASKED));
                if is_also_asked {
                    let directly_under = body_lines.iter().all(|l| l.trim().is_empty())
                        && section.also_asked.is_empty();
                    if !directly_under {
                        issues.push(Issue {
                            severity: Severity::Warning,
                            path: path.to_string(),
                            line: line_no,
                            message: "`Also asked:` must come right under the heading; this line is treated as answer text".into(),
                        });
                        body_lines.push(raw_line);
                        continue;
                    }
                    for phrasing in line[ALSO_ASKED.len()..].split('|') {
                        let phrasing = phrasing.trim();
                        if phrasing.is_empty() {
                            issues.push(Issue::warning(
                                path,
                                line_no,
                                "empty phrasing in `Also asked:` (two `|` in a row?)",
                            ));
                        } else {
                            section.also_asked.push(phrasing.to_string());
                        }
                    }
                } else {
                    if body_lines.iter().all(|l| l.trim().is_empty()) && !raw_line.trim().is_empty()
                    {
                        section.body_line = line_no;
                    }
                    body_lines.push(raw_line);
                }
            }
        }
    }
    finish(current.take(), &mut body_lines, &mut document);
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Document {
        let mut issues = Vec::new();
        let document = parse("faq.md", text, &mut issues);
        assert!(issues.is_empty(), "unexpected issues: {issues:?}");
        document
    }

    #[test]
    fn faq_entries_with_phrasings_and_answers() {
        let document = parse_ok(
            "# Title\nignored text\n\n## Do you deliver?\n\nAlso asked: Can you bring a cake? | delivery to brooklyn?\n\nYes. $5 within 5 miles.\n\n## Hours?\nWe open at 7am.\n",
        );
        assert_eq!(document.title.as_deref(), Some("Title"));
        assert_eq!(document.sections.len(), 2);
        let first = &document.sections[0];
        assert_eq!(first.heading, "Do you deliver?");
        assert_eq!(first.line, 4);
        assert_eq!(
            first.also_asked,
            vec!["Can you bring a cake?", "delivery to brooklyn?"]
        );
        assert_eq!(first.body, "Yes. $5 within 5 miles.");
        assert_eq!(document.sections[1].body, "We open at 7am.");
        assert!(document.sections[1].also_asked.is_empty());
    }

    #[test]
    fn empty_heading_is_an_error_with_its_line() {
        let mut issues = Vec::new();
        parse("faq.md", "## Ok\nfine\n##\nbody\n", &mut issues);
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].to_string(),
            "faq.md:3: error: a `## ` heading has no text"
        );
    }

    #[test]
    fn late_also_asked_is_a_warning_and_kept_as_text() {
        let mut issues = Vec::new();
        let document = parse("faq.md", "## Q\nAnswer.\nAlso asked: x | y\n", &mut issues);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].severity, Severity::Warning);
        assert_eq!(issues[0].line, 3);
        assert!(document.sections[0].also_asked.is_empty());
        assert!(document.sections[0].body.contains("Also asked: x | y"));
    }

    #[test]
    fn headings_inside_code_fences_do_not_split() {
        let document = parse_ok("## A\n```\n## not a heading\n```\n");
        assert_eq!(document.sections.len(), 1);
        assert!(document.sections[0].body.contains("## not a heading"));
    }

    #[test]
    fn level_three_headings_stay_in_the_body() {
        let document = parse_ok("## A\n### detail\ntext\n");
        assert_eq!(document.sections.len(), 1);
        assert!(document.sections[0].body.starts_with("### detail"));
    }
}
