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

/// The committed snapshot text of `scenario` on `kernel`, if there is one.
pub fn read(dir: &Path, scenario: &str, kernel: &str) -> Result<Option<String>> {
    let path = dir.join(format!("{scenario}@{kernel}.snap"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(body(&text).to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The kernel a committed snapshot was taken on (its header's `info`, which the
/// scenario trials set to the key's pin), if it says.
pub fn taken_on(dir: &Path, scenario: &str, kernel: &str) -> Result<Option<String>> {
    let path = dir.join(format!("{scenario}@{kernel}.snap"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(header_info(&text))
}

/// The `info` string of an insta snapshot's header.
fn header_info(text: &str) -> Option<String> {
    let rest = text.strip_prefix("---\n")?;
    let header = &rest[..rest.find("\n---\n")?];
    let value: serde_yaml::Value = serde_yaml::from_str(header).ok()?;
    value.get("info")?.as_str().map(str::to_string)
}

/// One line position across the kernels' texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// The line of each text at this position ("" past its end), in input order.
    pub cells: Vec<&'a str>,
    /// Whether every kernel has the same line here.
    pub same: bool,
}

/// The kernels' texts aligned line by line. The text and HTML views both use this one
/// notion of "differs".
pub fn rows<'a>(texts: &'a [(String, String)]) -> Vec<Row<'a>> {
    let columns: Vec<Vec<&str>> = texts.iter().map(|(_, t)| t.lines().collect()).collect();
    let n = columns.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            let cells: Vec<&str> = columns.iter().map(|c| c.get(i).copied().unwrap_or("")).collect();
            let same = cells.windows(2).all(|w| w[0] == w[1]);
            Row { cells, same }
        })
        .collect()
}

/// Columns of the kernels' texts, line by line; `!` marks a line that is not the same in
/// every kernel.
pub fn side_by_side(texts: &[(String, String)]) -> String {
    let rows = rows(texts);
    let width = rows.iter().flat_map(|r| &r.cells).map(|l| l.len()).max().unwrap_or(0).clamp(8, 60);
    let mut out = String::from("  ");
    for (key, _) in texts {
        out.push_str(&format!("{key:<width$}  "));
    }
    out.push('\n');
    for row in &rows {
        out.push_str(if row.same { "  " } else { "! " });
        for c in &row.cells {
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
    fn the_header_says_which_pin_a_snapshot_was_taken_on() {
        let with = "---\nsource: harness/tests/scenarios.rs\ninfo: 6.1.0-57-arm64 (6.1.192-3)\n\
                    input_file: scenarios/x.yaml\n---\nfindpage\n";
        assert_eq!(header_info(with).as_deref(), Some("6.1.0-57-arm64 (6.1.192-3)"));
        assert_eq!(body(with), "findpage\n");
        let without = "---\nsource: harness/tests/scenarios.rs\n---\ninfo: not the header\n";
        assert_eq!(header_info(without), None);
        assert_eq!(header_info("no header"), None);
    }

    /// Every VMA line of every committed snapshot reads back (as a results file saved
    /// before labels had fields holds it) as a label that prints as that very line.
    #[test]
    fn every_committed_snapshot_vma_line_round_trips() {
        let dir = crate::project_root().join("snapshots");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let mut in_findpage = false;
            for line in body(&text).lines() {
                if line.starts_with("findpage ") {
                    in_findpage = true;
                } else if let Some(v) = line.strip_prefix("  ").filter(|_| in_findpage) {
                    let saved = serde_json::json!({"at": "a[0]", "proc": "p0", "kind": "anon", "order": 0,
                        "mapcount": 1, "mapped_by": [], "visited_not_mapped": [], "vmas": [v]});
                    let fp: crate::check::outcome::Findpage =
                        serde_json::from_value(saved).unwrap_or_else(|e| panic!("{v}: {e}"));
                    assert_eq!(fp.vmas[0].to_string(), v);
                    n += 1;
                } else {
                    in_findpage = false;
                }
            }
        }
        assert!(n > 20, "only {n} VMA lines in snapshots");
    }

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

    #[test]
    fn rows_pad_the_shorter_text_and_mark_it_different() {
        let texts = vec![("a".to_string(), "x\ny\n".to_string()), ("b".to_string(), "x\n".to_string())];
        let r = rows(&texts);
        assert_eq!(r, vec![Row { cells: vec!["x", "x"], same: true }, Row { cells: vec!["y", ""], same: false }]);
    }
}
