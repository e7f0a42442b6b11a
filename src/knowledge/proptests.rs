//! Property tests over the owner's files: the shipped business.toml,
//! menu.toml, forms.toml and markdown, attacked line by line, and any text
//! at all, must load or be refused with `path:line` issues, never panic;
//! what a parse keeps is never bigger than a small multiple of the file.

use super::*;
use crate::proptest_support::{config, hostile_text, mutated_lines};
use proptest::prelude::*;

const BUSINESS: &str = include_str!("../../knowledge/business.toml");
const MENU: &str = include_str!("../../knowledge/menu.toml");
const FORMS: &str = include_str!("../../knowledge/forms.toml");
const FAQ: &str = include_str!("../../knowledge/faq.md");
const POLICY: &str = include_str!("../../knowledge/policies/custom-cakes.md");

/// The file as shipped (mutated), or any text at all.
fn file_text(shipped: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        4 => mutated_lines(shipped),
        1 => hostile_text(),
        1 => any::<String>(),
    ]
    .boxed()
}

/// Every issue names a line that exists (0 only for whole-file problems).
fn assert_lines(text: &str, issues: &[Issue]) {
    let lines = text.split('\n').count();
    for issue in issues {
        assert!(
            issue.line <= lines + 1,
            "line {} of {lines}: {issue}",
            issue.line
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn proptest_business_toml_never_panics(text in file_text(BUSINESS)) {
        let mut issues = Vec::new();
        let _ = business::parse("business.toml", &text, &mut issues);
        assert_lines(&text, &issues);
    }

    #[test]
    fn proptest_menu_toml_never_panics(text in file_text(MENU)) {
        let mut issues = Vec::new();
        let (items, _) = menu::parse("menu.toml", &text, &mut issues);
        assert_lines(&text, &issues);
        prop_assert!(items.len() <= text.len());
        for item in &items {
            let _ = item.describe("$", true);
        }
    }

    #[test]
    fn proptest_forms_toml_never_panics(text in file_text(FORMS)) {
        let mut issues = Vec::new();
        let forms = forms::parse("forms.toml", &text, &mut issues);
        assert_lines(&text, &issues);
        prop_assert!(forms.len() <= text.len());
    }

    #[test]
    fn proptest_markdown_never_panics_and_keeps_only_its_text(
        text in prop_oneof![file_text(FAQ), file_text(POLICY)],
    ) {
        let mut issues = Vec::new();
        let document = markdown::parse("faq.md", &text, &mut issues);
        assert_lines(&text, &issues);
        let kept: usize = document
            .sections
            .iter()
            .map(|s| s.heading.len() + s.body.len() + s.also_asked.iter().map(String::len).sum::<usize>())
            .sum();
        prop_assert!(kept <= 2 * text.len(), "{} from {}", kept, text.len());
        for section in &document.sections {
            prop_assert!(section.line >= 1 && section.line <= text.split('\n').count());
        }
    }

    #[test]
    fn proptest_written_hours_and_slugs_never_panic(text in hostile_text()) {
        if let Ok(spans) = business::parse_hours(&text) {
            let _ = business::format_spans(&spans);
        }
        let slug = slug::slugify(&text);
        prop_assert!(slug.len() <= 4 * text.len() + 8);
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// The whole folder, through `load` (reads files, so fewer cases).
    #[test]
    fn proptest_a_mutated_folder_loads_or_lists_its_errors(
        business in file_text(BUSINESS),
        menu in file_text(MENU),
        forms in file_text(FORMS),
        faq in file_text(FAQ),
        case in any::<u64>(),
    ) {
        let dir = std::env::temp_dir().join(format!("frontdesk-knowledge-prop-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("business.toml", &business), ("menu.toml", &menu), ("forms.toml", &forms), ("faq.md", &faq)] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        match KnowledgeBase::load(&dir) {
            Ok(knowledge) => {
                for entry in &knowledge.entries {
                    prop_assert!(["business.toml", "menu.toml", "forms.toml", "faq.md"].contains(&entry.path.as_str()), "{}", entry.path);
                }
            }
            Err(error) => prop_assert!(error.issues.iter().any(|i| i.severity == Severity::Error)),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
