//! The verdicts of `rmapcheck mutants` (which search found each planted bug, by which
//! check, how fast, and whether the finding's C reproducer tells the mutant kernel from
//! the clean one) and their text table; `report::html` draws them too.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What found a mutant first, in one way of looking for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Found {
    /// The failure title, which starts with the check that failed (`O1: ...`).
    pub title: String,
    /// Seconds from the start of this search to the finding.
    pub secs: f64,
    /// What replays it: the scenario file, or the fuzzer's shrunk.yaml.
    pub replay: String,
}

/// The verdict on one mutant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub name: String,
    pub about: String,
    pub build_secs: f64,
    /// The scenario suite's first failure, if any.
    pub suite: Option<Found>,
    /// The fuzz campaign's first finding, if any, within the duration.
    pub fuzz: Option<Found>,
    /// Why the mutant could not be judged (a patch that does not apply, a build error).
    pub error: Option<String>,
    /// The finding's repro.c run on both kernels; absent when nothing found the mutant
    /// (and in mutants.json files older than the column).
    #[serde(default)]
    pub repro: Option<Repro>,
}

/// A finding's generated C reproducer (`report::repro`), run on the mutant kernel and
/// on the clean kernel it was patched from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Repro {
    /// The repro.c file.
    pub source: String,
    /// Which search's finding it reproduces: `fuzz` (its shrunk.yaml) or `suite`.
    pub from: String,
    pub mutant: ReproRun,
    pub clean: ReproRun,
}

impl Repro {
    /// What the column is for: it fails (or crashes) the mutant and passes the clean kernel.
    pub fn tells_them_apart(&self) -> bool {
        matches!(self.mutant.verdict, ReproVerdict::Fail | ReproVerdict::Crash)
            && self.clean.verdict == ReproVerdict::Pass
    }

    /// `mutant FAIL, clean PASS`, for a table cell.
    pub fn cell(&self) -> String {
        format!("mutant {}, clean {}", self.mutant.verdict.word(), self.clean.verdict.word())
    }
}

/// One run of a repro.c in a guest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReproRun {
    pub verdict: ReproVerdict,
    /// The program's `FAIL: ...` line, the kernel's panic, or why it did not run.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReproVerdict {
    /// It printed PASS and exited 0.
    Pass,
    /// It printed FAIL: <what> and exited 1.
    Fail,
    /// The kernel died while it ran: the planted bug reproduced as a crash.
    Crash,
    /// It could not set up, was killed, ran out of time, or would not build.
    DidNotRun,
}

impl ReproVerdict {
    pub fn word(self) -> &'static str {
        match self {
            ReproVerdict::Pass => "PASS",
            ReproVerdict::Fail => "FAIL",
            ReproVerdict::Crash => "CRASH",
            ReproVerdict::DidNotRun => "did not run",
        }
    }
}

impl Verdict {
    pub fn caught(&self) -> bool {
        self.suite.is_some() || self.fuzz.is_some()
    }

    /// Seconds to the first finding of either search.
    pub fn secs_to_find(&self) -> Option<f64> {
        [&self.suite, &self.fuzz].into_iter().flatten().map(|f| f.secs).reduce(f64::min)
    }
}

/// The verdicts as a table and a summary line.
pub fn text(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let show = |f: &Option<Found>| match f {
            Some(f) => format!("{:.1} s: {}", f.secs, f.title),
            None => "missed".to_string(),
        };
        out.push_str(&format!("{}\n  {}\n", v.name, v.about));
        // An error after the suite's finding (the fuzzer could not boot) keeps the line.
        if v.error.is_none() || v.suite.is_some() {
            out.push_str(&format!(
                "  build {:.0} s | suite {} | fuzz {}\n",
                v.build_secs,
                show(&v.suite),
                show(&v.fuzz)
            ));
        }
        if let Some(e) = &v.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if let Some(r) = &v.repro {
            out.push_str(&format!("  repro.c of the {} finding: {}\n", r.from, r.cell()));
            for (side, run) in [("mutant", &r.mutant), ("clean", &r.clean)] {
                if !run.detail.is_empty() {
                    out.push_str(&format!("    {side}: {}\n", run.detail));
                }
            }
        }
    }
    out.push_str(&summary(verdicts));
    out
}

