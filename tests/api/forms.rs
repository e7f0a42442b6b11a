//! Forms (forms.toml): `ask --json` shows the form, `eval --json` reports the
//! §7 `forms` object, `check` reports a bad forms.toml, and through `serve` a
//! form's state survives a restart mid-form and the completed form's fields
//! land on the queue item (SQLite and PostgreSQL).

use crate::helpers::*;
use crate::serve_helpers::*;
use frontdesk::store::View;

#[test]
fn ask_json_starts_the_custom_cake_form_with_every_value_in_the_message() {
    let value = json(&frontdesk(&[
        "ask",
        "--json",
        "--now",
        "2026-03-10T14:30:00",
        "can I get a birthday cake for saturday the 21st with a unicorn on it, for 20 people",
    ]));
    assert_eq!(value["action"], "collect", "{value}");
    assert_eq!(value["form"]["name"], "custom_cake", "{value}");
    assert_eq!(value["form"]["fields"]["date"], "2026-03-21", "{value}");
    assert_eq!(value["form"]["fields"]["servings"], 20, "{value}");
    // The design was not asked yet: the unicorn is not stored as free text.
    assert!(value["form"]["fields"].get("design").is_none(), "{value}");
    let missing: Vec<&str> = value["form"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        ["flavour", "design", "photo", "name", "phone"],
        "{value}"
    );
    assert!(
        value["reply"].as_str().unwrap().contains("Which flavour"),
        "{value}"
    );
}

#[test]
fn ask_json_refuses_a_date_inside_the_notice_period_in_one_message() {
    let value = json(&frontdesk(&[
        "ask",
        "--json",
        "--now",
        "2026-03-10T14:30:00",
        "can you make a birthday cake for saturday",
    ]));
    assert_eq!(value["action"], "collect", "{value}");
    assert!(value["form"]["fields"].get("date").is_none(), "{value}");
    let reply = value["reply"].as_str().unwrap();
    assert!(
        reply.contains("7 days' notice")
            && reply.contains("Tuesday 17 March")
            && reply.ends_with("Which date works for you?"),
        "{reply}"
    );
}

#[test]
fn eval_json_reports_the_forms_object_on_both_sample_businesses() {
    for (knowledge, questions) in [
        ("knowledge", "eval/forms.jsonl"),
        ("eval/bike-shop", "eval/bike-shop-forms.jsonl"),
    ] {
        let value = json(&frontdesk(&[
            "--knowledge",
            knowledge,
            "eval",
            "--questions",
            questions,
            "--json",
        ]));
        let forms = &value["forms"];
        assert!(forms["lines"].as_u64().unwrap() >= 20, "{forms}");
        assert_eq!(forms["wrong_dates"], 0, "{questions}: {forms}");
        assert!(
            forms["form_started_ok"].as_f64().unwrap() >= 0.9,
            "{questions}: {forms}"
        );
        assert!(
            forms["fields_exact"].as_f64().unwrap() >= 0.8,
            "{questions}: {forms}"
        );
        assert!(
            forms["field_accuracy"]["date"].as_f64().is_some(),
            "{forms}"
        );
    }
    // Question sets without forms expectations say so with null.
    let value = json(&frontdesk(&[
        "eval",
        "--questions",
        "eval/injection.jsonl",
        "--json",
    ]));
    assert!(value["forms"].is_null());
}

