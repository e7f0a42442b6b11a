//! BM25 over every entry with tantivy: the phrasings (heading + `Also asked`) and
//! the answer text, English-stemmed. Held in RAM: rebuilding it for thousands of
//! entries takes well under a second, so there is nothing worth persisting.
//!
//! The index never changes after it is built, so one searcher is kept, with
//! each document's entry position read once at build: a query maps its hits
//! to entries without reading stored documents.

use crate::knowledge::Entry;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, INDEXED, STORED,
};
use tantivy::{doc, DocAddress, Index, Searcher, TantivyDocument, Term};

/// The lexical schema in one place.
struct Fields {
    entry: Field,
    phrasings: Field,
    body: Field,
}

pub struct LexicalIndex {
    index: Index,
    /// The one searcher over the committed index (it is never written again).
    searcher: Searcher,
    /// Per segment (by ordinal), per document id: the entry position.
    entries: Vec<Vec<usize>>,
    fields: Fields,
}

const PHRASING_BOOST: f32 = 2.0;

impl LexicalIndex {
    pub fn build(entries: &[Entry]) -> tantivy::Result<LexicalIndex> {
        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            entry: builder.add_u64_field("entry", INDEXED | STORED),
            phrasings: builder.add_text_field("phrasings", text.clone()),
            body: builder.add_text_field("body", text),
        };
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 30_000_000)?;
        for (position, entry) in entries.iter().enumerate() {
            let mut body = entry.answer.clone();
            if let Some(context) = &entry.context {
                body.push('\n');
                body.push_str(context);
            }
            writer.add_document(doc!(
                fields.entry => position as u64,
                fields.phrasings => entry.phrasings.join("\n"),
                fields.body => body,
            ))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        reader.reload()?;
        let searcher = reader.searcher();
        let mut entries = Vec::with_capacity(searcher.segment_readers().len());
        for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
            let mut positions = Vec::with_capacity(segment.max_doc() as usize);
            for doc_id in 0..segment.max_doc() {
                let document: TantivyDocument =
                    searcher.doc(DocAddress::new(ordinal as u32, doc_id))?;
                // Every document has its entry; a missing one maps to no entry.
                let position = document
                    .get_first(fields.entry)
                    .and_then(|value| value.as_u64())
                    .map_or(usize::MAX, |p| p as usize);
                positions.push(position);
            }
            entries.push(positions);
        }
        Ok(LexicalIndex {
            index,
            searcher,
            entries,
            fields,
        })
    }

    /// Top `limit` entries by BM25 as (entry position, score). Query text is
    /// customer text, not query syntax: each token becomes an optional term.
    pub fn search(&self, query: &str, limit: usize) -> Vec<(usize, f32)> {
        let mut analyzer = match self.index.tokenizer_for_field(self.fields.phrasings) {
            Ok(analyzer) => analyzer,
            Err(_) => return Vec::new(),
        };
        let mut tokens = Vec::new();
        let mut stream = analyzer.token_stream(query);
        while stream.advance() {
            tokens.push(stream.token().text.clone());
        }
        tokens.sort();
        tokens.dedup();
        if tokens.is_empty() {
            return Vec::new();
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for token in &tokens {
            for (field, boost) in [
                (self.fields.phrasings, PHRASING_BOOST),
                (self.fields.body, 1.0),
            ] {
                let term = TermQuery::new(
                    Term::from_field_text(field, token),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(term), boost)),
                ));
            }
        }
        let query = BooleanQuery::new(clauses);
        let Ok(top) = self
            .searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
        else {
            return Vec::new();
        };
        top.into_iter()
            .filter_map(|(score, address)| {
                let position = *self
                    .entries
                    .get(address.segment_ord as usize)?
                    .get(address.doc_id as usize)?;
                (position != usize::MAX).then_some((position, score))
            })
            .collect()
    }
}
