//! The space on small vocabularies (counted by hand), on the standard one (every
//! sequence valid and unique), sharding, and resuming a sweep whose campaign plays on
//! a fake agent.

use super::space::*;
use super::*;
use crate::fuzz::campaign::tests::{info, prepared};
use crate::fuzz::campaign::Limit;
use crate::fuzz::GenConfig;
use crate::run::pool::{play_on, Play, Played};
use crate::run::runner::errored;
use crate::scenario::{Backing, Loaded, Share, Step};
use crate::vm::fake::{ok, FakeAgent};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

fn setup(backing: Backing, share: Share, size: Size) -> Setup {
    Setup { backing, share, size, placement: Placement::Fresh }
}

fn small(moves: Vec<Move>, touches: Vec<Touch>) -> Vocabulary {
    Vocabulary { setups: vec![setup(Backing::Anon, Share::Private, Size::Small)], moves, touches, page_size: 4096 }
}

fn all(vocab: &Vocabulary, depth: usize) -> Vec<Sequence> {
    let mut out = Vec::new();
    walk(vocab, depth, &mut |s| out.push(s));
    out
}

/// The core steps and accesses of a sequence, after its setup, as YAML lines.
fn body(s: &Sequence) -> Vec<String> {
    s.scenario.steps.iter().skip(3).filter(|s| !matches!(s, Step::Check(_))).map(crate::scenario::step_yaml).collect()
}

#[test]
fn a_small_vocabulary_has_the_sequences_counted_by_hand() {
    let vocab = small(vec![Move::Munmap(Part::Page), Move::Fork], vec![Touch::Write]);
    // Depth 1: munmap page 1 in p0; fork c1 from p0.
    assert_eq!(count(&vocab, 1).0, 2);
    // Depth 2 adds: after the munmap, a fork (page 1 is gone, so no second munmap);
    // after the fork, a munmap in c1 or in p0, and a fork from c1 or from p0.
    let seqs = all(&vocab, 2);
    assert_eq!(seqs.len(), 2 + 1 + 4);
    let indices: Vec<u64> = seqs.iter().map(|s| s.index).collect();
    assert_eq!(indices, (0..7).collect::<Vec<_>>());
    // Each step is followed by its write, then a check: after munmap of page 1 the
    // write covers pages 0 and 2..8, in ascending order.
    assert_eq!(
        body(&seqs[0]),
        [
            "munmap: { map: \"a\", page: 1, pages: 1 }",
            "write: { map: \"a\", page: 0, pages: 1 }",
            "write: { map: \"a\", page: 2, pages: 6 }"
        ]
    );
    assert!(matches!(seqs[0].scenario.steps.last(), Some(Step::Check(_))));
}

#[test]
fn the_standard_space_has_326_sequences_at_depth_1_and_6430_at_depth_2() {
    let (n1, _) = count(&Vocabulary::standard(4096), 1);
    let (n2, r) = count(&Vocabulary::standard(4096), 2);
    // 16 setups x (write, read) x the core steps in p0: 11 where the map may grow
    // (private anon, 3 sizes), 10 elsewhere.
    assert_eq!(n1, (3 * 11 + 13 * 10) * 2);
    assert_eq!(n2, 6430, "{r:?}");
}

#[test]
fn every_enumerated_scenario_validates_at_4k_and_16k() {
    for (page_size, depth) in [(4096, 2), (16384, 1)] {
        let mut n = 0;
        walk(&Vocabulary::standard(page_size), depth, &mut |s| {
            let text = crate::scenario::to_yaml(&s.scenario, "");
            let path = PathBuf::from(format!("{}.yaml", s.scenario.name));
            if let Err(e) = crate::scenario::parse(&path, &text) {
                panic!("{}\n{e}\n{text}", s.describe());
            }
            n += 1;
        });
        assert!(n > 300, "{n}");
    }
}

