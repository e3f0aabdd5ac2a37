//! The fuzzer's end-to-end self-tests: each sets one of the module's test-only bugs.
//! `misreport=1`: a findpage that finds three or more mapping VMAs hides the last one
//! (O1). `overcount=1`: a large folio's mapcount is one too high (O2); its campaign gives
//! hugepage-hinted maps a whole THP. The fuzzer must find the silent bug, save it, shrink
//! it to at most 5 steps, and the saved scenario must replay the same failure, and pass
//! once the parameter is off.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::oracle::folio::pmd_pages;
use rmapcheck::check::outcome::Status;
use rmapcheck::fuzz::{self, campaign, triage};
use rmapcheck::run::runner;
use rmapcheck::scenario;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

const SEED: u64 = 7;

/// A test-only module bug, the check that must catch it, and whether its campaign needs
/// THPs.
struct Bug {
    param: &'static str,
    check: &'static str,
    thp: bool,
}

const BUGS: &[Bug] =
    &[Bug { param: "misreport", check: "O1", thp: false }, Bug { param: "overcount", check: "O2", thp: true }];

fn set(param: &str, on: bool) -> Vec<(String, String)> {
    vec![(param.into(), if on { "1" } else { "0" }.into())]
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    BUGS.iter().map(|bug| trial(key, bug, pools)).collect()
}

fn trial(key: &str, bug: &'static Bug, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    let name =
        if bug.param == "misreport" { "fuzz_selftest".to_string() } else { format!("fuzz_selftest_{}", bug.param) };
    Trial::test(format!("vm::{name}::{key}"), move || {
        let pool = pools().get(&key)?;
        let param = |on| set(bug.param, on);
        let mut gen = fuzz::GenConfig::default();
        if bug.thp {
            gen.huge_pages = pmd_pages(pool.prepared.kernel.page_size);
        }
        let tmp = tempfile::Builder::new()
            .prefix("fuzz-selftest-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| Failed::from(e.to_string()))?;
        let opts = campaign::Options {
            seed: SEED,
            limit: fuzz::Limit::Runs(40),
            jobs: 1,
            out: tmp.path().join("out"),
            gen,
            module_params: param(true),
            kernel_args: format!("--kernel {key}"),
            shrink_budget: 200,
            workroot: tmp.path().join("guests"),
        };
        // Stop at the first saved failure: the self-test needs one, not a campaign.
        let stop = AtomicBool::new(false);
        let summary = campaign::run(&pool.prepared, &opts, &stop, &|e| {
            if let fuzz::Event::Saved(_) = e {
                stop.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| Failed::from(format!("{e:#}")))?;
        let found =
            summary.found.iter().find(|f| f.title.starts_with(&format!("{}:", bug.check))).ok_or_else(|| {
                format!("no {} failure in {} runs: {:?}", bug.check, summary.last.runs, summary.found)
            })?;
        let folder: PathBuf = found.folder.clone().ok_or("the failure was not saved")?;
        for file in ["console.log", "full.yaml", "shrunk.yaml", "summary.txt", "report.txt"] {
            if !folder.join(file).is_file() {
                return Err(format!("{} lacks {file}", folder.display()).into());
            }
        }
        let summary_line = std::fs::read_to_string(folder.join("summary.txt")).unwrap_or_default();
        if summary_line.trim().lines().count() != 1
            || !summary_line.contains(&format!("--module-param {}=1", bug.param))
        {
            return Err(format!("summary.txt is not one line naming the replay: {summary_line}").into());
        }
        let shrunk = scenario::load(&folder.join("shrunk.yaml")).map_err(|e| Failed::from(e.to_string()))?;
        if shrunk.scenario.steps.len() > 5 {
            return Err(format!("shrunk to {} steps, want at most 5", shrunk.scenario.steps.len()).into());
        }

        // Replay the saved file as `rmapcheck run` would, with and without the bug.
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let fault = |f: rmapcheck::vm::guest::Fault| Failed::from(f.to_string());
        g.set_module_params(&param(true)).map_err(fault)?;
        let buggy = runner::run(&mut g, &shrunk).map_err(fault)?;
        g.set_module_params(&param(false)).map_err(fault)?;
        let clean = runner::run(&mut g, &shrunk).map_err(fault)?;
        pool.give(g);
        let titles = triage::titles(&buggy);
        if titles.first() != Some(&found.title) {
            return Err(format!("the replay failed as {titles:?}, the campaign as {:?}", found.title).into());
        }
        if clean.status != Status::Pass {
            return Err(format!("without {} the replay still fails: {:?}", bug.param, clean.problems).into());
        }
        Ok(())
    })
}