/// `caught/total`, and the median seconds to the first finding.
pub fn summary(verdicts: &[Verdict]) -> String {
    let caught = verdicts.iter().filter(|v| v.caught()).count();
    let mut times: Vec<f64> = verdicts.iter().filter_map(Verdict::secs_to_find).collect();
    times.sort_by(f64::total_cmp);
    let median = match times.len() {
        0 => "-".to_string(),
        n if n % 2 == 1 => format!("{:.1} s", times[n / 2]),
        n => format!("{:.1} s", (times[n / 2 - 1] + times[n / 2]) / 2.0),
    };
    let by_suite = verdicts.iter().filter(|v| v.suite.is_some()).count();
    let by_fuzz = verdicts.iter().filter(|v| v.fuzz.is_some()).count();
    let mut line = format!(
        "caught {caught}/{} (suite {by_suite}, fuzz {by_fuzz}); median time to the first finding {median}",
        verdicts.len()
    );
    let repros: Vec<&Repro> = verdicts.iter().filter_map(|v| v.repro.as_ref()).collect();
    if !repros.is_empty() {
        let apart = repros.iter().filter(|r| r.tells_them_apart()).count();
        line.push_str(&format!("; repro.c fails the mutant and passes the clean kernel for {apart}/{}", repros.len()));
    }
    line + "\n"
}

/// Verdicts saved by `rmapcheck mutants` (its `mutants.json`).
pub fn read(path: &Path) -> anyhow::Result<Vec<Verdict>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A verdict for tests: found by the suite and the fuzzer after these seconds, or missed.
#[cfg(test)]
pub fn example(name: &str, suite: Option<f64>, fuzz: Option<f64>) -> Verdict {
    let found = |secs| Found { title: "O1: x".into(), secs, replay: String::new() };
    Verdict {
        name: name.into(),
        about: String::new(),
        build_secs: 1.0,
        suite: suite.map(found),
        fuzz: fuzz.map(found),
        error: None,
        repro: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_catches_and_takes_the_median_of_the_faster_search() {
        let v = [example("a", Some(2.0), Some(9.0)), example("b", None, Some(30.0)), example("c", None, None)];
        assert_eq!(v[0].secs_to_find(), Some(2.0));
        assert_eq!(summary(&v), "caught 2/3 (suite 1, fuzz 2); median time to the first finding 16.0 s\n");
    }

    fn repro(mutant: ReproVerdict, clean: ReproVerdict) -> Repro {
        let run = |verdict| ReproRun { verdict, detail: String::new() };
        Repro { source: "out/a/repro.c".into(), from: "fuzz".into(), mutant: run(mutant), clean: run(clean) }
    }

    #[test]
    fn a_repro_counts_when_it_fails_or_crashes_the_mutant_and_passes_the_clean_kernel() {
        use ReproVerdict::*;
        let mut v = [example("a", None, Some(1.0)), example("b", None, Some(2.0)), example("c", None, Some(3.0))];
        v[0].repro = Some(repro(Fail, Pass));
        v[1].repro = Some(repro(Crash, Pass));
        v[2].repro = Some(repro(Pass, Pass));
        assert!(summary(&v).ends_with("; repro.c fails the mutant and passes the clean kernel for 2/3\n"));
        assert!(text(&v).contains("  repro.c of the fuzz finding: mutant PASS, clean PASS\n"));
    }

    #[test]
    fn a_fuzzer_that_could_not_boot_leaves_the_suites_finding_standing() {
        let mut v = example("cow", Some(2.5), None);
        v.error = Some("fuzz: boot failed".into());
        assert!(v.caught());
        assert!(text(&[v]).contains("| suite 2.5 s: O1: x | fuzz missed\n  error: fuzz: boot failed\n"));
    }

    #[test]
    fn mutants_json_without_the_repro_column_still_reads() {
        let json = r#"[{"name":"a","about":"x","build_secs":1.0,"suite":null,"fuzz":null,"error":null}]"#;
        let v: Vec<Verdict> = serde_json::from_str(json).unwrap();
        assert_eq!(v[0].repro, None);
    }
}
