//! `rmapcheck sweep`: bounded exhaustive search, as CrashMonkey's ACE does for file
//! systems. Every sequence of 1 to `depth` core steps over a finite vocabulary
//! (`space`) runs once, through the fuzz campaign's workers, with every oracle after
//! every step; each new failure is shrunk and saved as a fuzz finding is. Sequence `i`
//! belongs to shard `i mod N`, and a progress file in `--out` records how far each
//! shard got, so a rerun with the same options resumes where it stopped.

pub mod progress;
pub mod space;

use super::campaign::{self, Event, Listed};
use super::schedule::Shard;
use crate::image::prepare::Prepared;
use anyhow::Result;
use progress::Progress;
use space::{Reductions, Sequence, Vocabulary};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// A sweep: the campaign's options (its limit, jobs, `--out`) plus the space's.
#[derive(Debug, Clone)]
pub struct Options {
    pub depth: usize,
    pub campaign: campaign::Options,
}

/// Done and total sequences of one op or one backing, in this shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Covered {
    pub done: u64,
    pub total: u64,
}

/// What part of the space a shard owns and has run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Sequences in the whole space, after the reductions.
    pub space: u64,
    pub reductions: Reductions,
    /// This shard's sequences.
    pub owned: u64,
    /// Finished before this run (a resume).
    pub done_before: u64,
    /// This shard's sequences still to run, in order.
    pub todo: Vec<Sequence>,
    /// Per op and per backing: which of this shard's sequences use it.
    by_op: BTreeMap<String, Vec<u64>>,
    by_backing: BTreeMap<String, Vec<u64>>,
}

/// Enumerate the space and keep what `shard` owns after `finished_through`.
pub fn plan(vocab: &Vocabulary, depth: usize, shard: Shard, finished_through: Option<u64>) -> Plan {
    let mut plan = Plan {
        space: 0,
        reductions: Reductions::default(),
        owned: 0,
        done_before: 0,
        todo: Vec::new(),
        by_op: BTreeMap::new(),
        by_backing: BTreeMap::new(),
    };
    plan.reductions = space::walk(vocab, depth, &mut |seq| {
        plan.space += 1;
        if seq.index % shard.count != shard.index {
            return;
        }
        plan.owned += 1;
        let ops: BTreeSet<&str> = seq.moves.iter().map(|(m, _)| m.op()).collect();
        for op in ops {
            plan.by_op.entry(op.to_string()).or_default().push(seq.index);
        }
        plan.by_backing.entry(seq.setup.backing_label()).or_default().push(seq.index);
        if finished_through.is_some_and(|f| seq.index <= f) {
            plan.done_before += 1;
        } else {
            plan.todo.push(seq);
        }
    });
    plan
}

impl Plan {
    /// Per op and per backing, how many of this shard's sequences are done, given the
    /// sequences finished after `finished_through` in this run.
    pub fn covered(
        &self,
        finished_through: Option<u64>,
        now: &BTreeSet<u64>,
    ) -> (BTreeMap<String, Covered>, BTreeMap<String, Covered>) {
        let done = |i: &u64| finished_through.is_some_and(|f| *i <= f) || now.contains(i);
        let tally = |m: &BTreeMap<String, Vec<u64>>| {
            m.iter()
                .map(|(k, v)| {
                    (k.clone(), Covered { done: v.iter().filter(|i| done(i)).count() as u64, total: v.len() as u64 })
                })
                .collect()
        };
        (tally(&self.by_op), tally(&self.by_backing))
    }
}

/// A sweep's end: the campaign's summary and the coverage of the space.
#[derive(Debug, Clone)]
pub struct Summary {
    pub depth: usize,
    pub campaign: campaign::Summary,
    pub space: u64,
    pub reductions: Reductions,
    pub owned: u64,
    pub done_before: u64,
    /// Finished in this run.
    pub done_now: u64,
    pub by_op: BTreeMap<String, Covered>,
    pub by_backing: BTreeMap<String, Covered>,
    pub progress_file: std::path::PathBuf,
}

/// Run a sweep on `prepared`'s guests until the shard is done, the limit comes or a
/// signal stops it.
pub fn run(prepared: &Prepared, opts: &Options, events: &(dyn Fn(Event) + Sync)) -> Result<Summary> {
    let vocab = Vocabulary::standard(prepared.kernel.page_size);
    run_with(prepared, opts, &vocab, events, &|listed, events| {
        campaign::run_listed(prepared, &opts.campaign, listed, events)
    })
}

