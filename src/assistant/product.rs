//! The product-question branch of `decide` ("do you sell bread?", "what
//! vegan things do you have?"): a menu category or tag is listed from
//! menu.toml through [`super::catalog`]; a product the knowledge never names
//! makes the message escalate `out_of_scope`.

use super::policy::ReplySource;
use super::{catalog, reply, Assistant, ReplyDetail};
use crate::domain::{Channel, SourceId};
use crate::knowledge::EntryKind;

/// Confidence reported for a listing composed from menu.toml's categories or tags.
pub(super) const MENU_LISTING_CONFIDENCE: f32 = 0.9;

/// A product question answered from the menu's structure rather than by retrieval.
pub(super) enum ProductAnswer {
    Listing(catalog::Listing),
    NotCovered(String),
}

impl Assistant {
    /// The product answer for a message no rule escalates: for a short one
    /// (no `sentences`), a listing or a product named nowhere; for a long one,
    /// any sentence asking for a product nothing names. `top_entry` is the
    /// best retrieved entry.
    pub(super) fn product_answer(
        &self,
        expanded: &str,
        sentences: &[String],
        top_entry: Option<usize>,
    ) -> Option<ProductAnswer> {
        if sentences.is_empty() {
            catalog::read_ask(expanded).and_then(|ask| {
                let resolution = self.catalog.resolve(&ask, top_entry)?;
                match resolution {
                    catalog::Resolution::Group { label, items } if !ask.more_follows => {
                        Some(ProductAnswer::Listing(self.catalog.listing(&label, &items)))
                    }
                    catalog::Resolution::NotCovered { product } => {
                        Some(ProductAnswer::NotCovered(product))
                    }
                    _ => None,
                }
            })
        } else {
            // A long message: any sentence asking for a product nothing names.
            sentences.iter().find_map(|sentence| {
                let ask = catalog::read_ask(sentence)?;
                match self.catalog.resolve(&ask, top_entry)? {
                    catalog::Resolution::NotCovered { product } => {
                        Some(ProductAnswer::NotCovered(product))
                    }
                    _ => None,
                }
            })
        }
    }

    /// The reply for a menu listing: the listing's text fitted to the
    /// channel; the listed items' sources lead the decision's sources.
    pub(super) fn listing_reply(
        &self,
        listing: &catalog::Listing,
        sources: &mut Vec<SourceId>,
        reply_detail: &mut ReplyDetail,
        channel: Channel,
    ) -> String {
        let knowledge = &self.index.knowledge;
        let mut listed: Vec<SourceId> = listing
            .entries
            .iter()
            .map(|&e| knowledge.entries[e].source.clone())
            .collect();
        for source in sources.drain(..) {
            if !listed.contains(&source) {
                listed.push(source);
            }
        }
        *sources = listed;
        reply_detail.kinds = vec![EntryKind::MenuItem];
        reply_detail.chosen = Some(ReplySource::OwnerText);
        let sent = reply::fit_to_channel(&listing.text, channel, &knowledge.business.name);
        reply_detail.owner_reply = Some(sent.clone());
        sent
    }
}
