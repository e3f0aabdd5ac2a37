//! What a mutant patch changes, hunk by hunk: the file, the line, and the C function its
//! header names (`@@ -a,b +c,d @@ <the function's first line>`, as `git diff` writes
//! it), so a test can hold each hunk to the function it claims to change.

use anyhow::{bail, Context, Result};

/// One hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The file, as `--- a/<file>` names it.
    pub file: String,
    /// Where the hunk starts in the old file (1-based).
    pub old_start: usize,
    /// The text after the header's second `@@`, trimmed; empty when there is none.
    pub header: String,
    /// The hunk's body: lines starting with ' ', '-' or '+'.
    pub lines: Vec<String>,
}

impl Hunk {
    /// The function the header names: the identifier before its first `(`.
    pub fn function(&self) -> Option<&str> {
        function_name(&self.header)
    }

    /// The old file's line number of the first line the hunk removes or adds before.
    pub fn first_change(&self) -> usize {
        let context = self.lines.iter().take_while(|l| l.starts_with(' ')).count();
        self.old_start + context
    }

    /// The lines the hunk adds, without their '+'.
    pub fn added(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| l.strip_prefix('+'))
    }
}

/// Every hunk of `diff`, each checked against its header's line counts, so a hand-edited
/// patch that `patch` would misread is refused here.
pub fn parse(diff: &str) -> Result<Vec<Hunk>> {
    let mut out = Vec::new();
    let mut file = None;
    let mut lines = diff.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        if let Some(name) = line.strip_prefix("--- a/") {
            file = Some(name.to_string());
            continue;
        }
        let Some(rest) = line.strip_prefix("@@ -") else { continue };
        let at = || format!("line {}: '{line}'", n + 1);
        let (ranges, header) = rest.split_once(" @@").with_context(|| format!("{}: no closing @@", at()))?;
        let (old, new) = ranges.split_once(" +").with_context(|| format!("{}: no new range", at()))?;
        let (old_start, mut old_left) = range(old).with_context(at)?;
        let (_, mut new_left) = range(new).with_context(at)?;
        let file = file.clone().with_context(|| format!("{}: a hunk before any '--- a/' line", at()))?;
        let mut body = Vec::new();
        while old_left + new_left > 0 {
            let Some((_, l)) = lines.next() else { bail!("{}: the diff ends inside the hunk", at()) };
            let (old, new) = match l.chars().next() {
                // An empty line is a context line whose trailing space was stripped.
                Some(' ') | None => (1, 1),
                Some('-') => (1, 0),
                Some('+') => (0, 1),
                Some('\\') => continue,
                _ => bail!("{}: '{l}' is not a hunk line; the header's counts are wrong", at()),
            };
            if old > old_left || new > new_left {
                bail!("{}: more lines than the header counts", at());
            }
            (old_left, new_left) = (old_left - old, new_left - new);
            body.push(if l.is_empty() { " ".to_string() } else { l.to_string() });
        }
        out.push(Hunk { file, old_start, header: header.trim().to_string(), lines: body });
    }
    Ok(out)
}

/// `a,b` (or `a`, one line) of a hunk header.
fn range(r: &str) -> Result<(usize, usize)> {
    let (start, count) = r.split_once(',').unwrap_or((r, "1"));
    Ok((start.parse().context("a hunk start")?, count.parse().context("a hunk count")?))
}

/// The identifier before the first `(` of a C function's first line.
fn function_name(line: &str) -> Option<&str> {
    let before = line.split_once('(')?.0.trim_end();
    let name = before.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next()?;
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// The C function that line `line` (1-based) of `source` is in, by the kernel's style:
/// the nearest line above it that starts in column 0 with an identifier and has a `(`
/// (a definition's first line; labels and braces have none).
pub fn function_at(source: &str, line: usize) -> Option<&str> {
    source
        .lines()
        .take(line.saturating_sub(1))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && l.contains('('))
        .last()
        .and_then(function_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "--- a/mm/rmap.c\n+++ b/mm/rmap.c\n@@ -10,4 +10,5 @@ static void walk(struct folio *folio,\n \
                        \tint a;\n\n-\tb();\n+\tc();\n+\td();\n \treturn;\n";

    #[test]
    fn a_hunk_has_its_file_line_function_and_changes() {
        let h = &parse(DIFF).unwrap()[0];
        assert_eq!((h.file.as_str(), h.old_start, h.function()), ("mm/rmap.c", 10, Some("walk")));
        assert_eq!(h.first_change(), 12);
        assert_eq!(h.added().collect::<Vec<_>>(), ["\tc();", "\td();"]);
    }

    #[test]
    fn counts_that_do_not_match_the_body_are_refused() {
        let short = DIFF.replace("+10,5", "+10,6");
        assert!(parse(&short).unwrap_err().to_string().contains("ends inside the hunk"));
        let long = DIFF.replace("+10,5", "+10,4");
        assert!(parse(&long).is_err());
    }

    #[test]
    fn the_function_at_a_line_skips_labels_and_braces() {
        let src = "static int a(void)\n{\n}\n\nstatic void\nrmap_walk_file(struct folio *f,\n\t\tint x)\n{\nagain:\n\tx++;\n}\n";
        assert_eq!(function_at(src, 10), Some("rmap_walk_file"));
        assert_eq!(function_at(src, 2), Some("a"));
        assert_eq!(function_at(src, 1), None);
    }
}
