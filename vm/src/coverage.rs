//! Kernel coverage: the PCs KCOV reports per run (`Outcome::coverage`), stored compactly
//! beside each fuzz corpus entry, mapped to file, function and line through the
//! kernel's vmlinux, and summed up for the reports.
//!
//! - `pcs`: sets of PCs and their `.cov` file format;
//! - `series`: a campaign's coverage over time (`coverage*.jsonl`);
//! - `callsites`: the vmlinux's KCOV call sites (its `BL`s to the callback), which
//!   make a line coverable;
//! - `lines`: PCs to (file, function, line) with addr2line (DWARF), and the coverable
//!   lines, cached per vmlinux;
//! - `stack`: splat stack traces to file:line through the same DWARF, as
//!   decode_stacktrace.sh prints them;
//! - `summary`: per file and function, the lines reached and not, the rmap entry
//!   points never reached, and coverage-over-time curves. Pure over the two above.
//!
//! Architecture invariant: nothing here boots a guest or reads a campaign's YAML; a
//! corpus's coverage is read from its `.cov` files alone, so merges and reports need no
//! guest.

pub mod callsites;
pub mod lines;
pub mod pcs;
pub mod series;
pub mod stack;
pub mod summary;

pub use pcs::Pcs;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The corpus folder of a campaign output (`--out DIR`), or `dir` itself when it is one
/// (it holds `.yaml` entries and no `corpus/`).
pub fn corpus_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("corpus");
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// What a campaign folder says about its coverage: the union of its corpus entries'
/// `.cov` files, its series, and the kernel(s) they came from.
#[derive(Debug, Clone, Default)]
pub struct Campaign {
    pub union: Pcs,
    /// `.cov` files read.
    pub entries: usize,
    pub series: Vec<series::Series>,
}

impl Campaign {
    /// Read `dir` (a `fuzz --out` folder, a merged folder or a bare corpus folder).
    pub fn load(dir: &Path) -> Result<Campaign> {
        let mut c = Campaign::default();
        let corpus = corpus_dir(dir);
        for path in files_with(&corpus, ".cov")? {
            c.union = c.union.union(&pcs::read(&path)?.pcs);
            c.entries += 1;
        }
        for path in files_with(dir, ".jsonl")? {
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("coverage")) {
                c.series.push(series::read(&path)?);
            }
        }
        Ok(c)
    }

    /// The kernel key the campaign ran on, if its series say so.
    pub fn kernel(&self) -> Option<&str> {
        self.series.iter().find_map(|s| s.kernel.as_deref())
    }
}

/// The files in `dir` whose names end with `suffix`, sorted; none when `dir` is absent.
pub fn files_with(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    use anyhow::Context;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)))
        .collect();
    out.sort();
    Ok(out)
}

/// The vmlinux of the manifest's kernel `key`: the one in its build tree (a kernel built
/// from source), as `--gdb` finds it.
pub fn vmlinux_of(key: &str) -> Result<PathBuf> {
    use crate::image::{kernels, symbols};
    let manifest = kernels::Manifest::load()?;
    let kernel = kernels::cached(&manifest, key)?
        .with_context(|| format!("kernel {key} is not in the cache; fetch it, or pass --vmlinux"))?;
    match symbols::find(&kernel, None) {
        symbols::Symbols::Vmlinux(p) => Ok(p),
        symbols::Symbols::Missing(why) => anyhow::bail!("{why}; pass --vmlinux"),
    }
}

/// A campaign folder's coverage, mapped through a vmlinux.
pub struct Mapped {
    pub coverage: summary::Coverage,
    pub curves: Vec<summary::Curve>,
    pub vmlinux: PathBuf,
    /// What the coverage is of: the folder, its entries and kernel.
    pub what: String,
}

/// Read `dir` and map its PCs through `vmlinux`, or the vmlinux of the kernel its
/// series name.
pub fn map(dir: &Path, vmlinux: Option<&Path>) -> Result<Mapped> {
    let c = Campaign::load(dir)?;
    if c.entries == 0 {
        anyhow::bail!(
            "{}: no corpus entries with coverage (.cov files); was the kernel built with KCOV?",
            dir.display()
        );
    }
    let vmlinux = match vmlinux {
        Some(p) => p.to_path_buf(),
        None => {
            let key = c
                .kernel()
                .with_context(|| format!("{}: no coverage series names the kernel; pass --vmlinux", dir.display()))?;
            vmlinux_of(key)?
        }
    };
    let mut all = c.union.clone();
    for s in &c.series {
        for p in &s.points {
            all = all.union(&Pcs::new(p.new.clone()));
        }
    }
    let mapping = lines::Mapping::load(&vmlinux, &all)?;
    let coverage = summary::build(&mapping, &c.union);
    let curves = c.series.iter().map(|s| summary::curve(s, &mapping)).collect();
    let what = format!(
        "{} ({} corpus entries{})",
        dir.display(),
        c.entries,
        c.kernel().map(|k| format!(", kernel {k}")).unwrap_or_default()
    );
    Ok(Mapped { coverage, curves, vmlinux, what })
}
