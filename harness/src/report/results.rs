//! Persisted results: `rmapcheck run --results PATH` writes the `--format json` object
//! to a file, and `rmapcheck report` reads one or more of them back.

use crate::check::outcome::Outcome;
use crate::report;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Results {
    results: Vec<Outcome>,
}

/// Write `outcomes` as `report::json` to `path`, atomically: a reader never sees half a
/// file, and a failed run leaves the previous results in place.
pub fn write(path: &Path, outcomes: &[Outcome]) -> Result<()> {
    let text = serde_json::to_string_pretty(&report::json(outcomes))?;
    crate::cache::write_atomic(&absolute(path), text.as_bytes())
        .with_context(|| format!("writing results {}", path.display()))
}

/// The outcomes in a results file.
pub fn read(path: &Path) -> Result<Vec<Outcome>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading results {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing results {}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Outcome>> {
    Ok(serde_json::from_str::<Results>(text)?.results)
}

/// Outcomes from several files (e.g. one per kernel job) as one set: a later file's
/// result for the same scenario and kernel replaces an earlier one.
pub fn merge(sets: Vec<Vec<Outcome>>) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::new();
    for o in sets.into_iter().flatten() {
        match out.iter_mut().find(|x| x.scenario == o.scenario && x.kernel == o.kernel) {
            Some(slot) => *slot = o,
            None => out.push(o),
        }
    }
    out
}

/// `results.json` has the empty parent `""`; make it `./results.json`.
fn absolute(path: &Path) -> std::path::PathBuf {
    if path.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::outcome::Status;

    const ONE: &str = r#"{"results":[{"scenario":"s","file":"scenarios/s.yaml","kernel":"6.12",
        "release":"6.12.1","page_size":4096,"status":"fail","findpages":[],"findtasks":[],
        "checks":[],"problems":[{"check":"O1","message":"m"}],"model_mismatches":[],"notes":[],
        "splats":[{"kind":"bad-page-map","line":"BUG: Bad page map","title":"t"}],"duration_ms":3}]}"#;

    #[test]
    fn reads_what_run_writes_and_tolerates_missing_forks() {
        let o = parse(ONE).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].status, Status::Fail);
        assert!(o[0].forks.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write(&path, &o).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(report::snapshot(&back[0]), report::snapshot(&o[0]));
    }

    #[test]
    fn merge_keeps_the_last_result_per_scenario_and_kernel() {
        let a = parse(ONE).unwrap();
        let mut b = a.clone();
        b[0].status = Status::Pass;
        let mut c = a.clone();
        c[0].kernel = "7.2".into();
        let merged = merge(vec![a, b, c]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].status, Status::Pass);
    }
}
