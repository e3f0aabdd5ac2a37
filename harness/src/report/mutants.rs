//! The verdicts of `rmapcheck mutants` (which search found each planted bug, by which
//! check, how fast) and their text table; `report::html` draws them too.

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
        match &v.error {
            Some(e) => out.push_str(&format!("  error: {e}\n")),
            None => out.push_str(&format!(
                "  build {:.0} s | suite {} | fuzz {}\n",
                v.build_secs,
                show(&v.suite),
                show(&v.fuzz)
            )),
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
    format!(
        "caught {caught}/{} (suite {by_suite}, fuzz {by_fuzz}); median time to the first finding {median}\n",
        verdicts.len()
    )
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
}
