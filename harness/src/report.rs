//! Turns outcomes into what people and tools read: a text report, JSON, the normalised
//! snapshot text, diffs and JUnit XML.
//!
//! Architecture invariant: the snapshot text holds labels only (processes, mappings,
//! page indices, prot): no pid, address, pfn or kernel release.
//!
//! Layer `report`: this module, saved results, committed snapshots, the HTML report and
//! the verdicts of `rmapcheck mutants`.

pub mod coverage;
pub mod html;
pub mod mutants;
pub mod replay;
pub mod repro;
pub mod results;
pub mod snapshots;

use crate::check::outcome::{Outcome, Status};
use crate::scenario::Step;
use serde_json::json;

/// The normalised text that snapshots hold. The CLI and the tests both use this one
/// function. Problems and notes may name pfns and addresses, which differ from boot to
/// boot: every hex number in them reads `0x…` here (an expected failure's snapshot
/// holds its problems).
pub fn snapshot(o: &Outcome) -> String {
    render(o, |s| HEX.replace_all(s, "0x…").into_owned(), false)
}

/// Hex numbers in messages: pfns, addresses.
static HEX: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\b0x[0-9a-fA-F]+\b").expect("a valid pattern"));

/// The snapshot's lines with problems and notes as they are, and each splat's stack
/// (decoded to file:line where the kernel allows), for people to read.
fn detailed(o: &Outcome) -> String {
    render(o, str::to_string, true)
}

fn render(o: &Outcome, message: impl Fn(&str) -> String, stacks: bool) -> String {
    let mut out = String::new();
    for f in &o.findpages {
        out.push_str(&format!("findpage {} {}: {} order={} mapcount={}\n", f.proc, f.at, f.kind, f.order, f.mapcount));
        for v in &f.vmas {
            out.push_str(&format!("  {v}\n"));
        }
    }
    for t in &o.findtasks {
        out.push_str(&format!("findtask {}:\n", t.proc));
        for v in &t.vmas {
            out.push_str(&format!("  {v}\n"));
        }
    }
    for c in &o.checks {
        out.push_str(&format!("{c}\n"));
    }
    for s in &o.signals {
        out.push_str(&format!("{s}\n"));
    }
    if o.problems.is_empty() {
        out.push_str("problems: none\n");
    }
    out.push_str(&what_went_wrong(o, &message, stacks));
    out
}

/// The problems, notes and (with `stacks`) each splat's stack.
fn what_went_wrong(o: &Outcome, message: &impl Fn(&str) -> String, stacks: bool) -> String {
    let mut out = String::new();
    for p in &o.problems {
        out.push_str(&format!("problem {:?}: {}\n", p.check, message(&p.message())));
    }
    for n in &o.notes {
        out.push_str(&format!("note: {}\n", message(n)));
    }
    if stacks {
        out.push_str(&stack_text(&o.splats));
    }
    out
}

/// How a run's note says its kernel's stacks could not be decoded (no vmlinux with
/// debug info); the HTML report says it once per kernel, not once per scenario.
pub const UNDECODED_NOTE: &str = "stack traces are not decoded to file:line";

/// Each splat's stack, a frame a line, decoded to file:line where the kernel allowed
/// (decode_stacktrace.sh's form); splats without a trace say nothing.
pub fn stack_text(splats: &[crate::check::dmesg::Splat]) -> String {
    let mut out = String::new();
    for s in splats.iter().filter(|s| !s.trace.is_empty()) {
        out.push_str(&format!("stack of '{}':\n", s.line));
        for frame in &s.trace {
            out.push_str(&format!("  {frame}\n"));
        }
    }
    out
}

/// A failure's problems, notes and decoded stacks, as they are: the heart of a report.
/// It opens with what the oracles can say in mm terms (at most five sentences), and
/// where the processes named there came from (`lineage`, from the scenario's `steps`).
pub fn failure_text(o: &Outcome, steps: &[Step]) -> String {
    let mut said: Vec<String> = Vec::new();
    for s in o.problems.iter().filter_map(|p| p.kind.in_mm_terms()) {
        if !said.contains(&s) && said.len() < 5 {
            said.push(s);
        }
    }
    let mut out = String::new();
    if !said.is_empty() {
        // Sentences after the first start with a capital.
        let capital = |s: &String| {
            let mut c = s.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        };
        let rest: Vec<String> = said[1..].iter().map(capital).collect();
        let mut text = std::iter::once(said[0].clone()).chain(rest).collect::<Vec<_>>().join(". ");
        if let Some(l) = lineage(steps, &text) {
            // A process label keeps its case, even at a sentence's start.
            text.push_str(&format!(". {l}"));
        }
        out.push_str(&format!("In mm terms: {text}.\n\n"));
    }
    out.push_str(&what_went_wrong(o, &str::to_string, true));
    out
}

