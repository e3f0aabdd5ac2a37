//! The scenario's `expect:` block, judged against an outcome. Label lists compare as
//! sets; a failed expectation shows expected against actual as a diff.

use crate::check::oracle::{Check, Problem};
use crate::check::outcome::{Findpage, Outcome};
use crate::check::problem::ProblemKind;
use crate::scenario::{Expect, Facts, KnownBug};
use std::collections::BTreeSet;

/// Compare the outcome against the scenario's `expect:` block.
pub fn check_expectations(expect: &[Expect], outcome: &mut Outcome) {
    for e in expect {
        // `on:` names kernel keys, or page sizes such as `4k` and `16k`.
        let page_size = format!("{}k", outcome.page_size / 1024);
        if e.on.as_ref().is_some_and(|on| !on.iter().any(|k| *k == outcome.kernel || *k == page_size)) {
            continue;
        }
        let alternatives: Vec<&Facts> = match &e.any_of {
            Some(alts) => alts.iter().collect(),
            None => vec![&e.facts],
        };
        let (what, actual) = if let Some(at) = &e.findpage {
            let found =
                outcome.findpages.iter().rev().find(|f| &f.at == at && e.proc.as_ref().is_none_or(|p| p == &f.proc));
            let Some(found) = found else {
                outcome.problems.push(Problem::new(ProblemKind::NoFindpageResult { at: at.clone() }));
                continue;
            };
            (format!("findpage {} {at}", found.proc), facts_of_findpage(found))
        } else if let Some(proc) = &e.findtask {
            let Some(found) = outcome.findtasks.iter().rev().find(|f| &f.proc == proc) else {
                outcome.problems.push(Problem::new(ProblemKind::NoFindtaskResult { proc: proc.clone() }));
                continue;
            };
            // Only the scenario's own mappings: the agent's VMAs differ between kernels.
            let named = found.vmas.iter().filter(|v| !v.starts_with('[')).cloned().collect();
            (format!("findtask {proc}"), Facts { vmas: Some(named), ..Facts::default() })
        } else {
            continue;
        };
        let extra = (e.any_of.is_some()).then_some(&e.facts);
        let holds = |f: &Facts| facts_hold(f, &actual) && extra.is_none_or(|x| facts_hold(x, &actual));
        if !alternatives.iter().any(|f| holds(f)) {
            let expected: Vec<String> = alternatives.iter().map(|f| facts_text(f)).collect();
            // Show the actual values of just the facts the expectation names.
            let shown = only_named(&actual, alternatives[0]);
            let diff = diff(&expected.join("\n-- or --\n"), &facts_text(&shown));
            outcome.problems.push(Problem::new(ProblemKind::ExpectationFailed { what, diff }));
        }
    }
}

/// Judge the scenario's known kernel bug, on a kernel that has it: whether the outcome
/// failed exactly as the bug says (only problems of its check that contain its text).
/// If it did not fail at all, that is a problem of its own: the bug may be fixed there.
pub fn judge_known_bug(known: Option<&KnownBug>, outcome: &mut Outcome) -> bool {
    let Some(kb) = known.filter(|kb| kb.on.contains(&outcome.kernel)) else { return false };
    if outcome.problems.is_empty() {
        outcome.problems.push(Problem::new(ProblemKind::KnownBugAbsent {
            finding: kb.finding.clone(),
            kernel: outcome.kernel.clone(),
            release: outcome.release.clone(),
        }));
        return false;
    }
    let known = known_bug_shown(kb, outcome);
    if known {
        outcome.notes.push(format!("failed as known kernel bug {} (docs/FINDINGS.md) on this kernel", kb.finding));
    }
    known
}

/// Whether `outcome` failed as `kb` says, and only so, on a kernel `kb` names: the one
/// rule for scenarios and for fuzz runs.
pub fn known_bug_shown(kb: &KnownBug, outcome: &Outcome) -> bool {
    let check_name = |c: Check| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string));
    kb.on.contains(&outcome.kernel)
        && !outcome.problems.is_empty()
        && outcome
            .problems
            .iter()
            .all(|p| check_name(p.check).as_deref() == Some(kb.check.as_str()) && p.message().contains(&kb.says))
}

/// `got` restricted to the facts `want` states.
fn only_named(got: &Facts, want: &Facts) -> Facts {
    fn pick<T: Clone>(w: &Option<T>, g: &Option<T>) -> Option<T> {
        w.as_ref().and(g.clone())
    }
    Facts {
        kind: pick(&want.kind, &got.kind),
        order: pick(&want.order, &got.order),
        mapcount: pick(&want.mapcount, &got.mapcount),
        mapped_by: pick(&want.mapped_by, &got.mapped_by),
        visited_not_mapped: pick(&want.visited_not_mapped, &got.visited_not_mapped),
        vmas: pick(&want.vmas, &got.vmas),
    }
}

fn facts_of_findpage(f: &Findpage) -> Facts {
    Facts {
        kind: Some(f.kind.clone()),
        order: Some(f.order),
        mapcount: Some(f.mapcount),
        mapped_by: Some(f.mapped_by.clone()),
        visited_not_mapped: Some(f.visited_not_mapped.clone()),
        vmas: None,
    }
}

