//! The corpus: runs that reached kernel code no earlier run had (new PCs relative to
//! the union so far), kept under `--out DIR/corpus` as `<key>.yaml` (a scenario
//! `rmapcheck run` replays) and `<key>.cov` (its PCs, `coverage::pcs`). The key is a
//! hash of the steps and mTHP settings, so the same input is kept once whatever its
//! name. Seeds (`--corpus DIR`, or DIR/corpus when resuming) are any scenario files:
//! their `expect:` blocks are dropped, and they are repaired as mutants are.
//!
//! Architecture invariant: an entry appears whole: its `.cov` is written before its
//! `.yaml`, each atomically, and an entry is a `.yaml` (a `.cov` alone is ignored).

use super::generate::GenConfig;
use super::mutate;
use crate::cache;
use crate::coverage::files_with;
use crate::coverage::pcs::{self, CovFile, Pcs};
use crate::scenario::{self, to_yaml, Scenario};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The content key of a scenario: its steps and mTHP settings, not its name or about.
pub fn content_key(s: &Scenario) -> String {
    let mut bare = s.clone();
    bare.name = "x".into();
    bare.about = "x".into();
    bare.expect.clear();
    cache::Key::new().part("scenario", to_yaml(&bare, "")).short()
}

/// One input of the corpus.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub scenario: Scenario,
    /// Every PC its run reached (empty for a seed not yet run).
    pub pcs: Pcs,
    /// How many PCs it added to the union when it joined: the scheduler's weight.
    pub added: usize,
    /// Whether it is saved in this campaign's corpus folder.
    pub saved: bool,
}

/// A seed read from a folder: a scenario, and its coverage if a `.cov` lies beside it.
#[derive(Debug, Clone)]
pub struct Seed {
    pub path: PathBuf,
    pub scenario: Scenario,
    pub cov: Option<CovFile>,
}

/// The seeds in `dir` (a corpus folder, a campaign's `--out` folder, or any folder of
/// scenarios such as scenarios/). A file that does not load, or that repair empties,
/// is skipped with a note.
pub fn load_seeds(dir: &Path, cfg: &GenConfig) -> Result<(Vec<Seed>, Vec<String>)> {
    let dir = crate::coverage::corpus_dir(dir);
    if !dir.is_dir() {
        anyhow::bail!("{}: no such corpus folder", dir.display());
    }
    let (mut seeds, mut notes) = (Vec::new(), Vec::new());
    for path in files_with(&dir, ".yaml")? {
        let loaded = match scenario::load(&path) {
            Ok(l) => l,
            Err(e) => {
                notes.push(format!("seed {} skipped: {}", path.display(), e.to_string().lines().next().unwrap_or("")));
                continue;
            }
        };
        let mut s = match loaded.scenario.for_page_size(cfg.page_size) {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("seed {} skipped: {e}", path.display()));
                continue;
            }
        };
        s.expect.clear();
        s.text = None;
        let steps = mutate::repair(cfg, &s, &s.steps);
        s.steps = steps;
        if !mutate::valid(&s) {
            notes.push(format!("seed {} skipped: nothing of it is a valid fuzz input", path.display()));
            continue;
        }
        let cov_path = path.with_extension("cov");
        let cov = if cov_path.is_file() { Some(pcs::read(&cov_path)?) } else { None };
        seeds.push(Seed { path, scenario: s, cov });
    }
    Ok((seeds, notes))
}

/// The corpus of one campaign.
#[derive(Debug, Default)]
pub struct Corpus {
    pub entries: Vec<Entry>,
    pub union: Pcs,
    by_key: HashMap<String, usize>,
}

impl Corpus {
    /// Add a seed: with coverage (from the same kernel release), it joins the union
    /// now if it adds to it; without, it is a parent until its run says more. Returns
    /// whether it needs a run.
    pub fn seed(&mut self, seed: &Seed, release: &str, saved: bool) -> bool {
        let key = content_key(&seed.scenario);
        if self.by_key.contains_key(&key) {
            return false;
        }
        match &seed.cov {
            Some(cov) if cov.release == release => {
                let new = cov.pcs.minus(&self.union);
                if new.is_empty() {
                    return false;
                }
                self.union = self.union.union(&new);
                self.push(Entry {
                    key,
                    scenario: seed.scenario.clone(),
                    pcs: cov.pcs.clone(),
                    added: new.len(),
                    saved,
                });
                false
            }
            _ => {
                self.push(Entry { key, scenario: seed.scenario.clone(), pcs: Pcs::default(), added: 0, saved: false });
                true
            }
        }
    }

