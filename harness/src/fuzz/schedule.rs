//! What a campaign runs next: a seed that has not run yet, a mutant of a corpus entry,
//! or a freshly generated run; and which run numbers a shard owns.
//!
//! Architecture invariant: the choice is a pure function of the configuration, the
//! seed, the run number and the corpus; so with `--jobs 1` the same seed, corpus and
//! kernel (which decides what joins the corpus) give the same campaign. With an empty
//! corpus it is exactly `generate(cfg, seed, run)`, the campaign's behaviour without
//! coverage.

use super::corpus::Entry;
use super::generate::{generate, run_seed, GenConfig};
use super::mutate::mutate;
use crate::scenario::{Scenario, Step};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::str::FromStr;

/// One run in this many is freshly generated while the corpus has entries.
pub const FRESH_ONE_IN: u32 = 4;

/// Keeps the mutation stream apart from the generator's stream of the same run.
const MUTATION_SALT: u64 = 0x6d75_7461_6e74_2121;

/// `--shard I/N`: this machine runs the run numbers `I, I+N, I+2N, ...` of the seed, so
/// N machines with the same command (and another `I`) run disjoint campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// The run number of this shard's `k`th generated or mutated run.
    pub fn run(&self, k: u64) -> u64 {
        k * self.count + self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("'{s}' is not a shard I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where an input came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Generated,
    /// A mutant of the named entry, by these mutations.
    Mutant {
        parent: String,
        kinds: Vec<&'static str>,
    },
    /// A seed's first run in this campaign.
    Seed,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Input {
    pub scenario: Scenario,
    pub origin: Origin,
}

/// How often an entry is drawn as a parent: more for the coverage it added, less for
/// what a run of it costs (as AFL favours fast inputs). Every page a run maps is read
/// at each check and its frames walked, so the pages its maps take stand for the cost;
/// a THP-sized map makes a run several times slower. From the scenario alone, so the
/// choice stays a pure function of the corpus.
fn weight(e: &Entry) -> f64 {
    let pages: u64 = e.scenario.steps.iter().map(|s| if let Step::Mmap(m) = s { m.pages } else { 0 }).sum();
    (1.0 + (e.added as f64).sqrt()) / (1.0 + pages as f64 / 64.0).sqrt()
}

/// The input of run `run`: fresh with an empty corpus and one time in `FRESH_ONE_IN`;
/// else a mutant of an entry drawn by `weight` (with another entry to splice from).
pub fn next(cfg: &GenConfig, seed: u64, run: u64, corpus: &[Entry]) -> Input {
    let fresh = || Input { scenario: generate(cfg, seed, run), origin: Origin::Generated };
    if corpus.is_empty() {
        return fresh();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(run_seed(seed ^ MUTATION_SALT, run));
    if rng.gen_ratio(1, FRESH_ONE_IN) {
        return fresh();
    }
    let Ok(parent) = corpus.choose_weighted(&mut rng, weight) else { return fresh() };
    let donor = corpus.choose(&mut rng);
    match mutate(cfg, &parent.scenario, donor.map(|d| &d.scenario), &mut rng) {
        Some((mut s, kinds)) => {
            s.name = format!("fuzz-s{seed}-r{run}");
            s.about = format!(
                "mutant of {} ({}) by rmapcheck fuzz, seed {seed}, run {run}",
                parent.scenario.name,
                kinds.join(", ")
            );
            Input { scenario: s, origin: Origin::Mutant { parent: parent.scenario.name.clone(), kinds } }
        }
        None => fresh(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Pcs;
    use crate::fuzz::corpus::Corpus;
    use crate::scenario::to_yaml;

    /// A campaign without a guest: run `runs` inputs, where a stand-in kernel says each
    /// run reached one PC per distinct (op, proc) pair of its steps. Returns every
    /// input as YAML.
    fn campaign(cfg: &GenConfig, seed: u64, seeds: &[Scenario], shard: Shard, runs: u64) -> Vec<String> {
        let kernel = |s: &Scenario| {
            let mut pcs: Vec<u64> = Vec::new();
            for st in &s.steps {
                let h = crate::cache::Key::new().part("", format!("{}{:?}", st.op(), st.proc())).short();
                pcs.push(u64::from_str_radix(&h[..8], 16).unwrap());
            }
            Pcs::new(pcs)
        };
        let mut corpus = Corpus::default();
        let mut out = Vec::new();
        for s in seeds {
            out.push(to_yaml(s, ""));
            corpus.offer(s, kernel(s));
        }
        for k in 0..runs {
            let input = next(cfg, seed, shard.run(k), &corpus.entries);
            corpus.offer(&input.scenario, kernel(&input.scenario));
            out.push(to_yaml(&input.scenario, ""));
        }
        out
    }

    #[test]
    fn the_same_seed_corpus_and_coverage_give_the_same_campaign() {
        let cfg = GenConfig { steps: 12, ..GenConfig::default() };
        let seeds = vec![generate(&cfg, 99, 0), generate(&cfg, 99, 1)];
        let a = campaign(&cfg, 5, &seeds, Shard::default(), 60);
        assert_eq!(a, campaign(&cfg, 5, &seeds, Shard::default(), 60));
        assert_ne!(a, campaign(&cfg, 6, &seeds, Shard::default(), 60), "another seed");
        assert_ne!(a, campaign(&cfg, 5, &seeds[..1], Shard::default(), 60), "another corpus");
        let mutants = a.iter().filter(|y| y.contains("about: \"mutant of") || y.contains("about: mutant of")).count();
        assert!(mutants >= 30, "{mutants} of 60 runs were mutants");
    }

    #[test]
    fn cheap_entries_are_drawn_more_often_than_costly_ones_of_the_same_worth() {
        let entry = |pages: &str| {
            let yaml = format!(
                "name: e\nabout: e\nsteps:\n  - mmap: {{ name: a, pages: {pages}, backing: anon, share: private }}\n"
            );
            let scenario = crate::scenario::parse(std::path::Path::new("e.yaml"), &yaml).unwrap();
            Entry { key: String::new(), scenario, pcs: Pcs::default(), added: 100, saved: false }
        };
        let (small, thp) = (weight(&entry("4")), weight(&entry("512")));
        assert!(small > 2.5 * thp, "{small} against {thp}");
        let more = Entry { added: 400, ..entry("4") };
        assert!(weight(&more) > small, "more coverage weighs more");
    }

    #[test]
    fn without_a_corpus_runs_are_the_generators() {
        let cfg = GenConfig::default();
        for run in 0..20 {
            let i = next(&cfg, 3, run, &[]);
            assert_eq!(i.origin, Origin::Generated);
            assert_eq!(to_yaml(&i.scenario, ""), to_yaml(&generate(&cfg, 3, run), ""));
        }
    }

    #[test]
    fn shards_split_the_run_numbers() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!((0..4).map(|k| s.run(k)).collect::<Vec<_>>(), [1, 4, 7, 10]);
        assert_eq!(s.to_string(), "1/3");
        assert_eq!(Shard::default().run(7), 7);
        for bad in ["3/3", "1/0", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let all: std::collections::BTreeSet<u64> =
            (0..3).flat_map(|i| (0..10).map(move |k| Shard { index: i, count: 3 }.run(k))).collect();
        assert_eq!(all.len(), 30, "shards never share a run number");
    }
}