/// The campaign that plays the listed sequences (a fake one in tests).
type Player<'a> = dyn Fn(&[Listed], &(dyn Fn(Event) + Sync)) -> Result<campaign::Summary> + 'a;

fn run_with(
    prepared: &Prepared,
    opts: &Options,
    vocab: &Vocabulary,
    events: &(dyn Fn(Event) + Sync),
    play: &Player,
) -> Result<Summary> {
    let kernel = &prepared.kernel;
    let shard = opts.campaign.shard;
    std::fs::create_dir_all(&opts.campaign.out)?;
    let path = progress::path(&opts.campaign.out, &kernel.key, shard);
    let key = vocab.key(opts.depth);
    let (start, note) = Progress::resume(&path, &key, &kernel.key, opts.depth, shard);
    if let Some(note) = note {
        events(Event::Note(note));
    }
    let plan = plan(vocab, opts.depth, shard, start.finished_through);
    events(Event::Note(format!(
        "sweep depth {}: {} sequences in the space; shard {shard} owns {}, {} done before, {} to run",
        opts.depth,
        plan.space,
        plan.owned,
        plan.done_before,
        plan.todo.len()
    )));
    let listed: Vec<Listed> = plan
        .todo
        .iter()
        .map(|s| Listed {
            run: s.index,
            scenario: s.scenario.clone(),
            what: format!("sweep sequence {} ({})", s.index, s.describe()),
        })
        .collect();
    let order: Vec<u64> = listed.iter().map(|l| l.run).collect();
    let tracker = Mutex::new(progress::Tracker::new(start, order));
    let forward = |e: Event| {
        if let Event::Finished { run } = &e {
            let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
            if t.finish(*run) {
                if let Err(err) = t.progress().save(&path, &key, &kernel.key, opts.depth, shard) {
                    events(Event::Note(format!("cannot record the sweep's progress: {err:#}")));
                }
            }
        }
        events(e);
    };
    let summary = play(&listed, &forward)?;
    let tracker = tracker.into_inner().unwrap_or_else(|e| e.into_inner());
    let (by_op, by_backing) = plan.covered(start.finished_through, tracker.finished());
    Ok(Summary {
        depth: opts.depth,
        campaign: summary,
        space: plan.space,
        reductions: plan.reductions,
        owned: plan.owned,
        done_before: plan.done_before,
        done_now: tracker.finished().len() as u64,
        by_op,
        by_backing,
        progress_file: path,
    })
}

/// The sweep's summary, one fact per line.
pub fn summary(s: &Summary) -> String {
    let c = &s.campaign;
    let done = s.done_before + s.done_now;
    let pct = |d: u64, t: u64| if t == 0 { 100.0 } else { 100.0 * d as f64 / t as f64 };
    let mut out = super::summary::head(c, "sweep", &format!("depth {}", s.depth));
    out.push_str(&format!("space: {} sequences of 1 to {} steps; symmetry reductions removed:\n", s.space, s.depth));
    for (what, n) in s.reductions.lines() {
        out.push_str(&format!("  {n} by {what}\n"));
    }
    out.push_str(&format!(
        "shard {}: {} sequences; covered {done} ({:.1}%): {} before this run, {} now; progress in {}\n",
        c.shard,
        s.owned,
        pct(done, s.owned),
        s.done_before,
        s.done_now,
        s.progress_file.display()
    ));
    for (title, map) in [("per op", &s.by_op), ("per backing", &s.by_backing)] {
        out.push_str(&format!("covered {title}:\n"));
        for (k, v) in map {
            out.push_str(&format!("  {k}: {} of {} ({:.1}%)\n", v.done, v.total, pct(v.done, v.total)));
        }
    }
    out.push_str(&format!("failures: {} unique\n", c.found.len()));
    for f in &c.found {
        let at = f.folder.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(not saved)".into());
        out.push_str(&format!("  {}x {} (first: sequence {}) -> {at}\n", f.hits, f.title, f.run));
    }
    for (finding, runs) in &c.known {
        out.push_str(&format!(
            "known kernel bug {finding} (docs/FINDINGS.md): {runs} runs failed as it; not counted\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests;
