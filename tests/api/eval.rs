use crate::helpers::*;

fn eval_json(knowledge: &str, questions: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "--knowledge",
        knowledge,
        "--questions",
        questions,
        "--json",
    ];
    args.extend_from_slice(extra);
    json(&frontdesk(&args))
}

#[test]
fn bakery_eval_holds_the_regression_floor() {
    let report = eval_json("knowledge", "eval/bakery.jsonl", &[]);
    let top1 = report["source_top1"].as_f64().unwrap();
    let recall = report["escalation_recall"].as_f64().unwrap();
    assert!(top1 >= 0.88, "source_top1 {top1} < 0.88: {report}");
    assert!(
        recall >= 0.80,
        "escalation_recall {recall} < 0.80: {report}"
    );
    assert_eq!(report["ungrounded_replies"], 0, "{report}");
    for key in [
        "questions",
        "answer_expected",
        "escalate_expected",
        "source_recall_at_5",
        "escalation_precision",
        "false_escalation_rate",
        "mentions_ok",
        "latency_ms",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn second_business_eval_stays_green() {
    let report = eval_json(
        "eval/bike-shop",
        "eval/bike-shop.jsonl",
        &["--retrieval-only"],
    );
    let top1 = report["source_top1"].as_f64().unwrap();
    let recall = report["escalation_recall"].as_f64().unwrap();
    assert!(top1 >= 0.80, "source_top1 {top1}: {report}");
    assert!(recall >= 0.74, "escalation_recall {recall}: {report}");
}

#[test]
fn retrieval_only_leaves_reply_metrics_null() {
    let report = eval_json("knowledge", "eval/bakery.jsonl", &["--retrieval-only"]);
    assert!(report["mentions_ok"].is_null(), "{report}");
    assert!(report["ungrounded_replies"].is_null(), "{report}");
    assert!(report["escalation_recall"].as_f64().is_some());
}

#[test]
fn a_broken_question_file_names_its_line() {
    let dir = scratch("bad-questions");
    let file = dir.join("q.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"a\",\"message\":\"hi\",\"expect\":{\"action\":\"answer\"}}\nnot json\n",
    )
    .unwrap();
    let output = frontdesk(&["eval", "--questions", file.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("q.jsonl:2:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn generated_replies_on_real_model_output_are_grounded() {
    // The real GGUF writes the replies; the verifier must let nothing ungrounded through.
    let report = eval_json(
        "knowledge",
        "eval/bakery.jsonl",
        &["--generate", "--limit", "6"],
    );
    assert_eq!(report["questions"], 6);
    assert_eq!(report["ungrounded_replies"], 0, "{report}");
}
