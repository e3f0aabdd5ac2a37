//! `rmapcheck coverage`: the terminal summary of a campaign's kernel coverage. Per file
//! of mm/ the report covers, the functions reached with their lines; then the rmap
//! entry points no run reached. Pure over `coverage::summary::Coverage`.

use crate::coverage::summary::{Coverage, Reach, NO_KCOV};

fn percent(a: usize, b: usize) -> String {
    if b == 0 {
        "-".to_string()
    } else {
        format!("{:.0}%", 100.0 * a as f64 / b as f64)
    }
}

/// The summary; `what` names where the coverage came from (the first line).
pub fn text(c: &Coverage, what: &str) -> String {
    let mut out = format!("coverage of {what}: {} kernel PCs\n", c.pcs);
    if !c.has_lines {
        out.push_str(
            "the vmlinux has no line information (a kernel built without CONFIG_DEBUG_INFO): functions only, from its symbols\n",
        );
    } else if !c.has_kcov {
        out.push_str(&format!("{NO_KCOV}\n"));
    }
    for f in &c.files {
        let (reached, total) = f.lines();
        let hit: Vec<_> = f.functions.iter().filter(|x| x.reached() > 0).collect();
        out.push_str(&format!(
            "{}: {reached} of {total} lines ({}), {} of {} functions\n",
            f.file,
            percent(reached, total),
            hit.len(),
            f.functions.len()
        ));
        let width = hit.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for x in hit {
            out.push_str(&format!("  {:<width$}  {:>4}/{:<4} lines\n", x.name, x.reached(), x.lines.len()));
        }
    }
    let never: Vec<&str> =
        c.entry_points.iter().filter(|(_, _, r)| *r == Reach::Never).map(|(_, n, _)| n.as_str()).collect();
    let reached = c.entry_points.iter().filter(|(_, _, r)| *r == Reach::Reached).count();
    out.push_str(&format!(
        "rmap entry points: {reached} of {} reached; never reached ({}): {}\n",
        c.entry_points.len(),
        never.len(),
        if never.is_empty() { "none".to_string() } else { never.join(", ") }
    ));
    let absent: Vec<&str> =
        c.entry_points.iter().filter(|(_, _, r)| *r == Reach::Absent).map(|(_, n, _)| n.as_str()).collect();
    if !absent.is_empty() {
        out.push_str(&format!("not in this vmlinux (other kernel version, or inlined): {}\n", absent.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::summary::{build, example::example};
    use crate::coverage::Pcs;

    #[test]
    fn the_summary_lists_functions_lines_and_entry_points() {
        let c = build(&example(), &Pcs::new(vec![1, 2]));
        let t = text(&c, "out/");
        assert!(t.starts_with("coverage of out/: 2 kernel PCs\n"), "{t}");
        assert!(t.contains("mm/rmap.c: 2 of 6 lines (33%), 1 of 2 functions\n  rmap_walk     2/4    lines\n"), "{t}");
        assert!(t.contains("mm/memory.c: 0 of 1 lines (0%), 0 of 1 functions\n"), "{t}");
        assert!(t.contains("1 of 31 reached; never reached (1): try_to_unmap\n"), "{t}");
        assert!(t.contains("not in this vmlinux (other kernel version, or inlined): __anon_vma_prepare,"), "{t}");
        assert!(!t.contains("no line information") && !t.contains(NO_KCOV));
    }

    #[test]
    fn a_vmlinux_without_kcov_is_said_once() {
        let mut m = example();
        m.has_kcov = false;
        m.coverable.clear();
        let t = text(&build(&m, &Pcs::default()), "out/");
        assert_eq!(t.matches(NO_KCOV).count(), 1, "{t}");
        assert!(!t.contains("mm/rmap.c:"), "no file has a coverable line: {t}");
    }
}
