//! `env_file:` as Docker reads it (docker/cli `opts.ParseEnvFile`): one `KEY=value` a line, the
//! value taken literally (no quotes removed, no interpolation); blank lines and lines starting
//! with `#` skipped; a line with a key alone takes the variable from the environment, or is
//! dropped when it is unset. <https://docs.docker.com/reference/cli/docker/container/run/#env>

use crate::model::Vars;

/// The variables of one env file, in file order. `env` answers a key-only line.
pub fn parse(text: &str, env: &Vars) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: variable {key:?} contains whitespace or is empty",
                n + 1
            ));
        }
        match value {
            Some(v) => out.push((key.to_string(), v.to_string())),
            None => {
                if let Some(v) = env.get(key) {
                    out.push((key.to_string(), v.clone()));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_literally() {
        let env = Vars::from([("FROM_ENV".to_string(), "e".to_string())]);
        let text = "# comment\n\n  A=1\nB=\"quoted\" \nC=x=y\nFROM_ENV\nUNSET\nD=$HOME\n";
        assert_eq!(
            parse(text, &env).unwrap(),
            [
                ("A", "1"),
                ("B", "\"quoted\" "),
                ("C", "x=y"),
                ("FROM_ENV", "e"),
                ("D", "$HOME")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(parse("BAD KEY=1\n", &env).unwrap_err().contains("line 1"));
    }
}
