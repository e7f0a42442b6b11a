//! `menu.toml`: the products a business sells, with prices and allergens.

use super::{line_of, toml_error, Issue};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuFile {
    currency: Option<String>,
    #[serde(default)]
    item: Vec<ItemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    name: Spanned<String>,
    category: Option<String>,
    description: Option<String>,
    price: Option<f64>,
    prices: Option<Spanned<toml::Table>>,
    unit: Option<String>,
    #[serde(default)]
    allergens: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    available: Option<String>,
    #[serde(default)]
    also_asked: Vec<String>,
}

/// One price: `None` label for a single price, `Some("8-inch")` for a size.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub label: Option<String>,
    pub amount: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MenuItem {
    pub name: String,
    pub line: usize,
    pub category: Option<String>,
    pub description: Option<String>,
    pub prices: Vec<Price>,
    pub unit: Option<String>,
    pub allergens: Vec<String>,
    pub tags: Vec<String>,
    pub available: Option<String>,
    pub also_asked: Vec<String>,
}

/// "$4.50", always with cents so "$42" and "$42.00" both appear in the text.
pub fn format_price(currency: &str, amount: f64) -> String {
    format!("{currency}{amount:.2}")
}

impl MenuItem {
    /// "Country Sourdough: $9.00 (loaf)": the name, prices and unit as menu.toml
    /// states them; `describe` starts with it and menu listings are made of it.
    pub fn price_line(&self, currency: &str) -> String {
        let prices: Vec<String> = self
            .prices
            .iter()
            .map(|p| match &p.label {
                Some(label) => format!("{label} {}", format_price(currency, p.amount)),
                None => format_price(currency, p.amount),
            })
            .collect();
        let mut line = format!("{}: {}", self.name, prices.join(", "));
        if let Some(unit) = &self.unit {
            line.push_str(&format!(" ({unit})"));
        }
        line
    }

    /// The text a customer is sent for this item (also what is indexed).
    /// "Allergens: none listed." is said only on a menu that lists allergens
    /// somewhere (`menu_lists_allergens`); a dentist's treatments have none.
    pub fn describe(&self, currency: &str, menu_lists_allergens: bool) -> String {
        let mut text = self.price_line(currency);
        text.push('.');
        if let Some(description) = &self.description {
            text.push(' ');
            text.push_str(description.trim());
            if !description.trim_end().ends_with(['.', '!', '?']) {
                text.push('.');
            }
        }
        if !self.tags.is_empty() {
            text.push_str(&format!(" {}.", capitalise(&self.tags.join(", "))));
        }
        if self.allergens.is_empty() {
            if menu_lists_allergens {
                text.push_str(" Allergens: none listed.");
            }
        } else {
            text.push_str(&format!(" Allergens: {}.", self.allergens.join(", ")));
        }
        if let Some(available) = &self.available {
            text.push_str(&format!(" Available: {available}."));
        }
        text
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Returns the items and the file's currency override (if any).
pub fn parse(path: &str, text: &str, issues: &mut Vec<Issue>) -> (Vec<MenuItem>, Option<String>) {
    let file: MenuFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            issues.push(toml_error(path, text, &error));
            return (Vec::new(), None);
        }
    };
    let mut items = Vec::new();
    for item in file.item {
        let line = line_of(text, item.name.span().start);
        let name = item.name.get_ref().trim().to_string();
        if name.is_empty() {
            issues.push(Issue::error(path, line, "menu item has an empty name"));
            continue;
        }
        let mut prices = Vec::new();
        if let Some(amount) = item.price {
            prices.push(Price {
                label: None,
                amount,
            });
        }
        if let Some(table) = &item.prices {
            let table_line = line_of(text, table.span().start);
            for (label, value) in table.get_ref() {
                let amount = match value {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                };
                match amount {
                    Some(amount) => prices.push(Price {
                        label: Some(label.clone()),
                        amount,
                    }),
                    None => issues.push(Issue::error(
                        path,
                        table_line,
                        format!("price for `{label}` of `{name}` must be a number like 4.50"),
                    )),
                }
            }
        }
        if prices.is_empty() {
            issues.push(Issue::error(
                path,
                line,
                format!("menu item `{name}` needs `price` or `prices`"),
            ));
            continue;
        }
        if let Some(bad) = prices
            .iter()
            .find(|p| !(p.amount.is_finite() && p.amount >= 0.0))
        {
            issues.push(Issue::error(
                path,
                line,
                format!("`{name}` has a negative price {}", bad.amount),
            ));
            continue;
        }
        items.push(MenuItem {
            name,
            line,
            category: item.category,
            description: item.description,
            prices,
            unit: item.unit,
            allergens: item.allergens,
            tags: item.tags,
            available: item.available,
            also_asked: item.also_asked,
        });
    }
    (items, file.currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_one_price_or_sizes() {
        let mut issues = Vec::new();
        let (items, _) = parse(
            "menu.toml",
            "[[item]]\nname = \"Red Velvet Cake\"\nprices = { \"6-inch\" = 28, \"8-inch\" = 42.5 }\nallergens = [\"wheat\"]\n\n[[item]]\nname = \"Croissant\"\nprice = 3.75\nunit = \"each\"\n",
            &mut issues,
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].prices[1],
            Price {
                label: Some("8-inch".into()),
                amount: 42.5
            }
        );
        assert_eq!(items[1].line, 7);
        let text = items[0].describe("$", true);
        assert!(text.contains("6-inch $28.00, 8-inch $42.50"), "{text}");
        assert!(text.contains("Allergens: wheat."));
    }

    #[test]
    fn item_without_price_is_an_error_at_its_line() {
        let mut issues = Vec::new();
        let (items, _) = parse("menu.toml", "[[item]]\nname = \"Bagel\"\n", &mut issues);
        assert!(items.is_empty());
        assert_eq!(
            issues[0].to_string(),
            "menu.toml:2: error: menu item `Bagel` needs `price` or `prices`"
        );
    }

    #[test]
    fn unknown_key_and_bad_syntax_are_errors_with_lines() {
        let mut issues = Vec::new();
        parse(
            "menu.toml",
            "[[item]]\nname = \"Bagel\"\nprice = 2\ncolour = \"red\"\n",
            &mut issues,
        );
        assert!(
            issues[0].to_string().starts_with("menu.toml:4:"),
            "{}",
            issues[0]
        );
        assert!(issues[0].message.contains("colour"));
        let mut issues = Vec::new();
        parse(
            "menu.toml",
            "[[item]]\nname = \"Bagel\nprice = 2\n",
            &mut issues,
        );
        assert!(
            issues[0].to_string().starts_with("menu.toml:2:"),
            "{}",
            issues[0]
        );
    }
}