#[test]
fn check_reports_a_forms_toml_mistake_with_its_line() {
    let dir = scratch("forms-check");
    copy_dir(&repo().join("knowledge"), &dir);
    let forms = std::fs::read_to_string(dir.join("forms.toml")).unwrap();
    let broken = forms.replace("min = 6 ", "minimum = 6 ").replace(
        "\"faq.md#do-you-make-custom-cakes\"",
        "\"faq.md#no-such-question\"",
    );
    std::fs::write(dir.join("forms.toml"), broken).unwrap();
    let output = frontdesk(&["--knowledge", dir.to_str().unwrap(), "check"]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert!(
        errors.contains("forms.toml:") && errors.contains("minimum"),
        "{errors}"
    );
    // The unknown key stops the file before sources are checked; fix it and
    // the missing source is reported.
    let only_source = forms.replace(
        "\"faq.md#do-you-make-custom-cakes\"",
        "\"faq.md#no-such-question\"",
    );
    std::fs::write(dir.join("forms.toml"), only_source).unwrap();
    let output = frontdesk(&["--knowledge", dir.to_str().unwrap(), "check"]);
    let errors = stderr(&output);
    assert!(
        errors.contains("faq.md#no-such-question") && errors.contains("does not exist"),
        "{errors}"
    );
}

/// A date the bakery can take, about three weeks out, as a customer writes it
/// ("April 11") and as the queue item shows it ("2026-04-11").
fn open_date_three_weeks_out() -> (String, String) {
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let mut date = jiff::Timestamp::now().to_zoned(zone).date();
    date = date.checked_add(jiff::Span::new().days(21)).unwrap();
    // Closed on Mondays and over Christmas and New Year.
    while date.weekday() == jiff::civil::Weekday::Monday
        || (date.month() == 12 && (date.day() == 25 || date.day() == 26))
        || (date.month() == 1 && date.day() == 1)
    {
        date = date.tomorrow().unwrap();
    }
    (date.strftime("%B %-d").to_string(), date.to_string())
}

async fn say(app: &TestApp, wamid: &str, text: &str, sends_after: usize) {
    let body = whatsapp_payload("15550001234", wamid, text);
    assert_eq!(
        app.post_whatsapp(&body, Some(sign(&body))).await.status(),
        200
    );
    assert!(
        eventually(30, || app.fake.sends().len() >= sends_after).await,
        "no reply to {text:?}; sent so far: {:?}",
        app.fake.sends()
    );
}

async fn form_survives_a_restart_and_lands_on_the_queue_item(name: &str, url: Option<String>) {
    let providers = start_fake_providers().await;
    let first = spawn_app(&format!("{name}-a"), url.clone(), Some(providers.clone())).await;
    // spawn_app's scratch data dir (SQLite lives there).
    let data_dir = repo()
        .join("target")
        .join("test-scratch")
        .join(format!("{name}-a-{}", std::process::id()));
    say(
        &first,
        "wamid.form.1",
        "I'd like to order a custom cake for 20 people",
        1,
    )
    .await;
    let asked = first.fake.sends()[0].text.clone();
    assert!(asked.contains("What date"), "{asked}");
    first.stop().await;

    // A new process on the same database picks the form up where it was.
    let second = spawn_app_with(&format!("{name}-b"), url, Some(providers), |settings| {
        settings.data_dir = data_dir.clone();
    })
    .await;
    let (written, iso) = open_date_three_weeks_out();
    say(
        &second,
        "wamid.form.2",
        &format!("{written}, chocolate please"),
        2,
    )
    .await;
    let reply = second.fake.sends()[1].text.clone();
    assert!(
        reply.contains("design"),
        "the form did not survive the restart: {reply}"
    );
    say(&second, "wamid.form.3", "skip", 3).await;
    say(&second, "wamid.form.4", "Sam Lee", 4).await;
    // The WhatsApp number is known: no question for it, it is read back instead.
    let confirmation = second.fake.sends()[3].text.clone();
    assert!(
        confirmation.contains("Servings: 20")
            && confirmation.contains("+15550001234")
            && confirmation.contains("Is that all correct?"),
        "{confirmation}"
    );
    // Another number given at the read-back replaces it.
    say(
        &second,
        "wamid.form.5",
        "actually my number is 718 555 0142",
        5,
    )
    .await;
    let confirmation = second.fake.sends()[4].text.clone();
    assert!(
        confirmation.contains("Is that all correct?"),
        "{confirmation}"
    );
    say(&second, "wamid.form.6", "yes", 6).await;

    let queue = second.state.store.open_queue().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].reason, "high_value");
    let listed = second
        .state
        .store
        .list_conversations(View::NeedsYou, None, 10)
        .await
        .unwrap();
    let fields = &listed[0].queue_item.as_ref().expect("a queue item").fields;
    assert_eq!(fields["date"], iso.as_str(), "{fields}");
    assert_eq!(fields["servings"], 20, "{fields}");
    assert_eq!(fields["flavour"], "chocolate", "{fields}");
    assert_eq!(fields["name"], "Sam Lee", "{fields}");
    assert_eq!(fields["phone"], "+17185550142", "{fields}");
    assert!(fields.get("design").is_none(), "{fields}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_state_survives_a_restart_on_sqlite() {
    form_survives_a_restart_and_lands_on_the_queue_item("forms-restart-sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_state_survives_a_restart_on_postgres() {
    let Some(url) = postgres_database("forms_restart").await else {
        eprintln!("DATABASE_URL_TEST is not set: skipping the PostgreSQL variant");
        return;
    };
    form_survives_a_restart_and_lands_on_the_queue_item("forms-restart-postgres", Some(url)).await;
}
