//! Edits a stack file's node counts in place with toml_edit: comments, order and layout stay as
//! the user wrote them, so the change reads well in a pull request.

use toml_edit::{DocumentMut, Item, Table, value};

/// The stack file text with `[nodes.workers] count` and/or `[nodes.managers] count` set.
pub fn set_counts(
    text: &str,
    workers: Option<usize>,
    managers: Option<usize>,
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let nodes = doc
        .get_mut("nodes")
        .and_then(Item::as_table_mut)
        .ok_or("the stack file has no [nodes] table")?;
    for (pool, count) in [("workers", workers), ("managers", managers)] {
        let Some(count) = count else { continue };
        if !nodes.contains_key(pool) {
            nodes.insert(pool, Item::Table(Table::new()));
        }
        let table = nodes[pool]
            .as_table_like_mut()
            .ok_or_else(|| format!("nodes.{pool} is not a table"))?;
        match table.get_mut("count") {
            // Keep the value's own decoration (e.g. a trailing comment).
            Some(item) if item.is_value() => {
                let decor = item.as_value().map(|v| v.decor().clone());
                *item = value(count as i64);
                if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
                    *v.decor_mut() = decor;
                }
            }
            _ => {
                table.insert("count", value(count as i64));
            }
        }
    }
    Ok(doc.to_string())
}

/// The counts the text holds now: (workers, managers).
pub fn counts(text: &str) -> (Option<i64>, Option<i64>) {
    let doc: Result<DocumentMut, _> = text.parse();
    let get = |pool: &str| {
        doc.as_ref()
            .ok()?
            .get("nodes")?
            .get(pool)?
            .get("count")?
            .as_integer()
    };
    (get("workers"), get("managers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = r#"# Production.
region = "eu-west-1"

[nodes]
public_key_file = "id.pub"   # the deploy key

# Raft needs an odd number.
[nodes.managers]
count = 3

# Workers carry the web tier.
[nodes.workers]
count = 2 # scaled by `infra scale-nodes`
instance_type = "t3.large"
"#;

    #[test]
    fn keeps_comments_and_layout() {
        let edited = set_counts(STACK, Some(5), Some(1)).unwrap();
        insta::assert_snapshot!(edited);
        assert_eq!(counts(&edited), (Some(5), Some(1)));
    }

    #[test]
    fn adds_a_workers_table_when_there_is_none() {
        let text = "[nodes]\npublic_key_file = \"id.pub\"\n\n[nodes.managers]\ncount = 1\n";
        let edited = set_counts(text, Some(2), None).unwrap();
        assert_eq!(counts(&edited), (Some(2), Some(1)));
        assert!(set_counts("region = \"x\"", Some(1), None).is_err());
    }
}
