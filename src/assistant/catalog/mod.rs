//! Questions about what the business sells, read from the message and answered
//! from menu.toml by construction: "do you sell bread?" and "how much are
//! cupcakes?" list the items of that category with their prices, "what vegan
//! things do you have?" the items with that tag. A product the knowledge never
//! names ("do you sell ice cream?", "dog treats?") is not answerable, however
//! close some entry's wording is: the caller escalates it as out of scope.
//!
//! Only words the owner wrote are matched (categories, tags, item names and
//! `also_asked`, and the text of every entry); nothing here is about one shop.

use crate::knowledge::menu::MenuItem;
use crate::knowledge::{EntryKind, KnowledgeBase};
use crate::text::{stem, within_one_edit};

use std::collections::HashSet;

mod lexicon;
use lexicon::*;

/// What a message asks about a product, as the customer named it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductAsk {
    /// The product's words, lower case, without articles and quantities.
    pub object: Vec<String>,
    /// Another question follows in the same message ("… and are you open?").
    pub more_follows: bool,
    /// Asked whether the business has it at all ("do you sell X?"), not its
    /// price or kinds: only then is a product the knowledge never names out of scope.
    pub availability: bool,
    /// The customer's own thing ("buy *my* old mountain bike", "fix *our*
    /// cargo bike"): only its head noun must be one the knowledge uses.
    pub owned: bool,
}

/// How the knowledge answers a [`ProductAsk`].
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A category and/or tag of the menu: list these items (menu indices).
    Group { label: String, items: Vec<usize> },
    /// One item is named; ordinary retrieval answers it.
    Item,
    /// The words are in the knowledge; ordinary retrieval answers it.
    Covered,
    /// Nothing in the knowledge names this product.
    NotCovered { product: String },
}

/// A composed answer: the text and the entry indices it states.
#[derive(Debug, Clone)]
pub struct Listing {
    pub text: String,
    pub entries: Vec<usize>,
}

/// At most this many items are listed in one reply.
const MOST_LISTED: usize = 12;

#[derive(Debug, Clone)]
struct Group {
    label: String,
    /// Stems of the category or tag ("gluten-free" → ["gluten", "free"]).
    stems: Vec<String>,
    is_tag: bool,
}

/// The menu and the business's vocabulary, prepared once per knowledge base.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    categories: Vec<Group>,
    tags: Vec<Group>,
    /// Per menu item: the entry index, the stems of its name and of each `also_asked`.
    items: Vec<(usize, Vec<Vec<String>>)>,
    /// Every stem the knowledge uses.
    vocabulary: HashSet<String>,
    /// Adjacent stem pairs anywhere in the knowledge ("ice cream" would be one).
    pairs: HashSet<(String, String)>,
    /// Per entry: every stem of its title, phrasings, answer and context.
    entry_stems: Vec<HashSet<String>>,
    currency: String,
    menu: Vec<MenuItem>,
}

/// The project's stem, with "-ie" folded into "-y" so "cookie" meets
/// "cookies" (which the stemmer makes "cooky").
fn norm(word: &str) -> String {
    let stemmed = stem(word);
    match stemmed.strip_suffix("ie") {
        Some(root) if root.chars().count() >= 3 => format!("{root}y"),
        _ => stemmed,
    }
}

fn stems_of(text: &str) -> Vec<String> {
    crate::text::words(&crate::text::expand_shorthand(text))
        .iter()
        .map(|w| norm(w))
        .collect()
}

