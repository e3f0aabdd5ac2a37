//! The scenario language: YAML files under scenarios/, their types, loading with
//! positioned errors, and a validation pass that runs before any guest starts.
//!
//! Architecture invariant: loading and validating a scenario does no I/O beyond reading
//! its file, and never boots a VM.

mod emit;
mod spans;
mod validate;

pub use emit::step as step_yaml;
pub use emit::to_yaml;
use schemars::JsonSchema;
use serde::Deserialize;
pub use spans::Pos;
use std::fmt;
use std::path::{Path, PathBuf};
pub use validate::{MAX_MAPS, MAX_PAGES, MAX_PROCS, MAX_STEPS};

/// The label of the first process, which exists from the start.
pub const FIRST_PROC: &str = "p0";

fn p0() -> String {
    FIRST_PROC.to_string()
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; the file should be `<name>.yaml`.
    pub name: String,
    /// One line saying what the scenario exercises.
    pub about: String,
    /// The steps, run in order.
    #[serde(deserialize_with = "serde_yaml::with::singleton_map_recursive::deserialize")]
    pub steps: Vec<Step>,
    /// Assertions on the findpage and findtask results.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One step. Steps run in `p0` unless `proc` names another process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Map `pages` pages and name the mapping.
    Mmap(Mmap),
    /// Unmap a mapping, or a range of its pages.
    Munmap(Range),
    /// Change the protection of a range (splits the VMA).
    Mprotect(Mprotect),
    /// Resize or move a mapping.
    Mremap(Mremap),
    /// madvise a range.
    Madvise(Madvise),
    /// Write `value` to every byte of the pages.
    Write(Access),
    /// Read one byte of each page (a read fault).
    Read(Access),
    /// Fork `proc`; the child gets the label `child`.
    Fork(Fork),
    /// The process exits; the step returns once it is reaped.
    Exit(Proc),
    /// Walk the rmap of one page.
    Findpage(PageRef),
    /// List a process's VMAs through the module.
    Findtask(Proc),
    /// `check: all` checks every mapped page of every live process.
    Check(CheckWhat),
    /// Run KSM until it stops merging.
    Ksm(Ksm),
    /// Test only: change one byte of a present page behind the model's back (through
    /// /proc/PID/mem), so O5 has a silent corruption to find.
    Poke(PageRef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backing {
    Anon,
    DevZero,
    Memfd,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    Private,
    Shared,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mmap {
    #[serde(default = "p0")]
    pub proc: String,
    pub name: String,
    pub pages: u64,
    pub backing: Backing,
    pub share: Share,
    /// true: MADV_HUGEPAGE on a PMD-aligned range; false: MADV_NOHUGEPAGE.
    #[serde(default)]
    pub huge: Option<bool>,
}

/// A range of pages in a mapping; without `page`, the whole mapping.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default)]
    pub page: Option<u64>,
    /// Number of pages from `page` (default: 1 when `page` is given).
    #[serde(default)]
    pub pages: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Prot {
    None,
    R,
    Rw,
    Rx,
    Rwx,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mprotect {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default)]
    pub page: u64,
    #[serde(default)]
    pub pages: Option<u64>,
    pub prot: Prot,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mremap {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    /// The new size in pages.
    pub pages: u64,
    /// Move to a fresh address (MREMAP_MAYMOVE | MREMAP_FIXED).
    #[serde(default, rename = "move")]
    pub move_: bool,
    /// Leave the old range mapped but empty (MREMAP_DONTUNMAP; implies move).
    #[serde(default)]
    pub dontunmap: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Advice {
    Dontneed,
    Dontfork,
    Dofork,
    Wipeonfork,
    Keeponfork,
    Mergeable,
    Unmergeable,
    Hugepage,
    Nohugepage,
    Collapse,
    Pageout,
    Cold,
    /// MADV_FREE: the pages keep their bytes until reclaim, then read as zeros.
    Free,
}

impl Advice {
    pub fn wire(self) -> &'static str {
        match self {
            Advice::Dontneed => "dontneed",
            Advice::Dontfork => "dontfork",
            Advice::Dofork => "dofork",
            Advice::Wipeonfork => "wipeonfork",
            Advice::Keeponfork => "keeponfork",
            Advice::Mergeable => "mergeable",
            Advice::Unmergeable => "unmergeable",
            Advice::Hugepage => "hugepage",
            Advice::Nohugepage => "nohugepage",
            Advice::Collapse => "collapse",
            Advice::Pageout => "pageout",
            Advice::Cold => "cold",
            Advice::Free => "free",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Madvise {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default)]
    pub page: u64,
    #[serde(default)]
    pub pages: Option<u64>,
    pub advice: Advice,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    pub page: u64,
    #[serde(default = "one")]
    pub pages: u64,
    /// The byte written to every byte of each page (default: a byte unique to the step,
    /// with the page's index in its map over the first 8 bytes, so pages never merge by
    /// accident and a page that moves shows).
    #[serde(default)]
    pub value: Option<u8>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fork {
    #[serde(default = "p0")]
    pub proc: String,
    pub child: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proc {
    #[serde(default = "p0")]
    pub proc: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageRef {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    pub page: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckWhat {
    All,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ksm {
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// An assertion about one findpage (`findpage: shm[0]`) or findtask (`findtask: p0`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `map[page]`, as walked by a findpage step.
    #[serde(default)]
    pub findpage: Option<String>,
    /// The process of the findpage (default: any findpage of that page).
    #[serde(default)]
    pub proc: Option<String>,
    /// A process label whose findtask listing is checked.
    #[serde(default)]
    pub findtask: Option<String>,
    /// Only on these kernels: keys (`6.1`) or page sizes (`4k`, `16k`).
    #[serde(default)]
    pub on: Option<Vec<String>>,
    #[serde(flatten)]
    pub facts: Facts,
    /// Alternatives: the expectation holds if any one of them does (for semantics that
    /// differ between kernels, e.g. KSM or COW reuse).
    #[serde(default)]
    pub any_of: Option<Vec<Facts>>,
}

/// The facts an expectation can assert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub mapcount: Option<i64>,
    #[serde(default)]
    pub mapped_by: Option<Vec<String>>,
    #[serde(default)]
    pub visited_not_mapped: Option<Vec<String>>,
    /// For findtask: the normalised VMA lines of the named maps, in address order.
    #[serde(default)]
    pub vmas: Option<Vec<String>>,
}

/// A scenario error with its place: `file.yaml:12:7: unknown mapping 'shm2'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub file: PathBuf,
    pub pos: Pos,
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.pos.line, self.pos.col, self.msg)
    }
}

/// Every error of one file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

/// Scenario files larger than this are refused before parsing.
const MAX_BYTES: usize = 1 << 20;

/// A scenario with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// Parse and validate scenario text. `file` only names the source in errors.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, Errors> {
    let err = |pos: Pos, msg: String| Errors(vec![Error { file: file.to_path_buf(), pos, msg }]);
    if text.len() > MAX_BYTES {
        return Err(err(Pos { line: 1, col: 1 }, format!("file is larger than {MAX_BYTES} bytes")));
    }
    let spans = spans::scan(text).map_err(|(pos, msg)| err(pos, msg))?;
    let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| {
        let pos = e.location().map(|l| Pos { line: l.line(), col: l.column() }).unwrap_or(Pos { line: 1, col: 1 });
        // serde's message may repeat the position; keep only the cause.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        err(pos, msg)
    })?;
    let problems = validate::validate(&scenario);
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(Errors(
            problems
                .into_iter()
                .map(|(path, msg)| Error { file: file.to_path_buf(), pos: spans.at(&path), msg })
                .collect(),
        ))
    }
}

/// Load one scenario file.
pub fn load(path: &Path) -> Result<Loaded, Errors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Errors(vec![Error { file: path.to_path_buf(), pos: Pos { line: 1, col: 1 }, msg: format!("cannot read: {e}") }])
    })?;
    parse(path, &text).map(|scenario| Loaded { path: path.to_path_buf(), scenario })
}

