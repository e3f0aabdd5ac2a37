//! `rmapcheck bench`: how long a guest takes to become usable (cold boot, restore), how
//! fast scenarios run in a warm guest against the naive boot-per-scenario baseline, and
//! what single agent requests cost. Every figure comes from one run, so the ratios
//! compare like with like on a shared, noisy machine.

use crate::check::outcome::Status;
use crate::image::prepare::Prepared;
use crate::report;
use crate::run::pool::Pool;
use crate::run::runner;
use crate::scenario::{request, Loaded};
use crate::vm::guest::{Fault, Guest};
use crate::vm::{qemu, vmstate};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Targets from issue 8, as ratios measured in the same run (and one absolute rate).
pub const TARGET_WARM_OVER_COLD: f64 = 20.0;
pub const TARGET_RESTORE_OVER_SPAWN: f64 = 0.2;
pub const TARGET_WARM_RUNS_PER_S: f64 = 50.0;

/// How many samples of each kind to take.
#[derive(Debug, Clone)]
pub struct Options {
    /// Boot + seed scenario + power-off cycles (also the cold spawn-to-READY samples).
    pub cold_runs: usize,
    pub restores: usize,
    pub warm_runs: usize,
    /// Requests per op in the op rates.
    pub op_iters: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { cold_runs: 3, restores: 5, warm_runs: 200, op_iters: 200 }
    }
}

/// Mean time per request of one op in the warm seed runs.
#[derive(Debug, Clone, Serialize)]
pub struct OpCost {
    pub op: String,
    pub per_run: f64,
    pub mean_us: f64,
    /// Share of a seed run's wall time spent in this op.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub kernel: String,
    pub release: String,
    pub spawn_to_ready_s: f64,
    pub spawn_to_ready_samples: Vec<f64>,
    pub restore_to_ready_s: f64,
    pub restore_to_ready_samples: Vec<f64>,
    /// Cold boot plus save, when this run had to make the snapshot.
    pub state_made_s: Option<f64>,
    pub state_bytes: u64,
    /// A restored guest's seed result equals a cold guest's (report::snapshot text).
    pub restored_matches_cold: bool,
    pub warm_seed_runs_per_s: f64,
    pub warm_seed_ms: f64,
    pub cold_seed_runs_per_s: f64,
    pub cold_seed_s: f64,
    pub ping_us: f64,
    pub fork_per_s: f64,
    pub write_per_s: f64,
    pub findpage_per_s: f64,
    pub check_all_per_s: f64,
    /// Where a warm seed run's time goes, by agent op.
    pub seed_profile: Vec<OpCost>,
    pub warm_over_cold: f64,
    pub restore_over_spawn: f64,
    pub targets_met: BTreeMap<String, bool>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn fault(f: Fault) -> anyhow::Error {
    anyhow::anyhow!("{f}")
}

/// One request that must succeed.
fn must(g: &mut Guest, op: &str, args: &str) -> Result<crate::vm::protocol::Reply> {
    let r = g.request(op, args).map_err(fault)?;
    if !r.ok {
        bail!("{op} {args}: refused: {:?}", r.fields);
    }
    Ok(r)
}

/// Run the seed scenario once and demand a pass; returns its snapshot text.
fn seed_once(g: &mut Guest, seed: &Loaded) -> Result<String> {
    let o = runner::run(g, seed).map_err(fault)?;
    if o.status != Status::Pass {
        bail!("{} did not pass:\n{}", seed.scenario.name, report::snapshot(&o));
    }
    Ok(report::snapshot(&o))
}

/// Requests per second of `iters` calls of `f`, timing only `f`.
fn rate(iters: usize, mut f: impl FnMut(usize) -> Result<Duration>) -> Result<f64> {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        total += f(i)?;
    }
    Ok(iters as f64 / total.as_secs_f64())
}

fn timed(g: &mut Guest, op: &str, args: &str) -> Result<Duration> {
    let t = Instant::now();
    must(g, op, args)?;
    Ok(t.elapsed())
}

