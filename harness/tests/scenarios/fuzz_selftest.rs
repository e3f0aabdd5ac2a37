//! The fuzzer's end-to-end self-tests. Each plants a silent bug, and the fuzzer must
//! find it, save it, shrink it to its core (at most 7 steps), and the saved scenario must replay
//! the same failure, and pass once the bug is gone.
//! - O1: the module's test-only `misreport` parameter hides the last of three or more
//!   mapping VMAs from a findpage walk.
//! - O5: the test-only `poke` step changes a byte of a page through /proc/PID/mem,
//!   behind the model's back.
//! - O2: the module's test-only `overcount` parameter reports a large folio's mapcount
//!   one too high; its campaign gives hugepage-hinted maps a whole THP.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::oracle::folio::pmd_pages;
use rmapcheck::check::outcome::Status;
use rmapcheck::fuzz::{self, campaign, triage};
use rmapcheck::run::runner;
use rmapcheck::scenario::{self, Loaded, Step};
use std::path::PathBuf;

/// Its first failure shrinks to 5 steps on 4k pages. (On 16k pages its first failure is
/// on a shared map, where each of the 3 mappers must touch: 7 steps.)
const SEED: u64 = 2;

/// The overcount campaign's seed: its first O2 failure shrinks to 5 steps or fewer.
const THP_SEED: u64 = 7;

fn misreport(on: bool) -> Vec<(String, String)> {
    set("misreport", on)
}

fn set(param: &str, on: bool) -> Vec<(String, String)> {
    vec![(param.into(), if on { "1" } else { "0" }.into())]
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let k = key.to_string();
    let o1 = Trial::test(format!("vm::fuzz_selftest::{key}"), move || {
        let (found, shrunk) = find(pools, &k, SEED, fuzz::GenConfig::default(), misreport(true), "O1:")?;
        // Replay the saved file as `rmapcheck run` would, with and without the bug.
        let pool = pools().get(&k)?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let fault = |f: rmapcheck::vm::guest::Fault| Failed::from(f.to_string());
        g.set_module_params(&misreport(true)).map_err(fault)?;
        let buggy = runner::run(&mut g, &shrunk).map_err(fault)?;
        g.set_module_params(&misreport(false)).map_err(fault)?;
        let clean = runner::run(&mut g, &shrunk).map_err(fault)?;
        pool.give(g);
        same_failure_then_pass(&buggy, &clean, &found)
    });
    let k = key.to_string();
    let o5 = Trial::test(format!("vm::fuzz_selftest_o5::{key}"), move || {
        let gen = fuzz::GenConfig { weights: "poke=3".parse()?, ..fuzz::GenConfig::default() };
        let (found, shrunk) = find(pools, &k, SEED, gen, Vec::new(), "O5:")?;
        let mut clean = Loaded { path: shrunk.path.clone(), scenario: shrunk.scenario.clone() };
        clean.scenario.steps.retain(|s| !matches!(s, Step::Poke(_)));
        if clean.scenario.steps.len() == shrunk.scenario.steps.len() {
            return Err("the shrunk scenario has no poke step".into());
        }
        let pool = pools().get(&k)?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let fault = |f: rmapcheck::vm::guest::Fault| Failed::from(f.to_string());
        let buggy = runner::run(&mut g, &shrunk).map_err(fault)?;
        let clean = runner::run(&mut g, &clean).map_err(fault)?;
        pool.give(g);
        same_failure_then_pass(&buggy, &clean, &found)
    });
    let k = key.to_string();
    let o2 = Trial::test(format!("vm::fuzz_selftest_overcount::{key}"), move || {
        let pool = pools().get(&k)?;
        let gen = fuzz::GenConfig { huge_pages: pmd_pages(pool.prepared.kernel.page_size), ..Default::default() };
        let (found, shrunk) = find(pools, &k, THP_SEED, gen, set("overcount", true), "O2:")?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let fault = |f: rmapcheck::vm::guest::Fault| Failed::from(f.to_string());
        g.set_module_params(&set("overcount", true)).map_err(fault)?;
        let buggy = runner::run(&mut g, &shrunk).map_err(fault)?;
        g.set_module_params(&set("overcount", false)).map_err(fault)?;
        let clean = runner::run(&mut g, &shrunk).map_err(fault)?;
        pool.give(g);
        same_failure_then_pass(&buggy, &clean, &found)
    });
    vec![o1, o5, o2]
}

