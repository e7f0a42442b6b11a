use crate::helpers::*;
use frontdesk::domain::Channel;
use frontdesk::startup::{self, Paths};

#[test]
fn editing_one_entry_re_embeds_only_that_entry_and_the_answer_changes() {
    let dir = scratch("reindex");
    let knowledge = dir.join("knowledge");
    copy_dir(&repo().join("knowledge"), &knowledge);
    let paths = Paths {
        knowledge: knowledge.clone(),
        models: repo().join("models"),
        data: dir.join("data"),
    };
    let embedder = startup::load_embedder(&paths).unwrap();

    let first = startup::build_assistant(&knowledge, &paths.cache_dir(), embedder.clone()).unwrap();
    assert!(
        first.index.stats.from_cache < 10,
        "a fresh cache only repeats duplicate texts: {:?}",
        first.index.stats
    );
    assert!(first.index.stats.embedded > 100);

    let faq = knowledge.join("faq.md");
    let text = std::fs::read_to_string(&faq).unwrap();
    let edited = text.replacen("\n## ", "\n## Do you sell pink unicorn balloons?\nAlso asked: unicorn balloons | balloons for a party\n\nYes, pink unicorn balloons are at the counter.\n\n## ", 1);
    std::fs::write(&faq, edited).unwrap();

    let second = startup::build_assistant(&knowledge, &paths.cache_dir(), embedder).unwrap();
    assert!(
        second.index.stats.embedded <= 4,
        "re-embedded {} texts",
        second.index.stats.embedded
    );
    assert!(second.index.stats.from_cache > 100);
    let outcome = second
        .ask("got any unicorn balloons?", Channel::Webchat, &[])
        .unwrap();
    assert_eq!(
        outcome.decision.sources[0].as_str(),
        "faq.md#do-you-sell-pink-unicorn-balloons"
    );
}

#[test]
fn a_broken_edit_keeps_the_last_good_knowledge_loadable_elsewhere() {
    // The loader refuses the broken folder as a whole; the caller keeps its index.
    let dir = scratch("broken-edit");
    let knowledge = dir.join("knowledge");
    copy_dir(&repo().join("knowledge"), &knowledge);
    assert!(frontdesk::knowledge::KnowledgeBase::load(&knowledge).is_ok());
    std::fs::write(
        knowledge.join("menu.toml"),
        "[[item]]\nname = \"Bagel\"\nprice = \"cheap\"\n",
    )
    .unwrap();
    let error = frontdesk::knowledge::KnowledgeBase::load(&knowledge).unwrap_err();
    assert!(error.to_string().starts_with("menu.toml:3:"), "{error}");
}