/// The fork lineage of every forked process that `text` names, from the scenario's
/// steps, each back to p0: "c4 was forked from c3 at step 5, after the write of step 3;
/// c3 was forked from p0 at step 2, before any write of p0". The write is the parent's
/// last before the fork: what the child inherited. `None` when `text` names no child.
pub fn lineage(steps: &[Step], text: &str) -> Option<String> {
    // (child, parent, fork step), in step order; steps count from 1 as everywhere.
    let forks: Vec<(&str, &str, usize)> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Fork(f) => Some((f.child.as_str(), f.proc.as_str(), i + 1)),
            _ => None,
        })
        .collect();
    let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).collect();
    let mut told: Vec<&str> = Vec::new();
    let mut sentences = Vec::new();
    for word in words {
        let mut child = word;
        // The first fork of a label is the process the text means (labels are unique).
        while let Some(&(c, parent, at)) = forks.iter().find(|(c, ..)| *c == child) {
            if told.contains(&c) {
                break;
            }
            told.push(c);
            let write = steps[..at - 1]
                .iter()
                .enumerate()
                .rev()
                .find(|(_, s)| matches!(s, Step::Write(w) if w.proc == parent))
                .map(|(i, _)| i + 1);
            let after = match write {
                Some(w) => format!("after the write of step {w}"),
                None => format!("before any write of {parent}"),
            };
            sentences.push(format!("{c} was forked from {parent} at step {at}, {after}"));
            child = parent;
        }
    }
    (!sentences.is_empty()).then(|| sentences.join("; "))
}

/// A human-readable report of several outcomes.
pub fn text(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let status = o.status.word();
        out.push_str(&format!(
            "{status} {} on {} ({}, {}k pages, {}) in {} ms\n",
            o.scenario,
            o.kernel,
            o.release,
            o.page_size / 1024,
            o.compiler,
            o.duration_ms
        ));
        for line in detailed(o).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let pass = outcomes.iter().filter(|o| o.status == Status::Pass).count();
    let xfail = outcomes.iter().filter(|o| o.status == Status::Xfail).count();
    let known =
        if xfail > 0 { format!(", {xfail} failed as known kernel bugs (docs/FINDINGS.md)") } else { String::new() };
    out.push_str(&format!("{pass} passed, {} failed{known}\n", outcomes.len() - pass - xfail));
    out
}

