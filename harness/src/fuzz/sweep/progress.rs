//! How far a sweep shard got: a small JSON file in `--out` per kernel and shard,
//! holding the last sequence up to which every sequence of the shard finished. Runs
//! finish out of order with several jobs, so the file only moves past a sequence once
//! all the shard's sequences before it are done; a stop loses at most the runs in flight.

use super::Shard;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The progress file of one kernel and shard.
pub fn path(out: &Path, kernel: &str, shard: Shard) -> PathBuf {
    out.join(format!("sweep-progress-{kernel}-shard{}of{}.json", shard.index, shard.count))
}

/// What the file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Every sequence of the shard up to this number is done.
    pub finished_through: Option<u64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct File {
    /// The space's key ([`super::Vocabulary::key`]): another space starts over.
    space: String,
    kernel: String,
    depth: usize,
    shard: String,
    finished_through: Option<u64>,
}

impl Progress {
    /// Where to resume from: the file's progress when it describes the same space,
    /// kernel and shard; else from the start, with a note saying why.
    pub fn resume(path: &Path, space: &str, kernel: &str, depth: usize, shard: Shard) -> (Progress, Option<String>) {
        let Ok(text) = std::fs::read_to_string(path) else { return (Progress::default(), None) };
        let at = path.display();
        let file: File = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => return (Progress::default(), Some(format!("{at}: unreadable ({e}); the sweep starts over"))),
        };
        if file.space != space || file.kernel != kernel || file.depth != depth || file.shard != shard.to_string() {
            let why =
                format!("{at} is for another sweep (its vocabulary, kernel, depth or shard differ); starting over");
            return (Progress::default(), Some(why));
        }
        let progress = Progress { finished_through: file.finished_through };
        let note = file.finished_through.map(|n| format!("{at}: resuming after sequence {n}"));
        (progress, note)
    }

    /// Write the file (whole, then renamed: a stop never leaves half a file).
    pub fn save(&self, path: &Path, space: &str, kernel: &str, depth: usize, shard: Shard) -> Result<()> {
        let file = File {
            space: space.to_string(),
            kernel: kernel.to_string(),
            depth,
            shard: shard.to_string(),
            finished_through: self.finished_through,
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&file)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }
}

/// The shard's sequences of this run as they finish.
pub struct Tracker {
    progress: Progress,
    /// The sequences to run, in order.
    order: Vec<u64>,
    /// How many of `order` are done from its start.
    prefix: usize,
    finished: BTreeSet<u64>,
}

impl Tracker {
    pub fn new(start: Progress, order: Vec<u64>) -> Tracker {
        Tracker { progress: start, order, prefix: 0, finished: BTreeSet::new() }
    }

    /// Record sequence `run` as done; true when the progress moved.
    pub fn finish(&mut self, run: u64) -> bool {
        self.finished.insert(run);
        let before = self.prefix;
        while self.order.get(self.prefix).is_some_and(|i| self.finished.contains(i)) {
            self.prefix += 1;
        }
        if self.prefix == before {
            return false;
        }
        self.progress.finished_through = Some(self.order[self.prefix - 1]);
        true
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The sequences finished in this run.
    pub fn finished(&self) -> &BTreeSet<u64> {
        &self.finished
    }
}