impl Catalog {
    pub fn new(knowledge: &KnowledgeBase) -> Catalog {
        let mut catalog = Catalog {
            currency: knowledge.business.currency.clone(),
            menu: knowledge.menu.clone(),
            ..Catalog::default()
        };
        let menu_entries: Vec<usize> = knowledge
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EntryKind::MenuItem)
            .map(|(i, _)| i)
            .collect();
        for (position, item) in knowledge.menu.iter().enumerate() {
            let Some(&entry) = menu_entries.get(position) else {
                break;
            };
            let mut names = vec![stems_of(&item.name)];
            names.extend(item.also_asked.iter().map(|a| stems_of(a)));
            catalog.items.push((entry, names));
            if let Some(category) = &item.category {
                if !catalog.categories.iter().any(|g| &g.label == category) {
                    catalog.categories.push(Group {
                        label: category.clone(),
                        stems: stems_of(category),
                        is_tag: false,
                    });
                }
            }
            for tag in &item.tags {
                if !catalog.tags.iter().any(|g| &g.label == tag) {
                    catalog.tags.push(Group {
                        label: tag.clone(),
                        stems: stems_of(tag),
                        is_tag: true,
                    });
                }
            }
        }
        for entry in &knowledge.entries {
            let mut own = HashSet::new();
            let texts = entry
                .phrasings
                .iter()
                .chain([&entry.answer, &entry.title])
                .chain(entry.context.iter());
            for text in texts {
                let stems = stems_of(text);
                for pair in stems.windows(2) {
                    catalog.pairs.insert((pair[0].clone(), pair[1].clone()));
                }
                own.extend(stems);
            }
            catalog.vocabulary.extend(own.iter().cloned());
            catalog.entry_stems.push(own);
        }
        catalog
    }

    fn known(&self, stem: &str) -> bool {
        self.vocabulary.contains(stem)
            || (stem.chars().count() >= 5
                && self.vocabulary.iter().any(|k| within_one_edit(k, stem)))
    }

    /// How the knowledge answers `ask`; `top_entry` is retrieval's best entry.
    pub fn resolve(&self, ask: &ProductAsk, top_entry: Option<usize>) -> Option<Resolution> {
        let object: Vec<String> = ask
            .object
            .iter()
            .filter(|w| !GENERIC.contains(&w.as_str()))
            .map(|w| norm(w))
            .collect();
        if object.is_empty() {
            return None;
        }
        let without_goods: Vec<String> = ask
            .object
            .iter()
            .filter(|w| !GENERIC.contains(&w.as_str()) && !GOODS.contains(&w.as_str()))
            .map(|w| norm(w))
            .collect();
        if let Some((label, items)) = self.group(&without_goods) {
            return Some(Resolution::Group { label, items });
        }
        let same = |a: &String, b: &String| a == b || (a.len() >= 5 && within_one_edit(a, b));
        let names_item = self.items.iter().any(|(_, names)| {
            names.iter().any(|name| {
                object.iter().all(|o| name.iter().any(|n| same(n, o)))
                    || (!name.is_empty() && name.iter().all(|n| object.iter().any(|o| same(n, o))))
            })
        });
        if names_item {
            return Some(Resolution::Item);
        }
        let top_covers = top_entry
            .and_then(|e| self.entry_stems.get(e))
            .is_some_and(|stems| object.iter().all(|o| stems.contains(o)));
        if top_covers {
            return Some(Resolution::Covered);
        }
        if !ask.availability {
            return Some(Resolution::Covered);
        }
        let product = ask.object.join(" ");
        // Words under three letters ("pb", "xl") are shorthand, not names.
        let object: Vec<String> = object
            .into_iter()
            .filter(|o| o.chars().count() >= 3)
            .collect();
        if object.is_empty() {
            return Some(Resolution::Covered);
        }
        // Words before the head ("*old* mountain bike") may be any description;
        // the customer's own thing is described freely, only its noun counts.
        // "my car's brakes" names what it belongs to: checked as any name is.
        let belongs_to_something = ask.object.iter().any(|w| w.ends_with("'s"));
        if ask.owned && !belongs_to_something {
            let noun = &object[object.len() - 1];
            return Some(if self.known(noun) {
                Resolution::Covered
            } else {
                Resolution::NotCovered { product }
            });
        }
        let head_start = object.len().saturating_sub(2);
        if object[head_start..].iter().any(|o| !self.known(o)) {
            return Some(Resolution::NotCovered { product });
        }
        if object.len() >= 2 {
            // The head of the name is its last two words ("old *mountain bike*"):
            // they must appear together, as the customer wrote them.
            let head = &object[object.len() - 2..];
            let adjacent = self.pairs.contains(&(head[0].clone(), head[1].clone()));
            let one_entry = self
                .entry_stems
                .iter()
                .any(|stems| head.iter().all(|o| stems.contains(o)));
            if !adjacent || !one_entry {
                return Some(Resolution::NotCovered { product });
            }
        }
        Some(Resolution::Covered)
    }

    /// The category and/or tag the object names, when they use up all of its
    /// words, with the items they hold (menu indices).
    fn group(&self, object: &[String]) -> Option<(String, Vec<usize>)> {
        let matches = |group: &Group, used: &mut Vec<bool>| -> bool {
            if group.stems.is_empty() {
                return false;
            }
            // The group's words appear in order, adjacent, in the object.
            for start in 0..object.len() {
                let window = &object[start..];
                if window.len() >= group.stems.len()
                    && group
                        .stems
                        .iter()
                        .zip(window)
                        .all(|(g, o)| g == o || (g.len() >= 5 && within_one_edit(g, o)))
                {
                    for flag in used.iter_mut().skip(start).take(group.stems.len()) {
                        *flag = true;
                    }
                    return true;
                }
            }
            false
        };
        let mut used = vec![false; object.len()];
        let category = self.categories.iter().find(|g| matches(g, &mut used));
        let tags: Vec<&Group> = self.tags.iter().filter(|g| matches(g, &mut used)).collect();
        if !used.iter().all(|&u| u) || (category.is_none() && tags.is_empty()) {
            return None;
        }
        let items: Vec<usize> = self
            .menu
            .iter()
            .enumerate()
            .filter(|(_, item)| {
                category.is_none_or(|c| item.category.as_deref() == Some(c.label.as_str()))
                    && tags.iter().all(|t| item.tags.contains(&t.label))
            })
            .map(|(i, _)| i)
            .collect();
        if items.is_empty() {
            return None;
        }
        let mut label: Vec<String> = tags.iter().map(|t| t.label.to_lowercase()).collect();
        match category {
            Some(c) => label.push(c.label.to_lowercase()),
            None => label.push("items".into()),
        }
        debug_assert!(tags.iter().all(|t| t.is_tag));
        Some((label.join(" "), items))
    }

    /// The reply listing a group's items with their prices, and the entries it states.
    pub fn listing(&self, label: &str, items: &[usize]) -> Listing {
        let mut lines = vec![format!("Our {label}:")];
        let mut entries = Vec::new();
        for &index in items.iter().take(MOST_LISTED) {
            let item = &self.menu[index];
            lines.push(format!("- {}", item.price_line(&self.currency)));
            if let Some((entry, _)) = self.items.get(index) {
                entries.push(*entry);
            }
        }
        if items.len() > MOST_LISTED {
            lines.push(format!(
                "…and {} more on the menu.",
                items.len() - MOST_LISTED
            ));
        }
        Listing {
            text: lines.join("\n"),
            entries,
        }
    }
}