/// Per-op request rates on a warm guest.
fn op_rates(g: &mut Guest, iters: usize, r: &mut Results) -> Result<()> {
    must(g, "reset", "")?;
    must(g, "mmap", "proc=p0 name=a pages=4 backing=anon share=private")?;
    must(g, "write", "proc=p0 name=a page=0 count=4")?;
    let pings: Vec<f64> =
        (0..iters).map(|_| timed(g, "ping", "").map(|d| d.as_secs_f64() * 1e6)).collect::<Result<_>>()?;
    r.ping_us = median(&pings);
    r.write_per_s =
        rate(iters, |i| timed(g, "write", &format!("proc=p0 name=a page={} value={}", i % 4, i % 250 + 1)))?;
    r.findpage_per_s = rate(iters, |i| timed(g, "findpage", &format!("proc=p0 name=a page={}", i % 4)))?;
    // fork only; the child's exit is outside the timing.
    r.fork_per_s = rate(iters / 4, |_| {
        let d = timed(g, "fork", "proc=p0 child=c1")?;
        must(g, "exit", "proc=c1")?;
        Ok(d)
    })?;
    // check-all as the runner does it after a step that changed mappings: pagemap of
    // everyone with contents, then the walk of each distinct page in one findpages.
    must(g, "fork", "proc=p0 child=c1")?;
    must(g, "write", "proc=c1 name=a page=3")?;
    r.check_all_per_s = rate(iters / 4, |_| {
        let t = Instant::now();
        let pm = must(g, "pagemap", "data=1")?;
        let mut seen = std::collections::BTreeSet::new();
        let mut slots = Vec::new();
        for d in pm.data.iter().filter(|d| d.contains_key("name")) {
            let (Some(proc), Some(name), Some(pfns)) = (d.get("proc"), d.get("name"), d.get("pfns")) else {
                bail!("pagemap line without proc/name/pfns: {d:?}");
            };
            for (page, pfn) in pfns.split(',').enumerate() {
                if pfn != "-" && seen.insert(pfn.to_string()) {
                    slots.push((proc.to_string(), name.to_string(), page as u64));
                }
            }
        }
        let base = g.reserve_ids(slots.len() as u64);
        let walks = request::findpages(base, &slots);
        must(g, walks.op.name(), &walks.args())?;
        Ok(t.elapsed())
    })?;
    must(g, "reset", "")?;
    Ok(())
}

fn workdir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// Run every measurement on `prepared` with `seed` as the scenario. `workroot` holds the
/// guests' console logs. `progress` hears one line per phase.
pub fn run(
    prepared: &Prepared,
    seed: &Loaded,
    workroot: &Path,
    opts: &Options,
    progress: &dyn Fn(&str),
) -> Result<Results> {
    let key = prepared.kernel.key.clone();
    let template = qemu::Config::new(&prepared.kernel.image, &prepared.initrd, workroot);
    let mut r = Results {
        kernel: key.clone(),
        release: prepared.kernel.release.clone(),
        spawn_to_ready_s: 0.0,
        spawn_to_ready_samples: Vec::new(),
        restore_to_ready_s: 0.0,
        restore_to_ready_samples: Vec::new(),
        state_made_s: None,
        state_bytes: 0,
        restored_matches_cold: false,
        warm_seed_runs_per_s: 0.0,
        warm_seed_ms: 0.0,
        cold_seed_runs_per_s: 0.0,
        cold_seed_s: 0.0,
        ping_us: 0.0,
        fork_per_s: 0.0,
        write_per_s: 0.0,
        findpage_per_s: 0.0,
        check_all_per_s: 0.0,
        seed_profile: Vec::new(),
        warm_over_cold: 0.0,
        restore_over_spawn: 0.0,
        targets_met: BTreeMap::new(),
    };

    // The naive baseline: boot, run the seed scenario, power off; its boots are also
    // the cold spawn-to-READY samples.
    progress(&format!("cold: {} x boot + {} + power-off", opts.cold_runs, seed.scenario.name));
    let mut cold_text = String::new();
    let cold_started = Instant::now();
    for i in 0..opts.cold_runs {
        let mut config = template.clone();
        config.workdir = workdir(workroot, &format!("cold{i}"));
        let mut g = Guest::start(&key, &config).map_err(fault).context("cold boot")?;
        r.spawn_to_ready_samples.push(g.boot_secs);
        cold_text = seed_once(&mut g, seed)?;
        g.shutdown();
    }
    let cold_total = cold_started.elapsed().as_secs_f64();
    r.cold_seed_s = cold_total / opts.cold_runs as f64;
    r.cold_seed_runs_per_s = opts.cold_runs as f64 / cold_total;
    r.spawn_to_ready_s = median(&r.spawn_to_ready_samples);

    progress("save: making or reusing the saved guest");
    let saved = vmstate::ensure(&key, &template).context("saving a guest")?;
    r.state_made_s = saved.made_in;
    r.state_bytes = saved.size();

    progress(&format!("restore: {} x restore-to-READY", opts.restores));
    let mut warm: Option<Guest> = None;
    for i in 0..opts.restores {
        let mut g = vmstate::restore(&saved, &template, &workdir(workroot, &format!("restore{i}")))
            .map_err(fault)
            .context("restoring the saved guest")?;
        r.restore_to_ready_samples.push(g.boot_secs);
        if i == 0 {
            r.restored_matches_cold = seed_once(&mut g, seed)? == cold_text;
            warm = Some(g);
        }
    }
    r.restore_to_ready_s = median(&r.restore_to_ready_samples);

    let mut g = warm.context("no restored guest")?;
    progress(&format!("warm: {} x {}", opts.warm_runs, seed.scenario.name));
    g.op_times.clear();
    // Warm runs go through the guest loop that `run`, the tests and fuzz use.
    let pool = Pool::new(prepared.clone(), workdir(workroot, "warm"));
    pool.give(g);
    let started = Instant::now();
    for _ in 0..opts.warm_runs {
        let o = pool.play(seed).outcome;
        if o.status != Status::Pass {
            bail!("{} did not pass:\n{}", seed.scenario.name, report::snapshot(&o));
        }
    }
    let warm_total = started.elapsed();
    // The same guest, unless one was retired, which would have failed above.
    let mut g = pool.take().map_err(fault)?;
    r.warm_seed_runs_per_s = opts.warm_runs as f64 / warm_total.as_secs_f64();
    r.warm_seed_ms = warm_total.as_secs_f64() * 1e3 / opts.warm_runs as f64;
    let mut profile: Vec<OpCost> = g
        .op_times
        .iter()
        .map(|(op, (n, d))| OpCost {
            op: op.clone(),
            per_run: *n as f64 / opts.warm_runs as f64,
            mean_us: d.as_secs_f64() * 1e6 / *n as f64,
            share: d.as_secs_f64() / warm_total.as_secs_f64(),
        })
        .collect();
    profile.sort_by(|a, b| b.share.total_cmp(&a.share));
    r.seed_profile = profile;

    progress(&format!("ops: {} requests each", opts.op_iters));
    op_rates(&mut g, opts.op_iters, &mut r)?;
    g.shutdown();

    r.warm_over_cold = r.warm_seed_runs_per_s / r.cold_seed_runs_per_s;
    r.restore_over_spawn = r.restore_to_ready_s / r.spawn_to_ready_s;
    r.targets_met = BTreeMap::from([
        ("warm_over_cold".to_string(), r.warm_over_cold >= TARGET_WARM_OVER_COLD),
        ("restore_over_spawn".to_string(), r.restore_over_spawn <= TARGET_RESTORE_OVER_SPAWN),
        ("warm_seed_runs_per_s".to_string(), r.warm_seed_runs_per_s >= TARGET_WARM_RUNS_PER_S),
        ("restored_matches_cold".to_string(), r.restored_matches_cold),
    ]);
    Ok(r)
}

