//! The slug rule of FORMATS.md §1, and de-duplication of slugs within one file.

use std::collections::HashMap;

/// Lowercase; every run of characters outside `a-z0-9` becomes one `-`; trim `-`.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_dash = false;
    for ch in text.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(ch);
        } else {
            pending_dash = true;
        }
    }
    slug
}

/// Hands out slugs for one file: the second use of a slug gets `-2`, then `-3`, ...
#[derive(Default)]
pub struct SlugAllocator {
    used: HashMap<String, usize>,
}

impl SlugAllocator {
    pub fn allocate(&mut self, text: &str) -> String {
        let base = slugify(text);
        let count = self.used.entry(base.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            base
        } else {
            let mut candidate = format!("{base}-{count}");
            // "a-2" may itself be a heading already; keep counting until free.
            while self.used.contains_key(&candidate) {
                *self.used.get_mut(&base).unwrap() += 1;
                let n = self.used[&base];
                candidate = format!("{base}-{n}");
            }
            self.used.insert(candidate.clone(), 1);
            candidate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_the_formats_rule() {
        assert_eq!(slugify("Do you deliver?"), "do-you-deliver");
        assert_eq!(
            slugify("  What are your opening hours?? "),
            "what-are-your-opening-hours"
        );
        assert_eq!(slugify("Café crème — $5.50"), "caf-cr-me-5-50");
        assert_eq!(slugify("Red Velvet Cake"), "red-velvet-cake");
        assert_eq!(slugify("--"), "");
    }

    #[test]
    fn repeated_slugs_get_numbered() {
        let mut slugs = SlugAllocator::default();
        assert_eq!(slugs.allocate("Delivery"), "delivery");
        assert_eq!(slugs.allocate("delivery!"), "delivery-2");
        assert_eq!(slugs.allocate("Delivery"), "delivery-3");
        assert_eq!(slugs.allocate("Pickup"), "pickup");
    }
}
