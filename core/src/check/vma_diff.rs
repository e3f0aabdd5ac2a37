//! What O6 finds: a process's VMAs over a map that differ from the model's. Apart
//! from `vmas`, which finds them, so that problems can hold one without a module cycle
//! (oracle -> problem -> vmas -> oracle).

use std::fmt;

/// What differs between the kernel's VMAs over a map and the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Pages `lo..hi` are mapped (`true`) where the model has nothing, or not.
    Mapped(bool),
    /// A VMA ends at page `lo` where the model has one VMA across it (a split).
    Split,
    /// One VMA runs across page `lo` where the model has two (a merge).
    Merged,
    Perms {
        got: String,
        want: String,
    },
    Pgoff {
        got: u64,
        want: u64,
    },
    /// Its inode: 0 where anonymous; `want` says what the model expects.
    Inode {
        got: u64,
        want: String,
    },
}

/// An O6 problem: after step `n` (`op`), `proc`'s VMAs over `map[lo..hi]` differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub n: usize,
    pub op: String,
    pub proc: String,
    pub map: String,
    pub lo: u64,
    pub hi: u64,
    pub diff: Diff,
}

impl Mismatch {
    /// The failure's identity: the step's op and what differs, never pages or values.
    pub fn title(&self) -> String {
        let what = match &self.diff {
            Diff::Mapped(true) => "pages are mapped that the model has unmapped",
            Diff::Mapped(false) => "pages the model maps are not mapped",
            Diff::Split => "a VMA ends where the model has one VMA (a split)",
            Diff::Merged => "one VMA spans two of the model's (a merge)",
            Diff::Perms { .. } => "a VMA's permissions differ from the model's",
            Diff::Pgoff { .. } => "a VMA's pgoff differs from the model's",
            Diff::Inode { .. } => "a VMA's file differs from the model's",
        };
        format!("after {}: {what}", self.op)
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Mismatch { n, op, proc, map, lo, hi, diff } = self;
        write!(f, "step {n} ({op}): ")?;
        match diff {
            Diff::Mapped(true) => write!(f, "{proc}'s {map}[{lo}..{hi}] is mapped, model unmapped"),
            Diff::Mapped(false) => write!(f, "{proc}'s {map}[{lo}..{hi}] is not mapped, model mapped"),
            Diff::Split => write!(f, "{proc}'s VMA at {map}[{lo}..{hi}] ends at page {lo}, model one VMA across it"),
            Diff::Merged => {
                write!(f, "{proc}'s VMA at {map}[{lo}..{hi}] runs across page {lo}, model a VMA boundary there")
            }
            Diff::Perms { got, want } => write!(f, "{proc}'s VMA at {map}[{lo}..{hi}] is {got}, model {want}"),
            Diff::Pgoff { got, want } => {
                write!(f, "{proc}'s VMA at {map}[{lo}..{hi}] has pgoff 0x{got:x}, model 0x{want:x}")
            }
            Diff::Inode { got, want } => {
                write!(f, "{proc}'s VMA at {map}[{lo}..{hi}] has inode 0x{got:x}, model {want}")
            }
        }
    }
}
