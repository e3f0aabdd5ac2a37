//! A scenario replayed one step at a time (`rmapcheck replay --step`): what each step
//! changed in every process's mappings, and for every page it touched the truth, the
//! walk, the mapcount and the model's prediction. Text and JSON here, HTML in
//! `html::replay`.
//!
//! Architecture invariant: pure; `run::replay` fills these values, this only renders.

use crate::check::oracle::{Check, Problem};
use crate::check::outcome::{Findpage, Outcome};
use serde::Serialize;
use std::fmt::Write;

/// One named mapping of one process after a step: a PFN (hex) per page, `None` where
/// nothing is mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapView {
    pub proc: String,
    pub name: String,
    pub pfns: Vec<Option<String>>,
}

/// One page a step touched.
#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    /// `p0 a[0]`.
    pub slot: String,
    /// Its pagemap PFN (hex), if present.
    pub pfn: Option<String>,
    /// Truth: every slot whose pagemap PFN is this one.
    pub holders: Vec<String>,
    /// The module's walk, when the page was present.
    pub walk: Option<Findpage>,
    /// The model: the slots it expects to share this page, or `None` where it makes no
    /// prediction (KSM, THP), with its reason.
    pub predicted: Option<Vec<String>>,
    pub why: String,
    /// What O1, O2 and O4 say about this page now.
    pub problems: Vec<Problem>,
}

/// What one step did.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// 1-based, as step problems count.
    pub n: usize,
    /// The step in the scenario language.
    pub step: String,
    /// Every named mapping of every live process after the step.
    pub maps: Vec<MapView>,
    /// `proc name` of the mappings that changed (appeared, went, or changed a PFN).
    pub changed: Vec<String>,
    pub pages: Vec<PageView>,
    /// Problems the step itself raised, and those of its pages.
    pub problems: Vec<Problem>,
    /// Model mismatches (O4) the step raised.
    pub model: Vec<Problem>,
    pub notes: Vec<String>,
}

impl StepView {
    /// Whether an oracle, O4 included, disagrees at this step.
    pub fn disagrees(&self) -> bool {
        !self.problems.is_empty() || !self.model.is_empty()
    }

    /// Whether the step fails the scenario (anything but O4, which is reported apart).
    pub fn fails(&self) -> bool {
        self.problems.iter().any(|p| p.check != Check::O4)
    }
}

/// A whole stepped replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub scenario: String,
    pub file: String,
    pub kernel: String,
    pub release: String,
    /// Steps in the file, and how many were played (the replay stops at a failure).
    pub total_steps: usize,
    pub played: usize,
    pub steps: Vec<StepView>,
    /// The first step at which any oracle disagreed (O4 included).
    pub first_disagreement: Option<usize>,
    /// The first step that failed; the replay stops there unless told to continue.
    pub first_failure: Option<usize>,
    /// The finished run: teardown splats, taint and the `expect:` block included.
    pub outcome: Outcome,
}

/// `key: value` rows of a page, shared by the text and the HTML.
pub fn page_rows(p: &PageView) -> Vec<(&'static str, String)> {
    let list = |v: &[String]| if v.is_empty() { "nobody".to_string() } else { v.join(", ") };
    let mut rows = vec![(
        "truth",
        match &p.pfn {
            Some(pfn) => format!("pfn {pfn}, held by {}", list(&p.holders)),
            None => "not present".to_string(),
        },
    )];
    if let Some(w) = &p.walk {
        let mut walk = format!("{} order={}, mapped by {}", w.kind, w.order, list(&w.mapped_by));
        if !w.visited_not_mapped.is_empty() {
            let _ = write!(walk, "; visited, not mapped: {}", w.visited_not_mapped.join(", "));
        }
        rows.push(("walk", walk));
        // The truth's holders the walk did not find mapping the page: what O1 is about.
        let missed: Vec<&str> = p
            .holders
            .iter()
            .filter(|h| h.split_once(' ').is_some_and(|(proc, _)| !w.mapped_by.iter().any(|m| m == proc)))
            .map(String::as_str)
            .collect();
        if !missed.is_empty() {
            rows.push(("missed", missed.join(", ")));
        }
        rows.push(("mapcount", w.mapcount.to_string()));
    }
    rows.push((
        "model",
        match &p.predicted {
            Some(v) => format!("shared by {} ({})", list(v), p.why),
            None => format!("no prediction ({})", p.why),
        },
    ));
    rows
}

fn pfns_text(m: &MapView) -> String {
    m.pfns.iter().map(|p| p.as_deref().unwrap_or("-")).collect::<Vec<_>>().join(" ")
}

/// One step as text: its line, the mappings it changed, its pages and problems. `first`
/// marks the first step at which an oracle disagrees; `total`, when known, the steps in all.
pub fn step_text(st: &StepView, total: Option<usize>, first: bool) -> String {
    let mut s = String::new();
    let mark = if first { ">>" } else { "  " };
    let verdict = if st.fails() {
        "  FAIL"
    } else if st.disagrees() {
        "  model differs"
    } else {
        ""
    };
    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
    let _ = writeln!(s, "{mark} step {}{of}: {}{verdict}", st.n, st.step);
    if first {
        let _ = writeln!(s, "   ^^ the first step at which an oracle disagrees");
    }
    for m in &st.maps {
        let key = format!("{} {}", m.proc, m.name);
        if st.changed.contains(&key) {
            let _ = writeln!(s, "   * {key}: {}", pfns_text(m));
        }
    }
    for gone in st.changed.iter().filter(|c| !st.maps.iter().any(|m| format!("{} {}", m.proc, m.name) == **c)) {
        let _ = writeln!(s, "   * {gone}: gone");
    }
    for p in &st.pages {
        let _ = writeln!(s, "   page {}", p.slot);
        for (k, v) in page_rows(p) {
            let _ = writeln!(s, "     {k:<8} {v}");
        }
    }
    for p in st.problems.iter().chain(&st.model) {
        let _ = writeln!(s, "   ! {:?}: {}", p.check, p.message());
    }
    for n in &st.notes {
        let _ = writeln!(s, "   note: {n}");
    }
    s
}