/// The scenario files named by `paths` (files, or directories of `*.yaml`), sorted.
pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The JSON Schema of scenario files, for editors.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}

impl Step {
    /// The process a step runs in.
    pub fn proc(&self) -> Option<&str> {
        Some(match self {
            Step::Mmap(s) => &s.proc,
            Step::Munmap(s) => &s.proc,
            Step::Mprotect(s) => &s.proc,
            Step::Mremap(s) => &s.proc,
            Step::Madvise(s) => &s.proc,
            Step::Write(s) | Step::Read(s) => &s.proc,
            Step::Fork(s) => &s.proc,
            Step::Exit(s) | Step::Findtask(s) => &s.proc,
            Step::Findpage(s) | Step::Poke(s) => &s.proc,
            Step::Check(_) | Step::Ksm(_) => return None,
        })
    }

    /// The mapping a step names, if any.
    pub fn map(&self) -> Option<&str> {
        Some(match self {
            Step::Mmap(m) => &m.name,
            Step::Munmap(r) => &r.map,
            Step::Mprotect(x) => &x.map,
            Step::Mremap(x) => &x.map,
            Step::Madvise(x) => &x.map,
            Step::Write(a) | Step::Read(a) => &a.map,
            Step::Findpage(r) | Step::Poke(r) => &r.map,
            _ => return None,
        })
    }

    /// The step's name as written in YAML.
    pub fn op(&self) -> &'static str {
        match self {
            Step::Mmap(_) => "mmap",
            Step::Munmap(_) => "munmap",
            Step::Mprotect(_) => "mprotect",
            Step::Mremap(_) => "mremap",
            Step::Madvise(_) => "madvise",
            Step::Write(_) => "write",
            Step::Read(_) => "read",
            Step::Fork(_) => "fork",
            Step::Exit(_) => "exit",
            Step::Findpage(_) => "findpage",
            Step::Findtask(_) => "findtask",
            Step::Check(_) => "check",
            Step::Ksm(_) => "ksm",
            Step::Poke(_) => "poke",
        }
    }
}

/// Split `shm[3]` into `("shm", 3)`.
pub fn parse_page_ref(s: &str) -> Option<(&str, u64)> {
    let (name, rest) = s.split_once('[')?;
    let idx = rest.strip_suffix(']')?.parse().ok()?;
    Some((name, idx))
}

#[cfg(test)]
mod tests;