/// Reads "do you sell X", "u got any X", "how much are X", "X price",
/// "what kinds of X do you have" from one message. `None` when the message
/// is not a product question, or when something else comes before it.
pub fn read_ask(message: &str) -> Option<ProductAsk> {
    let lowered = crate::text::expand_shorthand(message).to_lowercase();
    // Punctuation other than apostrophes and hyphens ends the product's name.
    let spaced: String = lowered
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let breaks: Vec<usize> = {
        // Word positions after which punctuation came (",", "?", "." …).
        let mut breaks = Vec::new();
        let mut count = 0usize;
        let mut in_word = false;
        for c in lowered.chars() {
            let word_char = c.is_alphanumeric() || c == '\'' || c == '-';
            if word_char && !in_word {
                count += 1;
            }
            if !word_char && !c.is_whitespace() && count > 0 {
                breaks.push(count - 1);
            }
            in_word = word_char;
        }
        breaks
    };
    let words: Vec<&str> = spaced.split_whitespace().collect();
    if words.is_empty() || words.len() > 24 {
        return None;
    }
    let (lead, start, trigger) = find_trigger(&words, &breaks)?;
    let after_product = trigger == Trigger::Price && lead == start;
    if !after_product
        && words[..lead]
            .iter()
            .any(|w| !OPENERS.contains(w) && !SUBJECTS.contains(w))
    {
        return None;
    }
    let mut position = start;
    let mut owned = false;
    while position < words.len() && FILLERS.contains(&words[position]) {
        owned |= matches!(words[position], "my" | "our" | "his" | "her" | "their");
        position += 1;
    }
    let mut object: Vec<String> = Vec::new();
    while position < words.len() && object.len() < 4 {
        let word = words[position];
        if STOPS.contains(&word) || word.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        // "(any) kind of X": the generic head gives way to what follows "of".
        if word == "of"
            && object
                .iter()
                .all(|w: &String| GENERIC.contains(&w.as_str()))
        {
            object.clear();
            position += 1;
            continue;
        }
        if !FILLERS.contains(&word) || !object.is_empty() {
            object.push(word.to_string());
        }
        let ends_here = breaks.contains(&position);
        position += 1;
        if ends_here {
            break;
        }
    }
    // "what kinds of X": the generic head came first; take what follows "of".
    if object.iter().all(|w| GENERIC.contains(&w.as_str())) && words.get(position) == Some(&"of") {
        position += 1;
        object.clear();
        while position < words.len() && object.len() < 4 && !STOPS.contains(&words[position]) {
            if !FILLERS.contains(&words[position]) {
                object.push(words[position].to_string());
            }
            position += 1;
        }
    }
    if object.is_empty() {
        return None;
    }
    let rest: Vec<&str> = words[position.min(words.len())..].to_vec();
    let more_follows = rest
        .windows(2)
        .any(|w| matches!(w[0], "and" | "also" | "plus" | "or") && !STOPS.contains(&w[1]))
        || rest.iter().any(|w| {
            matches!(
                *w,
                "open" | "deliver" | "delivery" | "hours" | "close" | "pickup" | "where"
            )
        });
    Some(ProductAsk {
        object,
        more_follows,
        availability: trigger == Trigger::Availability,
        owned,
    })
}