    fn push(&mut self, e: Entry) {
        self.by_key.insert(e.key.clone(), self.entries.len());
        self.entries.push(e);
    }

    /// A run of `s` reached `pcs`: if that adds to the union, `s` joins the corpus (or,
    /// for a seed, gets its coverage). Returns the entry and the new PCs when it did.
    pub fn offer(&mut self, s: &Scenario, pcs: Pcs) -> Option<(&Entry, Pcs)> {
        let new = pcs.minus(&self.union);
        if new.is_empty() {
            return None;
        }
        self.union = self.union.union(&new);
        let key = content_key(s);
        let i = match self.by_key.get(&key) {
            Some(&i) => {
                let e = &mut self.entries[i];
                e.pcs = pcs;
                e.added = new.len();
                i
            }
            None => {
                self.push(Entry { key, scenario: s.clone(), pcs, added: new.len(), saved: false });
                self.entries.len() - 1
            }
        };
        Some((&self.entries[i], new))
    }

    /// Mark the entry of `key` as saved.
    pub fn mark_saved(&mut self, key: &str) {
        if let Some(&i) = self.by_key.get(key) {
            self.entries[i].saved = true;
        }
    }
}

/// Save `e` into `dir` as `<key>.cov` and `<key>.yaml`, the YAML headed by `comment`.
pub fn save(dir: &Path, e: &Entry, release: &str, comment: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    pcs::write(&dir.join(format!("{}.cov", e.key)), release, &e.pcs)?;
    let yaml = dir.join(format!("{}.yaml", e.key));
    cache::write_atomic(&yaml, to_yaml(&e.scenario, comment).as_bytes())?;
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::generate::generate;

    #[test]
    fn entries_join_on_new_coverage_save_and_load_back() {
        let cfg = GenConfig::default();
        let (a, b) = (generate(&cfg, 1, 0), generate(&cfg, 1, 1));
        let mut c = Corpus::default();
        let (e, new) = c.offer(&a, Pcs::new(vec![1, 2, 3])).unwrap();
        assert_eq!((e.added, new.len()), (3, 3));
        assert!(c.offer(&b, Pcs::new(vec![2, 3])).is_none(), "nothing new");
        let mut renamed = a.clone();
        renamed.name = "other".into();
        assert_eq!(content_key(&renamed), content_key(&a));
        let (e, _) = c.offer(&b, Pcs::new(vec![3, 4])).unwrap();
        assert_eq!(e.added, 1);
        assert_eq!(c.union.as_slice(), [1, 2, 3, 4]);

        let dir = tempfile::tempdir().unwrap();
        for e in &c.entries {
            save(dir.path(), e, "6.12.9", "a comment").unwrap();
        }
        let (seeds, notes) = load_seeds(dir.path(), &cfg).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(seeds.len(), 2);
        let mut again = Corpus::default();
        // Same release: coverage is trusted, no run needed; another release: re-run.
        assert!(!again.seed(&seeds[0], "6.12.9", true));
        assert!(again.seed(&seeds[1], "6.12.10", false));
        assert!(!again.seed(&seeds[1], "6.12.10", false), "a seed is kept once");
        assert_eq!(again.entries.len(), 2);
    }

    #[test]
    fn scenario_files_seed_without_their_expectations() {
        let cfg = GenConfig::default();
        let dir = crate::project_root().join("scenarios");
        let (seeds, _notes) = load_seeds(&dir, &cfg).unwrap();
        assert!(seeds.len() >= 10, "{} seeds from scenarios/", seeds.len());
        for s in &seeds {
            assert!(s.scenario.expect.is_empty() && mutate::valid(&s.scenario), "{}", s.path.display());
        }
    }
}
