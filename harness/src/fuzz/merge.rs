//! `rmapcheck corpus merge A B ... --out C`: one corpus and one findings folder from
//! several campaigns (shards on other machines, earlier nights).
//!
//! - Corpus entries are deduplicated by content (`corpus::content_key`, not the file
//!   name). Where entries have `.cov` files, they are taken largest first and kept only
//!   if they add PCs to the union of those kept before; entries without one are kept.
//! - Findings folders (those with a `title.txt`) are deduplicated by title; C's own come
//!   first, then the inputs' in order.
//! - Coverage series (`coverage*.jsonl`) are copied, so the report draws each shard.
//!
//! C may be one of the inputs; its corpus is replaced whole once the merge is written.

use super::corpus::content_key;
use super::triage::folder_name;
use crate::coverage::pcs::{self, CovFile};
use crate::coverage::{corpus_dir, files_with};
use crate::scenario;
use anyhow::{Context, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Merged {
    pub entries_read: usize,
    pub duplicates: usize,
    /// Entries dropped because others already reached all their PCs.
    pub redundant: usize,
    pub entries_kept: usize,
    pub pcs: usize,
    pub findings_read: usize,
    pub findings_kept: usize,
    pub series: usize,
    /// Files that were skipped, and why.
    pub notes: Vec<String>,
}

impl Merged {
    pub fn text(&self, out: &Path) -> String {
        let mut s = format!(
            "corpus: {} entries read, {} duplicates, {} redundant, {} kept ({} PCs) in {}\n",
            self.entries_read,
            self.duplicates,
            self.redundant,
            self.entries_kept,
            self.pcs,
            out.join("corpus").display()
        );
        s.push_str(&format!(
            "findings: {} read, {} kept (one per title); coverage series: {}\n",
            self.findings_read, self.findings_kept, self.series
        ));
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }
}

struct Candidate {
    key: String,
    yaml: String,
    cov: Option<CovFile>,
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = e?.path();
        let target = to.join(path.file_name().context("a file without a name")?);
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// The findings folders of a campaign output: subfolders with a `title.txt`.
fn findings(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(out) };
    let mut subs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    subs.sort();
    for sub in subs {
        if let Ok(title) = std::fs::read_to_string(sub.join("title.txt")) {
            out.push((title.trim().to_string(), sub));
        }
    }
    Ok(out)
}

pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<Merged> {
    let mut m = Merged::default();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut dirs: Vec<PathBuf> = vec![out.to_path_buf()];
    for d in inputs {
        if !d.is_dir() {
            anyhow::bail!("{}: no such folder", d.display());
        }
        if std::fs::canonicalize(d)? != std::fs::canonicalize(out)? {
            dirs.push(d.clone());
        }
    }

    // Corpus entries, deduplicated by content.
    let mut entries: Vec<Candidate> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for dir in &dirs {
        let corpus = corpus_dir(dir);
        if dir == out && !corpus.ends_with("corpus") {
            continue;
        }
        for path in files_with(&corpus, ".yaml")? {
            let loaded = match scenario::load(&path) {
                Ok(l) => l,
                Err(e) => {
                    m.notes.push(format!("{} skipped: {}", path.display(), e.to_string().lines().next().unwrap_or("")));
                    continue;
                }
            };
            m.entries_read += 1;
            let key = content_key(&loaded.scenario);
            let cov_path = path.with_extension("cov");
            let cov = if cov_path.is_file() { Some(pcs::read(&cov_path)?) } else { None };
            match by_key.get(&key) {
                Some(&i) => {
                    m.duplicates += 1;
                    if entries[i].cov.is_none() {
                        entries[i].cov = cov;
                    }
                }
                None => {
                    let yaml = std::fs::read_to_string(&path)?;
                    by_key.insert(key.clone(), entries.len());
                    entries.push(Candidate { key, yaml, cov });
                }
            }
        }
    }
    // Largest coverage first; an entry stays if it adds PCs (or has no .cov to judge).
    entries.sort_by(|a, b| {
        let len = |c: &Candidate| c.cov.as_ref().map(|c| c.pcs.len()).unwrap_or(0);
        len(b).cmp(&len(a)).then(a.key.cmp(&b.key))
    });
    let mut union = crate::coverage::Pcs::default();
    let mut kept = Vec::new();
    for e in entries {
        if let Some(c) = &e.cov {
            let new = c.pcs.minus(&union);
            if new.is_empty() {
                m.redundant += 1;
                continue;
            }
            union = union.union(&new);
        }
        kept.push(e);
    }
    m.entries_kept = kept.len();
    m.pcs = union.len();
    let staging = tempfile::Builder::new().prefix(".corpus-").tempdir_in(out)?;
    for e in &kept {
        if let Some(c) = &e.cov {
            pcs::write(&staging.path().join(format!("{}.cov", e.key)), &c.release, &c.pcs)?;
        }
        std::fs::write(staging.path().join(format!("{}.yaml", e.key)), &e.yaml)?;
    }
    let target = out.join("corpus");
    if target.exists() {
        std::fs::remove_dir_all(&target).with_context(|| format!("replacing {}", target.display()))?;
    }
    std::fs::rename(staging.keep(), &target).with_context(|| format!("writing {}", target.display()))?;

    // Findings, one per title.
    let mut titles: BTreeSet<String> = BTreeSet::new();
    for (i, dir) in dirs.iter().enumerate() {
        for (title, folder) in findings(dir)? {
            m.findings_read += 1;
            if !titles.insert(title.clone()) || i == 0 {
                // A repeat, or already in the output.
                m.findings_kept += usize::from(i == 0);
                continue;
            }
            let base = folder_name(&title);
            let mut target = out.join(&base);
            let mut n = 2;
            while target.exists() {
                target = out.join(format!("{base}-{n}"));
                n += 1;
            }
            copy_dir(&folder, &target)?;
            m.findings_kept += 1;
        }
    }

    // Coverage series, each under a name of its own.
    for dir in dirs.iter().skip(1) {
        for path in files_with(dir, ".jsonl")? {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.starts_with("coverage") {
                continue;
            }
            let text = std::fs::read(&path)?;
            let stem = name.trim_end_matches(".jsonl");
            let mut target = out.join(&name);
            let mut n = 2;
            while target.exists() && std::fs::read(&target)? != text {
                target = out.join(format!("{stem}-{n}.jsonl"));
                n += 1;
            }
            if !target.exists() {
                std::fs::write(&target, &text)?;
                m.series += 1;
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Pcs;
    use crate::fuzz::corpus::{save, Entry};
    use crate::fuzz::generate::{generate, GenConfig};
    use crate::fuzz::triage::{self, Record};

    fn entry(run: u64, pcs: Vec<u64>) -> Entry {
        let scenario = generate(&GenConfig::default(), 2, run);
        Entry { key: content_key(&scenario), scenario, pcs: Pcs::new(pcs), added: 0, saved: false }
    }

    fn finding(out: &Path, title: &str) {
        let console = out.join("c.log");
        std::fs::write(&console, "log").unwrap();
        let r = Record {
            title,
            summary: "s",
            full_yaml: "f",
            shrunk_yaml: "y",
            report: "r",
            console_log: &console,
            repro_c: "",
        };
        triage::save(out, &r).unwrap();
        std::fs::remove_file(console).unwrap();
    }

    #[test]
    fn two_shards_merge_into_one_corpus_and_one_findings_folder() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        // Shard a: entries 0 {1,2,3} and 1 {4}; shard b: entry 0 again, 2 {2,3} (adds
        // nothing), 3 {5,6}.
        for (dir, e) in [
            (&a, entry(0, vec![1, 2, 3])),
            (&a, entry(1, vec![4])),
            (&b, entry(0, vec![1, 2, 3])),
            (&b, entry(2, vec![2, 3])),
            (&b, entry(3, vec![5, 6])),
        ] {
            save(&dir.join("corpus"), &e, "6.12.9", "").unwrap();
        }
        std::fs::write(
            a.join("coverage-shard0of2.jsonl"),
            "{\"kernel\":\"k\",\"release\":\"r\",\"seed\":1,\"shard\":\"0/2\"}\n",
        )
        .unwrap();
        std::fs::write(
            b.join("coverage-shard1of2.jsonl"),
            "{\"kernel\":\"k\",\"release\":\"r\",\"seed\":1,\"shard\":\"1/2\"}\n",
        )
        .unwrap();
        finding(&a, "O1: the walk missed SLOT");
        finding(&b, "O1: the walk missed SLOT");
        finding(&b, "O3: BUG: Bad page map");
        let m = merge(&[a.clone(), b.clone()], &c).unwrap();
        assert_eq!(
            (m.entries_read, m.duplicates, m.redundant, m.entries_kept, m.pcs),
            (5, 1, 1, 3, 6),
            "{}",
            m.text(&c)
        );
        assert_eq!((m.findings_read, m.findings_kept, m.series), (3, 2, 2));
        assert_eq!(files_with(&c.join("corpus"), ".yaml").unwrap().len(), 3);
        assert_eq!(files_with(&c.join("corpus"), ".cov").unwrap().len(), 3);
        let titles: BTreeSet<String> = findings(&c).unwrap().into_iter().map(|(t, _)| t).collect();
        assert_eq!(titles.len(), 2);
        // Every kept entry replays: it loads as a scenario.
        for y in files_with(&c.join("corpus"), ".yaml").unwrap() {
            scenario::load(&y).unwrap();
        }
        // Merging again into C changes nothing.
        let again = merge(&[a, b, c.clone()], &c).unwrap();
        assert_eq!((again.entries_kept, again.findings_kept, again.series), (3, 2, 0));
        assert_eq!(findings(&c).unwrap().len(), 2);
    }
}