/// KTAP version 1 (Documentation/dev-tools/ktap.rst), as kselftest prints it, for
/// kernel CI: one test per scenario and kernel, named `scenario::kernel`. A failure's
/// lines come first as `# ` diagnostics; a known kernel bug that showed as known is
/// `ok ... # XFAIL` with the bug's name.
pub fn ktap(outcomes: &[Outcome]) -> String {
    let mut out = format!("KTAP version 1\n1..{}\n", outcomes.len());
    for (i, o) in outcomes.iter().enumerate() {
        // '#' starts a directive in a result line.
        let name = format!("{}::{}", o.scenario, o.kernel).replace('#', "_");
        if o.status != Status::Pass {
            for line in detailed(o).lines() {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let n = i + 1;
        match o.status {
            Status::Pass => out.push_str(&format!("ok {n} {name}\n")),
            Status::Xfail => {
                let why = o.notes.iter().find(|n| n.contains("known kernel bug")).map_or("a known kernel bug", |s| s);
                out.push_str(&format!("ok {n} {name} # XFAIL {why}\n"));
            }
            Status::Fail | Status::Error => out.push_str(&format!("not ok {n} {name}\n")),
        }
    }
    out
}

/// The `--format json` object.
pub fn json(outcomes: &[Outcome]) -> serde_json::Value {
    json!({ "results": outcomes })
}

/// JUnit XML: one suite per kernel, one case per scenario.
pub fn junit(outcomes: &[Outcome]) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("rmapcheck");
    let mut kernels: Vec<&str> = outcomes.iter().map(|o| o.kernel.as_str()).collect();
    kernels.dedup();
    kernels.sort();
    kernels.dedup();
    for k in kernels {
        let mut suite = TestSuite::new(k);
        for o in outcomes.iter().filter(|o| o.kernel == k) {
            let status = match o.status {
                Status::Pass => TestCaseStatus::success(),
                // A known kernel bug that showed as known: CI stays green, and the
                // case says why.
                Status::Xfail => {
                    let mut s = TestCaseStatus::success();
                    s.set_description(detailed(o));
                    s
                }
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_description(detailed(o));
                    s
                }
                Status::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_description(detailed(o));
                    s
                }
            };
            let mut case = TestCase::new(format!("{}::{}", o.scenario, o.kernel), status);
            case.set_time(std::time::Duration::from_millis(o.duration_ms));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::oracle::Problem;
    use crate::check::problem::ProblemKind;
    use std::collections::BTreeMap;

    /// The processes the mm-terms account names come with where they were forked from,
    /// back to p0, and after which write of their parent.
    #[test]
    fn the_mm_terms_account_tells_the_fork_lineage_of_the_processes_it_names() {
        let s = crate::scenario::parse(
            std::path::Path::new("s.yaml"),
            "name: s\nabout: a\nsteps:\n\
             - mmap: { name: m, pages: 4, backing: anon, share: private }\n\
             - fork: { child: c1 }\n\
             - write: { proc: c1, map: m, page: 0 }\n\
             - write: { map: m, page: 1 }\n\
             - fork: { proc: c1, child: c4 }\n\
             - fork: { child: c9 }\n\
             - check: all\n",
        )
        .unwrap();
        assert_eq!(
            lineage(&s.steps, "the rmap walk did not reach c4's mapping at 0x20000 (c4 m[0])").as_deref(),
            Some(
                "c4 was forked from c1 at step 5, after the write of step 3; \
                 c1 was forked from p0 at step 2, before any write of p0"
            )
        );
        assert_eq!(lineage(&s.steps, "p0's mapping (p0 m[0])"), None, "p0 was never forked");
        let json = serde_json::json!({
            "scenario": "s", "file": "scenarios/s.yaml", "kernel": "6.12", "release": "r", "page_size": 4096,
            "status": "fail", "findpages": [], "findtasks": [], "forks": [], "checks": [],
            "problems": [], "model_mismatches": [], "notes": [], "splats": [], "duration_ms": 1
        });
        let mut o: Outcome = serde_json::from_value(json).unwrap();
        let at = |p: &str| (p.to_string(), "m".to_string(), 0);
        o.problems.push(Problem::new(ProblemKind::WalkMismatch {
            at: at("p0"),
            pfn: 0x41,
            page_kind: "anon".into(),
            forward: vec![at("c9"), at("p0")],
            reverse: vec![at("p0")],
            missing: vec![at("c9")],
            extra: Vec::new(),
            strays: Vec::new(),
            addresses: BTreeMap::new(),
        }));
        let text = failure_text(&o, &s.steps);
        assert!(
            text.starts_with(
                "In mm terms: the rmap walk of the anon folio at pfn 0x41 did not reach c9's mapping (c9 m[0]), \
                 which pagemap shows. c9 was forked from p0 at step 6, after the write of step 4.\n"
            ),
            "{text}"
        );
    }

    /// report.txt's "What is wrong" opens with the oracles' account in mm terms, once
    /// per sentence, then the problems as they are.
    #[test]
    fn a_failure_opens_in_mm_terms() {
        let json = serde_json::json!({
            "scenario": "s", "file": "scenarios/s.yaml", "kernel": "6.12", "release": "r", "page_size": 4096,
            "status": "fail", "findpages": [], "findtasks": [], "forks": [], "checks": [],
            "problems": [{"check": "O3", "message": "kernel splat: WARNING"}],
            "model_mismatches": [], "notes": [], "splats": [], "duration_ms": 1
        });
        let mut o: Outcome = serde_json::from_value(json).unwrap();
        assert!(failure_text(&o, &[]).starts_with("problem O3: kernel splat: WARNING\n"), "nothing to say in mm terms");
        let at = |p: &str| (p.to_string(), "a".to_string(), 0);
        // An O1 miss: c1 a[0] at 0x20000.
        let miss = Problem::new(ProblemKind::WalkMismatch {
            at: at("p0"),
            pfn: 0x41,
            page_kind: "anon".into(),
            forward: vec![at("c1"), at("p0")],
            reverse: vec![at("p0")],
            missing: vec![at("c1")],
            extra: Vec::new(),
            strays: Vec::new(),
            addresses: [(at("c1"), 0x20000)].into(),
        });
        o.problems.extend([miss.clone(), miss]);
        let text = failure_text(&o, &[]);
        assert!(
            text.starts_with(
                "In mm terms: the rmap walk of the anon folio at pfn 0x41 did not reach c1's mapping at 0x20000 (c1 a[0]), which pagemap shows.\n\nproblem O3:"
            ),
            "{text}"
        );
        assert_eq!(text.matches("did not reach").count(), 1, "{text}");
        o.problems.push(Problem::new(ProblemKind::Mapcount { at: at("p0"), mapcount: 2, ptes: 1 }));
        assert!(
            failure_text(&o, &[]).contains("which pagemap shows. The page's mapcount is 2, but"),
            "{}",
            failure_text(&o, &[])
        );
    }
}
