//! Reads the committed insta snapshots and lays one scenario's normalised output from
//! every kernel side by side, marking the lines where kernels disagree.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The snapshot texts of `scenario`, one per kernel key, sorted by key.
pub fn load(dir: &Path, scenario: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let prefix = format!("{scenario}@");
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(key) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".snap")) else { continue };
        let text = std::fs::read_to_string(&path)?;
        out.push((key.to_string(), body(&text).to_string()));
    }
    if out.is_empty() {
        bail!("no snapshots for scenario '{scenario}' in {}", dir.display());
    }
    out.sort();
    Ok(out)
}

/// The content of an insta snapshot file: what follows its `---` header.
pub fn body(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n") else { return text };
    match rest.find("\n---\n") {
        Some(end) => &rest[end + 5..],
        None => text,
    }
}

/// Columns of the kernels' texts, line by line; `!` marks a line that is not the same in
/// every kernel.
pub fn side_by_side(texts: &[(String, String)]) -> String {
    let columns: Vec<Vec<&str>> = texts.iter().map(|(_, t)| t.lines().collect()).collect();
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    let width = columns.iter().flatten().map(|l| l.len()).max().unwrap_or(0).clamp(8, 60);
    let mut out = String::from("  ");
    for (key, _) in texts {
        out.push_str(&format!("{key:<width$}  "));
    }
    out.push('\n');
    for i in 0..rows {
        let cells: Vec<&str> = columns.iter().map(|c| c.get(i).copied().unwrap_or("")).collect();
        let same = cells.windows(2).all(|w| w[0] == w[1]);
        out.push_str(if same { "  " } else { "! " });
        for c in &cells {
            let c: String = c.chars().take(width).collect();
            out.push_str(&format!("{c:<width$}  "));
        }
        out.push('\n');
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_insta_header() {
        let snap = "---\nsource: x\ninput_file: y\n---\nfindpage p0 a[0]: anon\n";
        assert_eq!(body(snap), "findpage p0 a[0]: anon\n");
    }

    #[test]
    fn marks_lines_that_differ() {
        let texts = vec![
            ("6.1".to_string(), "a\nmapcount=1\n".to_string()),
            ("6.12".to_string(), "a\nmapcount=2\n".to_string()),
        ];
        let view = side_by_side(&texts);
        let lines: Vec<&str> = view.lines().collect();
        assert!(lines[1].starts_with("  a"), "{view}");
        assert!(lines[2].starts_with("! mapcount=1"), "{view}");
    }
}