/// Where the ask begins (`lead`: the words before its first word) and where
/// the product's name starts.
fn find_trigger(words: &[&str], breaks: &[usize]) -> Option<(usize, usize, Trigger)> {
    for (i, word) in words.iter().enumerate() {
        // "do you (guys) sell X", "u got X", "can you make X"
        if SUBJECTS.contains(word) {
            let mut j = i + 1;
            if words
                .get(j)
                .is_some_and(|w| matches!(*w, "guys" | "all" | "folks"))
            {
                j += 1;
            }
            if words
                .get(j)
                .is_some_and(|w| matches!(*w, "still" | "ever" | "also"))
            {
                j += 1;
            }
            if words.get(j).is_some_and(|w| VERBS.contains(w)) {
                let asked = i == 0
                    || matches!(
                        words[i - 1],
                        "do" | "does" | "can" | "could" | "would" | "will" | "did"
                    );
                if asked {
                    let lead = if i > 0 { i - 1 } else { 0 };
                    return Some((lead, j + 1, Trigger::Availability));
                }
            }
        }
        // "got any X", "any X?"-free: only "got any" at the start.
        if i == 0 && *word == "got" && words.get(1) == Some(&"any") {
            return Some((0, 1, Trigger::Availability));
        }
        // "is there any X" / "are there any X"
        if matches!(*word, "is" | "are")
            && words.get(i + 1) == Some(&"there")
            && words.get(i + 2) == Some(&"any")
        {
            return Some((i, i + 2, Trigger::Availability));
        }
        // "how much (is|are|for) X"
        if *word == "how" && words.get(i + 1) == Some(&"much") {
            let mut j = i + 2;
            if words
                .get(j)
                .is_some_and(|w| matches!(*w, "is" | "are" | "for" | "would" | "will"))
            {
                j += 1;
                if words.get(j).is_some_and(|w| *w == "be") {
                    j += 1;
                }
            }
            return Some((i, j, Trigger::Price));
        }
        // "what (kinds|types|flavors) of X", "what X do you have"
        if *word == "what" || *word == "which" {
            let next = words.get(i + 1)?;
            if GENERIC.contains(next) && words.get(i + 2) == Some(&"of") {
                return Some((i, i + 3, Trigger::Kinds));
            }
            let verb_after = words[i + 1..]
                .windows(3)
                .position(|w| {
                    matches!(w[0], "do" | "does" | "can")
                        && SUBJECTS.contains(&w[1])
                        && VERBS.contains(&w[2])
                })
                .map(|p| p + i + 1);
            if let Some(end) = verb_after {
                if end > i + 1 && end - (i + 1) <= 4 {
                    return Some((i, i + 1, Trigger::Kinds));
                }
            }
        }
    }
    // "X price(s)" / "deep clean price?": the product is the few words just before.
    let last = words.len() - 1;
    if matches!(words[last], "price" | "prices" | "cost") && last > 0 {
        let mut start = last;
        while start > 0
            && last - start < 3
            && !STOPS.contains(&words[start - 1])
            && !breaks.contains(&(start - 1))
        {
            start -= 1;
        }
        return Some((start, start, Trigger::Price));
    }
    None
}