#[test]
fn sharding_partitions_the_space_exactly() {
    let vocab = Vocabulary::standard(4096);
    let (space, _) = count(&vocab, 2);
    for n in [1, 3, 7] {
        let mut seen = vec![0u32; space as usize];
        for i in 0..n {
            let plan = plan(&vocab, 2, Shard { index: i, count: n }, None);
            assert_eq!(plan.space, space);
            assert_eq!(plan.owned, plan.todo.len() as u64);
            for s in &plan.todo {
                assert_eq!(s.index % n, i);
                seen[s.index as usize] += 1;
            }
        }
        assert!(seen.iter().all(|c| *c == 1), "shards of {n} overlap or miss a sequence");
    }
}

#[test]
fn no_two_sequences_are_the_same_and_children_are_labelled_in_order() {
    let seqs = all(&Vocabulary::standard(4096), 2);
    let mut texts: Vec<String> =
        seqs.iter().map(|s| format!("{:?} {}", s.scenario.mthp, body_with_setup(s).join("\n"))).collect();
    texts.sort();
    let before = texts.len();
    texts.dedup();
    assert_eq!(texts.len(), before);
    for s in &seqs {
        let children: Vec<&str> = s
            .scenario
            .steps
            .iter()
            .filter_map(|st| match st {
                Step::Fork(f) => Some(f.child.as_str()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (1..=children.len()).map(|k| format!("c{k}")).collect();
        assert_eq!(children, expected, "{}", s.describe());
    }
}

fn body_with_setup(s: &Sequence) -> Vec<String> {
    s.scenario.steps.iter().map(crate::scenario::step_yaml).collect()
}

#[test]
fn twin_setups_keep_the_anon_one_and_count_what_they_remove() {
    let mut vocab = small(vec![Move::Munmap(Part::Page), Move::Fork], vec![Touch::Write, Touch::Read]);
    let (alone, _) = count(&vocab, 2);
    vocab.setups.push(setup(Backing::DevZero, Share::Private, Size::Small));
    let (n, r) = count(&vocab, 2);
    assert_eq!(n, alone);
    assert_eq!(r.twin_setups, alone);
    assert!(all(&vocab, 2).iter().all(|s| s.setup.backing == Backing::Anon));
}

#[test]
fn ranges_that_coincide_are_played_once() {
    // Two shrinks leave 2 pages: the first half and the middle half are both page 0.
    let vocab = small(
        vec![Move::Mremap(Remap::Shrink), Move::Munmap(Part::Half), Move::Munmap(Part::Across)],
        vec![Touch::Write],
    );
    let (n, r) = count(&vocab, 3);
    // shrink, shrink, then a last shrink or one munmap of page 0 for both classes.
    assert_eq!(r.equal_ranges, 1, "{r:?}");
    let seqs = all(&vocab, 3);
    assert_eq!(seqs.len() as u64, n);
    let two_shrinks_then: Vec<String> = seqs
        .iter()
        .filter(|s| s.moves.len() == 3 && s.moves[..2].iter().all(|(m, _)| *m == Move::Mremap(Remap::Shrink)))
        .map(|s| s.moves[2].0.label())
        .collect();
    assert_eq!(two_shrinks_then, ["mremap shrink", "munmap half"]);
}

#[test]
fn a_write_with_nothing_writable_is_not_offered_beside_the_read() {
    let vocab = small(vec![Move::Mprotect(Part::Across), Move::Munmap(Part::Whole)], vec![Touch::Write, Touch::Read]);
    let seqs = all(&vocab, 1);
    // mprotect: write (pages 0-1 and 6-7) or read; munmap whole: nothing left to access.
    assert_eq!(seqs.len(), 3);
    let (_, r) = count(&vocab, 1);
    assert_eq!(r.equal_touches, 1);
}

#[test]
fn a_repeated_mprotect_to_read_only_is_cut_as_a_no_op() {
    let vocab = small(vec![Move::Mprotect(Part::Page)], vec![Touch::Write, Touch::Read]);
    let (n, r) = count(&vocab, 2);
    assert_eq!(n, 2);
    // Each of the two sequences would have had the repeat, with a write and a read.
    assert_eq!(r.no_op_repeats, 4);
}

/// A guest on which every request succeeds and every page reads back as the model
/// says: a clean kernel.
struct CleanGuests {
    played: Mutex<Vec<String>>,
}

impl Play for CleanGuests {
    fn play(&self, loaded: &Loaded) -> Played {
        self.played.lock().unwrap().push(loaded.scenario.name.clone());
        let mut guest = FakeAgent::answering(info(), |op, _| match op {
            "tainted" => ok("value=0", &[]),
            _ => ok("", &[]),
        });
        let (ran, _) = play_on(&mut guest, loaded);
        let console = PathBuf::new();
        match ran {
            Ok(outcome) => Played { outcome, fault: None, console },
            Err(fault) => Played { outcome: errored(loaded, &info(), &fault), fault: Some(fault), console },
        }
    }

    fn boots(&self) -> u64 {
        0
    }
}

fn options(dir: &std::path::Path, limit: Limit, shard: Shard) -> Options {
    let campaign = campaign::Options {
        seed: 0,
        limit,
        jobs: 1,
        out: dir.join("out"),
        gen: GenConfig::default(),
        module_params: Vec::new(),
        kernel_args: "--kernel 6.12".into(),
        shrink_budget: 0,
        workroot: dir.join("work"),
        gdb: None,
        corpus: Vec::new(),
        shard,
        coverage: false,
        unguided: false,
        known_bugs: Vec::new(),
        stop_at_first_finding: false,
    };
    Options { depth: 2, campaign }
}

/// One sweep over `vocab` on clean fake guests: the names of the sequences it played.
fn sweep(vocab: &Vocabulary, opts: &Options) -> (Summary, Vec<String>) {
    let guests = CleanGuests { played: Mutex::default() };
    let halt = AtomicBool::new(false);
    let prepared = prepared();
    let summary = run_with(&prepared, opts, vocab, &|_| {}, &|listed, events| {
        campaign::play(&prepared, &opts.campaign, &halt, events, &guests, Some(listed))
    })
    .unwrap();
    (summary, guests.played.into_inner().unwrap())
}

#[test]
fn a_rerun_resumes_after_the_last_finished_sequence() {
    let vocab = small(vec![Move::Munmap(Part::Page), Move::Fork], vec![Touch::Write]);
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard { index: 1, count: 2 };
    // Shard 1 of 2 owns sequences 1, 3, 5; the first sweep stops after two of them.
    let (first, played) = sweep(&vocab, &options(dir.path(), Limit::Runs(2), shard));
    assert_eq!(played, ["sweep-d2-1", "sweep-d2-3"]);
    assert!(first.campaign.found.is_empty(), "{:?}", first.campaign.found);
    assert_eq!((first.owned, first.done_before, first.done_now), (3, 0, 2));
    let (second, played) = sweep(&vocab, &options(dir.path(), Limit::Unbounded, shard));
    assert_eq!(played, ["sweep-d2-5"]);
    assert_eq!((second.done_before, second.done_now), (2, 1));
    assert!(summary(&second).contains("covered 3 (100.0%)"), "{}", summary(&second));
    // Done: a third sweep plays nothing.
    let (_, played) = sweep(&vocab, &options(dir.path(), Limit::Unbounded, shard));
    assert!(played.is_empty(), "{played:?}");
    // Another depth is another space: it starts over.
    let mut deeper = options(dir.path(), Limit::Runs(1), shard);
    deeper.depth = 1;
    let (_, played) = sweep(&vocab, &deeper);
    assert_eq!(played, ["sweep-d1-1"]);
}

#[test]
fn progress_moves_only_past_sequences_whose_predecessors_finished() {
    let mut t = progress::Tracker::new(progress::Progress { finished_through: Some(2) }, vec![5, 8, 11]);
    // 8 finishes first (two jobs): 5 is still running, so nothing is recorded yet.
    assert!(!t.finish(8));
    assert_eq!(t.progress().finished_through, Some(2));
    assert!(t.finish(5));
    assert_eq!(t.progress().finished_through, Some(8));
    assert!(t.finish(11));
    assert_eq!(t.progress().finished_through, Some(11));
    assert_eq!(t.finished().len(), 3);
}
