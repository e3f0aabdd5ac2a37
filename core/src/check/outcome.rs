//! What playing one scenario on one kernel found: the labelled walks and listings, and
//! the problems the checks raised. Reports render it; `rmapcheck report` reads it back.

use crate::check::dmesg::{self, VmaState};
use crate::check::oracle::Problem;
use crate::check::problem::ProblemKind;
use crate::scenario::Loaded;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

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
    /// The VMAs the walk visited, sorted by their text.
    #[serde(deserialize_with = "vma_labels")]
    pub vmas: Vec<VmaLabel>,
    #[serde(skip)]
    pub mcsem: String,
}

/// One VMA a findpage walk visited, labelled; it prints as its snapshot line,
/// `c1 stack[2] rw-p anon_vma visited, not mapped`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmaLabel {
    /// The owning process, `?` when it is none of the scenario's.
    pub proc: String,
    /// The slot the page is at (`stack[2]`), else the mappings the VMA covers
    /// (`a[0..2]+b[0]`), else `?`.
    pub at: String,
    /// prot, then ` anon_vma` when the VMA has one.
    pub flags: String,
    pub state: VmaState,
}

/// A state as the snapshot line words it.
fn state_words(state: VmaState) -> &'static str {
    match state {
        VmaState::Mapped => "mapped",
        VmaState::Visited => "visited, not mapped",
        VmaState::Listed => "listed",
    }
}

impl fmt::Display for VmaLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.proc, self.at, self.flags, state_words(self.state))
    }
}

/// Results saved before VMA labels had fields hold each as its text line; read both.
fn vma_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<VmaLabel>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Label(VmaLabel),
        Line(String),
    }
    Vec::<Stored>::deserialize(d)?
        .into_iter()
        .map(|s| match s {
            Stored::Label(l) => Ok(l),
            Stored::Line(line) => {
                from_line(&line).ok_or_else(|| serde::de::Error::custom(format!("not a VMA line: {line}")))
            }
        })
        .collect()
}

/// The inverse of `Display`, for old results only.
fn from_line(line: &str) -> Option<VmaLabel> {
    // "visited, not mapped" before "mapped", which it ends with.
    let (rest, state) = [VmaState::Visited, VmaState::Mapped, VmaState::Listed]
        .into_iter()
        .find_map(|state| Some((line.strip_suffix(state_words(state))?.strip_suffix(' ')?, state)))?;
    let (proc, rest) = rest.split_once(' ')?;
    let (at, flags) = rest.split_once(' ')?;
    Some(VmaLabel { proc: proc.into(), at: at.into(), flags: flags.into(), state })
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

/// A read or write step that ended in a signal the worker caught (SIGBUS past a
/// file's end): the step's result, not a failure. `page` is where the access stopped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepSignal {
    pub step: usize,
    pub op: String,
    pub proc: String,
    pub map: String,
    pub page: u64,
    pub signal: String,
}

impl std::fmt::Display for StepSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {} {} {} {}[{}]: {}", self.step, self.op, self.proc, self.map, self.page, self.signal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
    /// Failed exactly as the scenario's `known_bug` says this kernel does.
    Xfail,
}

impl Status {
    /// Whether the run went as it should: a pass, or a known bug that showed as known.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Pass | Status::Xfail)
    }

    /// As text reports, JUnit and KTAP name it.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Xfail => "XFAIL",
        }
    }
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
    /// Read and write steps that ended in a caught signal (SIGBUS past EOF).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<StepSignal>,
    /// O1-O5, expectations and failed steps. (Results from before O4 failed runs also
    /// have `model_mismatches`, which reading ignores.)
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not failures ("unsupported on this kernel").
    pub notes: Vec<String>,
    pub splats: Vec<dmesg::Splat>,
    /// The rmap situations the run reached (`check::triggers`), for fuzz summaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// The kernel PCs (KCOV, mm/ on the kcov kernels) the run reached, sorted and
    /// unique; empty unless the run collected coverage (`fuzz --coverage`). Map them to
    /// lines with the kernel's vmlinux (`image::symbols`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<u64>,
    /// The kernel gained taint flags during the scenario; its guest is not reused.
    #[serde(skip)]
    pub tainted: bool,
    pub duration_ms: u64,
}

/// What the agent said at READY.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub key: String,
    pub release: String,
    pub page_size: u64,
    pub module_loaded: bool,
    /// The compiler that built the kernel (`gcc-12`), from the host's side.
    pub compiler: String,
}

impl Outcome {
    /// A passing outcome of `loaded` on the kernel `info` names, before any step.
    pub fn new(loaded: &Loaded, info: &Info) -> Outcome {
        Outcome {
            scenario: loaded.scenario.name.clone(),
            file: loaded.path.display().to_string(),
            kernel: info.key.clone(),
            release: info.release.clone(),
            page_size: info.page_size,
            compiler: info.compiler.clone(),
            status: Status::Pass,
            findpages: Vec::new(),
            findtasks: Vec::new(),
            forks: Vec::new(),
            checks: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            splats: Vec::new(),
            triggers: Vec::new(),
            signals: Vec::new(),
            coverage: Vec::new(),
            tainted: false,
            duration_ms: 0,
        }
    }

    /// A scenario that could not run or finish, for `why`.
    pub fn not_run(loaded: &Loaded, info: &Info, why: String) -> Outcome {
        let mut o = Outcome::new(loaded, info);
        o.status = Status::Error;
        o.problems.push(Problem::new(ProblemKind::NotRun { why }));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(proc: &str, at: &str, flags: &str, state: VmaState) -> VmaLabel {
        VmaLabel { proc: proc.into(), at: at.into(), flags: flags.into(), state }
    }

    #[test]
    fn a_label_prints_as_its_snapshot_line() {
        let l = label("c1", "stack[2]", "rw-p anon_vma", VmaState::Visited);
        assert_eq!(l.to_string(), "c1 stack[2] rw-p anon_vma visited, not mapped");
        assert_eq!(label("p0", "shm[0]", "rw-s", VmaState::Mapped).to_string(), "p0 shm[0] rw-s mapped");
        assert_eq!(label("?", "?", "r--p", VmaState::Listed).to_string(), "? ? r--p listed");
    }

    #[test]
    fn findpages_read_from_fields_and_from_old_lines() {
        let new = r#"{"at":"a[0]","proc":"p0","kind":"anon","order":0,"mapcount":1,"mapped_by":["p0"],
            "visited_not_mapped":[],"vmas":[{"proc":"p0","at":"a[0]","flags":"rw-p","state":"mapped"}]}"#;
        let old =
            new.replace(r#"{"proc":"p0","at":"a[0]","flags":"rw-p","state":"mapped"}"#, r#""p0 a[0] rw-p mapped""#);
        let want = vec![label("p0", "a[0]", "rw-p", VmaState::Mapped)];
        let fp: Findpage = serde_json::from_str(new).unwrap();
        assert_eq!(fp.vmas, want);
        assert_eq!(serde_json::from_str::<Findpage>(&old).unwrap().vmas, want);
        assert_eq!(serde_json::to_value(&fp).unwrap(), serde_json::from_str::<serde_json::Value>(new).unwrap());
        let bad = new.replace(r#"{"proc":"p0","at":"a[0]","flags":"rw-p","state":"mapped"}"#, r#""garbage""#);
        assert!(serde_json::from_str::<Findpage>(&bad).unwrap_err().to_string().contains("not a VMA line: garbage"));
    }
}
