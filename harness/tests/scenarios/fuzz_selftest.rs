//! The fuzzer's end-to-end self-test: with the module's test-only `misreport` parameter
//! set, a findpage that finds three or more mapping VMAs hides the last one. The fuzzer
//! must find that silent bug (O1), save it, shrink it to at most 5 steps, and the saved
//! scenario must replay the same failure, and pass once the parameter is off.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::outcome::Status;
use rmapcheck::fuzz::{self, campaign, triage};
use rmapcheck::run::runner;
use rmapcheck::scenario;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

const SEED: u64 = 7;

fn misreport(on: bool) -> Vec<(String, String)> {
    vec![("misreport".into(), if on { "1" } else { "0" }.into())]
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let key = key.to_string();
    vec![Trial::test(format!("vm::fuzz_selftest::{key}"), move || {
        let pool = pools().get(&key)?;
        let tmp = tempfile::Builder::new()
            .prefix("fuzz-selftest-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| Failed::from(e.to_string()))?;
        let opts = campaign::Options {
            seed: SEED,
            limit: fuzz::Limit::Runs(40),
            jobs: 1,
            out: tmp.path().join("out"),
            gen: fuzz::GenConfig::default(),
            module_params: misreport(true),
            kernel_args: format!("--kernel {key}"),
            shrink_budget: 200,
            workroot: tmp.path().join("guests"),
            gdb: None,
        };
        // Stop at the first saved failure: the self-test needs one, not a campaign.
        let stop = AtomicBool::new(false);
        let summary = campaign::run(&pool.prepared, &opts, &stop, &|e| {
            if let fuzz::Event::Saved(_) = e {
                stop.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| Failed::from(format!("{e:#}")))?;
        let found = summary
            .found
            .iter()
            .find(|f| f.title.starts_with("O1:"))
            .ok_or_else(|| format!("no O1 failure in {} runs: {:?}", summary.last.runs, summary.found))?;
        let folder: PathBuf = found.folder.clone().ok_or("the failure was not saved")?;
        for file in ["console.log", "full.yaml", "shrunk.yaml", "summary.txt", "report.txt"] {
            if !folder.join(file).is_file() {
                return Err(format!("{} lacks {file}", folder.display()).into());
            }
        }
        let summary_line = std::fs::read_to_string(folder.join("summary.txt")).unwrap_or_default();
        if summary_line.trim().lines().count() != 1 || !summary_line.contains("--module-param misreport=1") {
            return Err(format!("summary.txt is not one line naming the replay: {summary_line}").into());
        }
        let shrunk = scenario::load(&folder.join("shrunk.yaml")).map_err(|e| Failed::from(e.to_string()))?;
        if shrunk.scenario.steps.len() > 5 {
            return Err(format!("shrunk to {} steps, want at most 5", shrunk.scenario.steps.len()).into());
        }

        // Replay the saved file as `rmapcheck run` would, with and without the bug.
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let fault = |f: rmapcheck::vm::guest::Fault| Failed::from(f.to_string());
        g.set_module_params(&misreport(true)).map_err(fault)?;
        let buggy = runner::run(&mut g, &shrunk).map_err(fault)?;
        g.set_module_params(&misreport(false)).map_err(fault)?;
        let clean = runner::run(&mut g, &shrunk).map_err(fault)?;
        pool.give(g);
        let titles = triage::titles(&buggy);
        if titles.first() != Some(&found.title) {
            return Err(format!("the replay failed as {titles:?}, the campaign as {:?}", found.title).into());
        }
        if clean.status != Status::Pass {
            return Err(format!("without misreport the replay still fails: {:?}", clean.problems).into());
        }
        Ok(())
    })]
}