/// The results as a table for people.
pub fn text(r: &Results) -> String {
    let mut out = format!("rmapcheck bench on {} ({})\n\n", r.kernel, r.release);
    let check = |ok: bool| if ok { "ok" } else { "MISSED" };
    let met = |k: &str| check(r.targets_met.get(k).copied().unwrap_or(false));
    let row = |out: &mut String, what: &str, value: String| out.push_str(&format!("{what:<38} {value}\n"));
    row(
        &mut out,
        "spawn to READY, cold boot",
        format!(
            "{:.3} s  (samples {:?})",
            r.spawn_to_ready_s,
            r.spawn_to_ready_samples.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>()
        ),
    );
    row(
        &mut out,
        "restore to READY",
        format!(
            "{:.3} s  (samples {:?})",
            r.restore_to_ready_s,
            r.restore_to_ready_samples.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>()
        ),
    );
    if let Some(s) = r.state_made_s {
        row(&mut out, "saved state made (boot + save)", format!("{s:.2} s"));
    }
    row(&mut out, "saved state size", format!("{:.1} MB", r.state_bytes as f64 / 1e6));
    row(&mut out, "restored seed result = cold result", format!("{}", r.restored_matches_cold));
    row(
        &mut out,
        "seed scenario, warm guest",
        format!("{:.1} runs/s  ({:.2} ms/run)", r.warm_seed_runs_per_s, r.warm_seed_ms),
    );
    row(
        &mut out,
        "seed scenario, cold boot per run",
        format!("{:.3} runs/s  ({:.2} s/run)", r.cold_seed_runs_per_s, r.cold_seed_s),
    );
    row(&mut out, "ping round trip (median)", format!("{:.0} us", r.ping_us));
    row(&mut out, "fork", format!("{:.0} ops/s", r.fork_per_s));
    row(&mut out, "write", format!("{:.0} ops/s", r.write_per_s));
    row(&mut out, "findpage", format!("{:.0} ops/s", r.findpage_per_s));
    row(&mut out, "check-all (2 procs, 4 pages)", format!("{:.0} ops/s", r.check_all_per_s));
    out.push_str("\nratios (same run)                      value    target\n");
    out.push_str(&format!(
        "warm / cold seed runs/s                {:<8.1} >= {TARGET_WARM_OVER_COLD}  {}\n",
        r.warm_over_cold,
        met("warm_over_cold")
    ));
    out.push_str(&format!(
        "restore / cold spawn to READY          {:<8.3} <= {TARGET_RESTORE_OVER_SPAWN}  {}\n",
        r.restore_over_spawn,
        met("restore_over_spawn")
    ));
    out.push_str(&format!(
        "warm seed runs/s (absolute)            {:<8.1} >= {TARGET_WARM_RUNS_PER_S}  {}\n",
        r.warm_seed_runs_per_s,
        met("warm_seed_runs_per_s")
    ));
    out.push_str("\nwhere a warm seed run's time goes\n  op          per run   mean us   share\n");
    for c in &r.seed_profile {
        out.push_str(&format!("  {:<10} {:>8.1} {:>9.0} {:>6.1}%\n", c.op, c.per_run, c.mean_us, c.share * 100.0));
    }
    out
}