/// Run a campaign until its first saved failure whose title starts with `prefix`;
/// check the folder and the shrink, and load the shrunk scenario.
fn find(
    pools: fn() -> &'static Pools,
    key: &str,
    seed: u64,
    gen: fuzz::GenConfig,
    module_params: Vec<(String, String)>,
    prefix: &str,
) -> Result<(campaign::Found, Loaded), Failed> {
    let pool = pools().get(key)?;
    let tmp = tempfile::Builder::new()
        .prefix("fuzz-selftest-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| Failed::from(e.to_string()))?;
    let params: String = module_params.iter().map(|(k, v)| format!(" --module-param {k}={v}")).collect();
    let opts = campaign::Options {
        seed,
        limit: fuzz::Limit::Runs(40),
        jobs: 1,
        out: tmp.path().join("out"),
        gen,
        module_params,
        kernel_args: format!("--kernel {key}"),
        shrink_budget: 200,
        workroot: tmp.path().join("guests"),
        gdb: None,
        corpus: Vec::new(),
        shard: Default::default(),
        coverage: false,
        unguided: false,
        known_bugs: Vec::new(),
        // The self-test needs one saved failure, not a campaign.
        stop_at_first_finding: true,
    };
    let summary = campaign::run(&pool.prepared, &opts, &|_| {}).map_err(|e| Failed::from(format!("{e:#}")))?;
    let found = summary
        .found
        .iter()
        .find(|f| f.title.starts_with(prefix))
        .ok_or_else(|| format!("no {prefix} failure in {} runs: {:?}", summary.last.runs, summary.found))?
        .clone();
    let folder: PathBuf = found.folder.clone().ok_or("the failure was not saved")?;
    for file in ["console.log", "full.yaml", "shrunk.yaml", "summary.txt", "report.txt"] {
        if !folder.join(file).is_file() {
            return Err(format!("{} lacks {file}", folder.display()).into());
        }
    }
    let summary_line = std::fs::read_to_string(folder.join("summary.txt")).unwrap_or_default();
    if summary_line.trim().lines().count() != 1
        || !summary_line.contains(&format!("--kernel {key}{params} shrunk.yaml"))
    {
        return Err(format!("summary.txt is not one line naming the replay: {summary_line}").into());
    }
    // Counts are pages of the kernel's size, as `rmapcheck run --kernel` reads them.
    let page_size = pool.prepared.kernel.page_size;
    let (shrunk, _) = scenario::count::with_page_size(page_size, || scenario::load(&folder.join("shrunk.yaml")));
    let shrunk = shrunk.map_err(|e| Failed::from(e.to_string()))?;
    // Three sharers' core: mmap, write, two forks and a check for a private map; for a
    // shared one (fork copies none of its PTEs) mmap, two forks, three touches, a check.
    if shrunk.scenario.steps.len() > 7 {
        return Err(format!("shrunk to {} steps, want at most 7", shrunk.scenario.steps.len()).into());
    }
    Ok((found, shrunk))
}

/// The replay with the bug fails first with the campaign's title; without it, it passes.
fn same_failure_then_pass(
    buggy: &rmapcheck::check::outcome::Outcome,
    clean: &rmapcheck::check::outcome::Outcome,
    found: &campaign::Found,
) -> Result<(), Failed> {
    let titles = triage::titles(buggy);
    if titles.first() != Some(&found.title) {
        return Err(format!("the replay failed as {titles:?}, the campaign as {:?}", found.title).into());
    }
    if clean.status != Status::Pass {
        return Err(format!("without the bug the replay still fails: {:?}", clean.problems).into());
    }
    Ok(())
}