/// The replay as text: per step, the changed mappings, the touched pages and problems.
pub fn text(r: &Replay) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "replay {} ({}) on {} ({})", r.scenario, r.file, r.kernel, r.release);
    for st in &r.steps {
        s.push('\n');
        s.push_str(&step_text(st, Some(r.total_steps), Some(st.n) == r.first_disagreement));
    }
    match (r.first_failure, r.first_disagreement) {
        (Some(n), _) => {
            let _ = writeln!(
                s,
                "\nreplay: FAIL at step {n}: {}",
                r.steps.iter().find(|st| st.n == n).map_or("", |st| &st.step)
            );
        }
        (None, Some(n)) => {
            let _ = writeln!(s, "\nreplay: the model first differs at step {n}");
        }
        (None, None) => {
            let _ = writeln!(s, "\nreplay: every oracle agrees at every step");
        }
    }
    if r.played < r.total_steps {
        let _ = writeln!(s, "\nstopped after step {} of {} (--continue plays the rest)", r.played, r.total_steps);
    }
    let _ = writeln!(s, "\n{}", crate::report::text(std::slice::from_ref(&r.outcome)).trim_end());
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::problem::ProblemKind;

    fn slot(proc: &str) -> crate::check::model::Slot {
        (proc.into(), "a".into(), 0)
    }

    /// A two-step replay that fails at step 2, for the text and HTML tests.
    pub fn sample() -> Replay {
        let json = r#"{"results":[{"scenario":"seed","file":"seed.yaml","kernel":"6.12","release":"6.12.0",
            "page_size":4096,"status":"fail","findpages":[],"findtasks":[],"forks":[{"parent":"p0","child":"c1"}],
            "checks":[],"problems":[{"check":"O1","message":"walk <missed> c1"}],"model_mismatches":[],
            "notes":[],"splats":[],"duration_ms":5}]}"#;
        let outcome = crate::report::results::parse(json).unwrap().remove(0);
        let map = |pfns: &[Option<&str>]| MapView {
            proc: "p0".into(),
            name: "a".into(),
            pfns: pfns.iter().map(|p| p.map(str::to_string)).collect(),
        };
        let page = PageView {
            slot: "p0 a[0]".into(),
            pfn: Some("0x41".into()),
            holders: vec!["p0 a[0]".into(), "c1 a[0]".into()],
            walk: Some(Findpage {
                at: "a[0]".into(),
                proc: "p0".into(),
                kind: "anon".into(),
                order: 0,
                mapcount: 2,
                mapped_by: vec!["p0".into()],
                visited_not_mapped: vec![],
                vmas: vec![],
                mcsem: String::new(),
            }),
            predicted: Some(vec!["p0 a[0]".into(), "c1 a[0]".into()]),
            why: "fork shares until a write".into(),
            problems: vec![Problem::new(ProblemKind::WalkMismatch {
                at: slot("p0"),
                pfn: 0x41,
                page_kind: "anon".into(),
                forward: vec![slot("c1"), slot("p0")],
                reverse: vec![slot("p0")],
                missing: vec![slot("c1")],
                extra: Vec::new(),
                strays: Vec::new(),
                addresses: [(slot("c1"), 0x20000)].into(),
            })],
        };
        Replay {
            scenario: "seed".into(),
            file: "seed.yaml".into(),
            kernel: "6.12".into(),
            release: "6.12.0".into(),
            total_steps: 3,
            played: 2,
            steps: vec![
                StepView {
                    n: 1,
                    step: "mmap: { name: a, pages: 2, backing: anon, share: private }".into(),
                    maps: vec![map(&[None, None])],
                    changed: vec!["p0 a".into()],
                    pages: vec![],
                    problems: vec![],
                    model: vec![],
                    notes: vec![],
                },
                StepView {
                    n: 2,
                    step: "write: { map: a, page: 0 }".into(),
                    maps: vec![map(&[Some("0x41"), None])],
                    changed: vec!["p0 a".into()],
                    pages: vec![page.clone()],
                    problems: page.problems.clone(),
                    model: vec![],
                    notes: vec![],
                },
            ],
            first_disagreement: Some(2),
            first_failure: Some(2),
            outcome,
        }
    }

    #[test]
    fn text_marks_the_first_disagreement_and_the_stop() {
        let t = text(&sample());
        assert!(t.contains(">> step 2/3: write: { map: a, page: 0 }  FAIL"), "{t}");
        assert!(t.contains("   step 1/3: mmap"), "{t}");
        assert!(t.contains("* p0 a: 0x41 -"), "{t}");
        assert!(t.contains("truth    pfn 0x41, held by p0 a[0], c1 a[0]"), "{t}");
        assert!(t.contains("! O1: findpage p0 a[0]"), "{t}");
        assert!(t.contains("     missed   c1 a[0]\n     mapcount 2"), "{t}");
        assert!(t.contains("stopped after step 2 of 3"), "{t}");
        assert!(t.contains("replay: FAIL at step 2: write"), "{t}");
    }
}