/// Whether every fact `want` states is true of `got`. Label lists compare as sets.
fn facts_hold(want: &Facts, got: &Facts) -> bool {
    fn same<T: PartialEq>(w: &Option<T>, g: &Option<T>) -> bool {
        w.is_none() || w == g
    }
    fn same_set(w: &Option<Vec<String>>, g: &Option<Vec<String>>) -> bool {
        let sorted = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<_>>();
        match (w, g) {
            (None, _) => true,
            (Some(w), Some(g)) => sorted(w) == sorted(g),
            (Some(_), None) => false,
        }
    }
    same(&want.kind, &got.kind)
        && same(&want.order, &got.order)
        && same(&want.mapcount, &got.mapcount)
        && same_set(&want.mapped_by, &got.mapped_by)
        && same_set(&want.visited_not_mapped, &got.visited_not_mapped)
        && same(&want.vmas, &got.vmas)
}

/// Facts as text, one per line, for diffs.
fn facts_text(f: &Facts) -> String {
    let mut out = Vec::new();
    if let Some(k) = &f.kind {
        out.push(format!("kind: {k}"));
    }
    if let Some(o) = f.order {
        out.push(format!("order: {o}"));
    }
    if let Some(m) = f.mapcount {
        out.push(format!("mapcount: {m}"));
    }
    let list = |v: &Vec<String>| {
        let mut v = v.clone();
        v.sort();
        format!("[{}]", v.join(", "))
    };
    if let Some(v) = &f.mapped_by {
        out.push(format!("mapped_by: {}", list(v)));
    }
    if let Some(v) = &f.visited_not_mapped {
        out.push(format!("visited_not_mapped: {}", list(v)));
    }
    if let Some(v) = &f.vmas {
        out.push("vmas:".into());
        out.extend(v.iter().map(|l| format!("  - {l}")));
    }
    out.join("\n")
}

/// A unified line diff of `expected` against `actual`.
pub fn diff(expected: &str, actual: &str) -> String {
    let d = similar::TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for change in d.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("{sign}{}", change.value()));
        if !change.value().ends_with('\n') {
            out.push('\n');
        }
    }
    format!("--- expected\n+++ actual\n{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outcome as results JSON holds it: problems as their check and message.
    fn outcome(kernel: &str, problems: &[(Check, &str)]) -> Outcome {
        let problems: Vec<_> = problems.iter().map(|(c, m)| serde_json::json!({"check": c, "message": m})).collect();
        let json = serde_json::json!({
            "scenario": "s", "file": "scenarios/s.yaml", "kernel": kernel, "release": "r", "page_size": 4096,
            "status": "fail", "findpages": [], "findtasks": [], "forks": [], "checks": [], "problems": problems,
            "model_mismatches": [], "notes": [], "splats": [], "duration_ms": 1
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_known_bug_is_expected_only_where_it_is_known_and_only_as_itself() {
        let kb = KnownBug {
            finding: "pagemap-pmd-exclusive".into(),
            on: vec!["7.2".into()],
            check: "O2".into(),
            says: "PM_MMAP_EXCLUSIVE".into(),
        };
        let bug = (Check::O2, "c2 m1[200]: pagemap flags pfn exclusive to one mm (PM_MMAP_EXCLUSIVE), but 2 map it");
        // The bug alone, on a kernel that has it: expected, with a note naming it.
        let mut o = outcome("7.2", &[bug, bug]);
        assert!(judge_known_bug(Some(&kb), &mut o));
        assert!(o.notes.iter().any(|n| n.contains("known kernel bug pagemap-pmd-exclusive")), "{:?}", o.notes);
        // Another problem beside it, or the same text from another check: not excused.
        let mut o = outcome("7.2", &[bug, (Check::O1, "walk missed c2")]);
        assert!(!judge_known_bug(Some(&kb), &mut o));
        let mut o = outcome("7.2", &[(Check::O4, bug.1)]);
        assert!(!judge_known_bug(Some(&kb), &mut o));
        // A kernel the bug does not name: nothing is excused.
        let mut o = outcome("6.12", &[bug]);
        assert!(!judge_known_bug(Some(&kb), &mut o));
        assert_eq!(o.problems.len(), 1);
        // The bug did not show where it is known: that is a problem of its own.
        let mut o = outcome("7.2", &[]);
        assert!(!judge_known_bug(Some(&kb), &mut o));
        assert!(o.problems[0].message().contains("did not show on 7.2"), "{:?}", o.problems);
        let mut o = outcome("7.2", &[]);
        assert!(!judge_known_bug(None, &mut o));
        assert!(o.problems.is_empty());
    }

    #[test]
    fn diff_marks_both_sides() {
        let d = diff("mapcount: 2\nkind: anon\n", "mapcount: 1\nkind: anon\n");
        assert!(d.contains("-mapcount: 2") && d.contains("+mapcount: 1") && d.contains(" kind: anon"), "{d}");
    }
}