/// Which kind of product question a message asks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    /// "do you sell X", "got any X", "is there any X"
    Availability,
    /// "how much is X", "X price"
    Price,
    /// "what kinds of X", "what X do you have"
    Kinds,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(message: &str) -> Option<Vec<String>> {
        read_ask(message).map(|a| a.object)
    }

    #[test]
    fn product_questions_are_read() {
        let v = |s: &[&str]| Some(s.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        assert_eq!(object("do you sell bread"), v(&["bread"]));
        assert_eq!(object("do u sell dog treats"), v(&["dog", "treats"]));
        assert_eq!(object("how much is a dozen cupcakes"), v(&["cupcakes"]));
        assert_eq!(
            object("hi! do you guys have ice cream?"),
            v(&["ice", "cream"])
        );
        assert_eq!(
            object("what vegan things do you have"),
            v(&["vegan", "things"])
        );
        assert_eq!(object("what kinds of cookies do you make"), v(&["cookies"]));
        assert_eq!(object("got any croissants left"), v(&["croissants"]));
        assert_eq!(
            object("do you have sandwiches for lunch"),
            v(&["sandwiches"])
        );
        assert_eq!(object("cold brew price"), v(&["cold", "brew"]));
        assert_eq!(object("can you deliver to brooklyn"), None);
        assert_eq!(object("what time do you close"), None);
        assert_eq!(object("my cake was dry, do you have a manager"), None);
        // A pronoun starts a new clause: "day" is not "day you're open".
        assert_eq!(
            object("is there any day you're open on the weekend"),
            v(&["day"])
        );
        let owned = read_ask("would u buy my old mountain bike off me").unwrap();
        assert!(owned.owned, "{owned:?}");
        assert!(!read_ask("do you sell mountain bikes").unwrap().owned);
    }

    #[test]
    fn a_second_question_is_noticed() {
        assert!(
            read_ask("do you sell bread and are you open sunday")
                .unwrap()
                .more_follows
        );
        assert!(!read_ask("do you sell bread").unwrap().more_follows);
    }
}
