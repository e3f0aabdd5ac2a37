//! What playing one scenario on one kernel found: the labelled walks and listings, and
//! the problems the checks raised. Reports render it; `rmapcheck report` reads it back.

use crate::check::dmesg;
use crate::check::oracle::Problem;
use serde::{Deserialize, Serialize};

/// What one findpage found, labelled (no pids or addresses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Findpage {
    pub at: String,
    pub proc: String,
    pub kind: String,
    pub order: u32,
    pub mapcount: i64,
    pub mapped_by: Vec<String>,
    pub visited_not_mapped: Vec<String>,
    /// Normalised VMA lines, sorted.
    pub vmas: Vec<String>,
    #[serde(skip)]
    pub mcsem: String,
}

/// What one findtask listed, normalised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Findtask {
    pub proc: String,
    pub vmas: Vec<String>,
}

/// One fork step that succeeded: `parent` forked `child`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fork {
    pub parent: String,
    pub child: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
}

/// The result of one scenario on one kernel. It reads back from the JSON it writes, so
/// `rmapcheck report` can render results of earlier runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub scenario: String,
    pub file: String,
    pub kernel: String,
    pub release: String,
    pub page_size: u64,
    /// The compiler that built the kernel (`gcc-12`); absent in results from before it.
    #[serde(default)]
    pub compiler: String,
    pub status: Status,
    pub findpages: Vec<Findpage>,
    pub findtasks: Vec<Findtask>,
    /// Who forked whom, in step order: the process tree that reports draw.
    #[serde(default)]
    pub forks: Vec<Fork>,
    /// One line per `check: all`: how much it covered.
    pub checks: Vec<String>,
    /// O1-O5, expectations and failed steps. (Results from before O4 failed runs also
    /// have `model_mismatches`, which reading ignores.)
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not failures ("unsupported on this kernel").
    pub notes: Vec<String>,
    pub splats: Vec<dmesg::Splat>,
    /// The kernel gained taint flags during the scenario; its guest is not reused.
    #[serde(skip)]
    pub tainted: bool,
    pub duration_ms: u64,
}
