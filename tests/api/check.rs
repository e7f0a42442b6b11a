use crate::helpers::*;

#[test]
fn shipped_knowledge_folders_pass_check() {
    for folder in ["knowledge", "eval/bike-shop"] {
        let output = frontdesk(&["check", "--knowledge", folder]);
        assert!(output.status.success(), "{folder}: {}", stderr(&output));
        assert!(stdout(&output).contains("ok"), "{}", stdout(&output));
    }
}

#[test]
fn broken_files_are_reported_as_path_and_line_and_check_fails() {
    let dir = scratch("broken-knowledge");
    std::fs::write(
        dir.join("business.toml"),
        "name = \"Shop\"\ntimezone = \"UTC\"\nopening_hours = \"9-5\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("menu.toml"),
        "[[item]]\nname = \"Bagel\"\n\n[[item]]\nname = \"Muffin\"\nprice = 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("faq.md"),
        "## Fine?\nYes.\n\n##\nAn answer with no question.\n",
    )
    .unwrap();
    let output = frontdesk(&["check", "--knowledge", dir.to_str().unwrap()]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert!(
        errors.contains("business.toml:3: error:") && errors.contains("opening_hours"),
        "{errors}"
    );
    assert!(
        errors.contains("menu.toml:2: error: menu item `Bagel` needs `price` or `prices`"),
        "{errors}"
    );
    assert!(errors.contains("faq.md:4: error:"), "{errors}");
}

#[test]
fn suspicious_content_gives_warnings_not_errors() {
    let dir = scratch("warn-knowledge");
    std::fs::write(
        dir.join("business.toml"),
        "name = \"Shop\"\ntimezone = \"UTC\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("menu.toml"),
        "[[item]]\nname = \"Red Velvet Cake\"\nprice = 42\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("faq.md"),
        "## How much is the red velvet?\nAlso asked: price of red velvet\n\nThe Red Velvet Cake is $40.\n\n## Empty one\n\n## Red velvet cost\nAlso asked: price of red velvet\n\nSee the menu.\n",
    )
    .unwrap();
    let output = frontdesk(&["check", "--knowledge", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let warnings = stderr(&output);
    assert!(
        warnings.contains(
            "faq.md:4: warning: says $40 for Red Velvet Cake, but menu.toml:2 has $42.00"
        ),
        "{warnings}"
    );
    assert!(warnings.contains("has no answer text"), "{warnings}");
    assert!(
        warnings.contains("is also a phrasing of faq.md#how-much-is-the-red-velvet"),
        "{warnings}"
    );
}
