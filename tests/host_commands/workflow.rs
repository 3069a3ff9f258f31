//! The commands of a GitHub Actions workflow's `run:` steps: the example workflow's steps that
//! a test runs (by name) with bash on this machine.

use crate::shell::shell_commands;

/// A step of a workflow that has a `run:` script.
struct Step {
    name: String,
    /// The line of the script's first line, minus one.
    line: usize,
    script: String,
}

/// The commands of the workflow's steps whose names the tests' text (`tests`) holds quoted,
/// on the workflow's lines.
pub fn tested_steps_commands(yaml: &str, tests: &str) -> Vec<(usize, String)> {
    workflow_steps(yaml)
        .iter()
        .filter(|step| tests.contains(&format!("\"{}\"", step.name)))
        .flat_map(step_commands)
        .collect()
}

/// The commands of a step's script, on the workflow's lines.
fn step_commands(step: &Step) -> Vec<(usize, String)> {
    let found = shell_commands(&step.script);
    found.into_iter().map(|(l, c)| (step.line + l, c)).collect()
}

/// The steps of a GitHub Actions workflow that have a `run:` script.
fn workflow_steps(yaml: &str) -> Vec<Step> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut steps = vec![];
    let mut name = String::new();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(item) = trimmed.strip_prefix("- ") {
            name = item
                .strip_prefix("name:")
                .map(|s| s.trim().trim_matches('"').to_string())
                .unwrap_or_default();
        }
        let Some(run) = trimmed
            .strip_prefix("run:")
            .or_else(|| trimmed.strip_prefix("- run:"))
        else {
            continue;
        };
        let name = name.clone();
        let run = run.trim();
        if run == "|" || run == ">" {
            let indent = line.len() - trimmed.len();
            let body: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            let script = body.join("\n");
            steps.push(Step {
                name,
                line: n + 1,
                script,
            });
        } else {
            let script = run.to_string();
            steps.push(Step {
                name,
                line: n,
                script,
            });
        }
    }
    steps
}

#[test]
fn workflow_steps_are_found_with_their_lines() {
    let yaml = "jobs:\n  plan:\n    steps:\n      - uses: actions/checkout@v4\n      - name: Load\n        run: |\n          eval \"$(ssh-agent -s)\" >/dev/null\n          printf '%s\\n' \"$KEY\" | ssh-add -\n      - name: Plan\n        run: infra plan\n";
    let steps = workflow_steps(yaml);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].name, "Load");
    assert_eq!(
        step_commands(&steps[0]),
        [(7, "ssh-agent".to_string()), (8, "ssh-add".to_string())]
    );
    assert_eq!(
        (steps[1].name.as_str(), steps[1].script.as_str()),
        ("Plan", "infra plan")
    );
}
