//! Bad input never panics the stack-file parser: random edits of the reference stack, and random
//! text, give either a stack or errors that point inside the file.

use std::path::Path;

use proptest::prelude::*;

const REFERENCE: &str = include_str!("../stacks/aws-example.toml");

fn read(_: &Path) -> std::io::Result<String> {
    Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB fuzz".to_string())
}

fn check(text: &str) {
    let lines = text.lines().count().max(1);
    match infra::config::parse("stacks/fuzz.toml", text, &Default::default(), &read) {
        Ok(_) => {}
        Err(errors) => {
            assert!(!errors.errors.is_empty());
            for e in &errors.errors {
                assert!(
                    e.location.line >= 1 && e.location.line <= lines + 1,
                    "{e} points outside {lines} lines"
                );
                assert!(e.location.column >= 1, "{e}");
                assert!(!e.message.is_empty());
            }
        }
    }
}

/// An edit of the reference stack: delete, duplicate or replace a line, or splice in a value.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Replace(usize, String),
    Value(usize, String),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let values = prop_oneof![
        Just("\"\"".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"{{ nope }}\"".to_string()),
        Just("\"{{\"".to_string()),
        Just("\"10.0.0.0/99\"".to_string()),
        Just("\"ü\u{0}\"".to_string()),
        "[ -~]{0,12}".prop_map(|s| s),
    ];
    let line = 0usize..200;
    let edit = prop_oneof![
        line.clone().prop_map(Edit::Delete),
        line.clone().prop_map(Edit::Duplicate),
        (line.clone(), "[ -~]{0,30}").prop_map(|(l, s)| Edit::Replace(l, s)),
        (line, values).prop_map(|(l, v)| Edit::Value(l, v)),
    ];
    proptest::collection::vec(edit, 1..6)
}

fn apply(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = REFERENCE.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Replace(i, s) if !lines.is_empty() => lines[i % n] = s.clone(),
            Edit::Value(i, v) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some(eq) = l.find('=') {
                    *l = format!("{}= {v}", &l[..eq]);
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn edited_reference_stacks_never_panic(e in edits()) {
        check(&apply(&e));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }
}

#[test]
fn the_reference_stack_parses() {
    let loaded =
        infra::config::parse("stacks/fuzz.toml", REFERENCE, &Default::default(), &read).unwrap();
    assert_eq!(loaded.stack.network.subnets.len(), 3);
}
