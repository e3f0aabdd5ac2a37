//! Kernel PCs to source: (file, function, line) through the vmlinux's DWARF with the
//! `addr2line` crate, and every coverable line of the files the report covers: a line
//! with a KCOV call site on it (`callsites`), since no other line can ever be reached.
//! The result is cached per vmlinux (path, size, mtime) under the cache's `coverage/`,
//! and extended when new PCs come; a vmlinux is only opened when something is missing.
//!
//! Without DWARF (a kernel built without CONFIG_DEBUG_INFO) a PC maps to its symbol
//! alone: functions, no files or lines. Without KCOV no line is coverable.

use super::callsites;
use super::pcs::Pcs;
use crate::cache;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files the coverage report shows line by line.
pub const FILES: &[&str] = &[
    "mm/rmap.c",
    "mm/memory.c",
    "mm/huge_memory.c",
    "mm/mremap.c",
    "mm/ksm.c",
    "mm/migrate.c",
    "mm/page_vma_mapped.c",
    // VMA merge and split (6.12 moved them out of mm/mmap.c, which older kernels show).
    "mm/vma.c",
    "mm/mmap.c",
    "mm/gup.c",
    "mm/hugetlb.c",
    "mm/khugepaged.c",
    "mm/truncate.c",
    "mm/shmem.c",
    "mm/page-writeback.c",
    "mm/userfaultfd.c",
    "mm/vmscan.c",
];

/// One source position: a file (relative to the kernel tree), the function it is in,
/// and a line. Without DWARF, `file` is empty and `line` 0.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Frame {
    pub file: String,
    pub function: String,
    pub line: u32,
}

const EM_AARCH64: u16 = 183;

/// An open vmlinux.
pub struct Symbolizer {
    loader: addr2line::Loader,
    machine: u16,
    /// The vmlinux's folder with a trailing slash: absolute paths under it are shown
    /// relative to it.
    root: String,
    path: PathBuf,
}

impl Symbolizer {
    pub fn open(vmlinux: &Path) -> Result<Symbolizer> {
        let head = std::fs::read(vmlinux).map(|b| b.get(..20).map(<[u8]>::to_vec));
        let head = head.with_context(|| format!("reading {}", vmlinux.display()))?;
        let head = head
            .filter(|h| h.starts_with(b"\x7fELF"))
            .with_context(|| format!("{}: not an ELF file", vmlinux.display()))?;
        let machine = u16::from_le_bytes([head[18], head[19]]);
        let loader = addr2line::Loader::new(vmlinux)
            .map_err(|e| anyhow::anyhow!("{}: cannot read its symbols: {e}", vmlinux.display()))?;
        let dir = std::fs::canonicalize(vmlinux)
            .ok()
            .and_then(|p| p.parent().map(|d| d.display().to_string()))
            .unwrap_or_default();
        Ok(Symbolizer { loader, machine, root: format!("{dir}/"), path: vmlinux.to_path_buf() })
    }

    /// The instruction a KCOV PC stands for. KCOV records the return address of its
    /// callback; the call is the instruction before it (4 bytes on arm64; elsewhere one
    /// byte back lands inside the call).
    pub fn call_site(&self, pc: u64) -> u64 {
        if self.machine == EM_AARCH64 {
            pc.saturating_sub(4)
        } else {
            pc.saturating_sub(1)
        }
    }

    /// A file as the report names it: one of `FILES` when it ends with one, else
    /// relative to the vmlinux's folder when under it.
    fn normalise(&self, file: &str) -> String {
        for f in FILES {
            if file == *f || file.strip_suffix(f).is_some_and(|rest| rest.ends_with('/')) {
                return f.to_string();
            }
        }
        file.strip_prefix(&self.root).unwrap_or(file).to_string()
    }

    /// The frames of the instruction at `addr`, innermost (inlined) first, each with
    /// the line in its function; without DWARF, the symbol alone.
    pub fn frames(&self, addr: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        if let Ok(mut it) = self.loader.find_frames(addr) {
            while let Ok(Some(f)) = it.next() {
                let function = f.function.as_ref().and_then(|n| n.raw_name().ok()).map(|n| n.into_owned());
                let (file, line) = match &f.location {
                    Some(l) => (l.file.map(|f| self.normalise(f)).unwrap_or_default(), l.line.unwrap_or(0)),
                    None => (String::new(), 0),
                };
                if function.is_none() && file.is_empty() {
                    continue;
                }
                let function = function.or_else(|| self.symbol(addr)).unwrap_or_default();
                out.push(Frame { file, function, line });
            }
        }
        if out.is_empty() {
            if let Some(function) = self.symbol(addr) {
                out.push(Frame { file: String::new(), function, line: 0 });
            }
        }
        out
    }

    fn symbol(&self, addr: u64) -> Option<String> {
        self.loader.find_symbol(addr).map(str::to_string)
    }

    /// Every line-table row of the text sections: its address and its innermost
    /// position (function from the frames, filled in by `lines_with_code`).
    pub fn rows(&self) -> Result<Vec<(u64, String, u32)>> {
        let mut out = Vec::new();
        for section in [&b".text"[..], b".init.text"] {
            let Some(range) = self.loader.get_section_range(section) else { continue };
            let it = self
                .loader
                .find_location_range(range.begin, range.end)
                .map_err(|e| anyhow::anyhow!("reading the line table: {e}"))?;
            for (addr, _len, loc) in it {
                if let (Some(file), Some(line)) = (loc.file, loc.line) {
                    if line > 0 {
                        out.push((addr, self.normalise(file), line));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The start of the function symbol `addr` is in.
    fn symbol_start(&self, addr: u64) -> Option<u64> {
        self.loader.find_symbol_info(addr).map(|s| s.address())
    }

    /// The lines of `FILES` that the instructions at `addrs` are on, with their
    /// functions: the frames in `FILES`, so a line of mm/rmap.c whose code is an inlined
    /// header function's counts too.
    fn lines_at(&self, addrs: impl Iterator<Item = u64>) -> BTreeSet<Frame> {
        addrs.flat_map(|a| self.frames(a)).filter(|f| FILES.contains(&f.file.as_str()) && f.line > 0).collect()
    }

    /// The start of every function with code in `FILES` (by `rows`).
    fn ours(&self, rows: &[(u64, String, u32)]) -> BTreeSet<u64> {
        rows.iter()
            .filter(|(_, file, _)| FILES.contains(&file.as_str()))
            .filter_map(|(a, _, _)| self.symbol_start(*a))
            .collect()
    }

    /// Every line with code in `FILES`, with its function: the lines of their line
    /// tables, and the lines in them that call inlined code from elsewhere (a header's
    /// inline function called from mm/rmap.c has rows of the header only).
    pub fn lines_with_code(&self, rows: &[(u64, String, u32)]) -> Vec<Frame> {
        let ours = self.ours(rows);
        let probe = rows.iter().filter(|(addr, file, _)| {
            FILES.contains(&file.as_str()) || self.symbol_start(*addr).is_some_and(|s| ours.contains(&s))
        });
        let addrs: BTreeSet<u64> = probe.map(|(a, _, _)| *a).collect();
        self.lines_at(addrs.into_iter()).into_iter().collect()
    }

    /// The coverable lines of `FILES`, with their functions: the lines of the KCOV
    /// call sites `sites` (`callsites`) in functions with code in `FILES`.
    pub fn coverable(&self, rows: &[(u64, String, u32)], sites: &[u64]) -> Vec<Frame> {
        let ours = self.ours(rows);
        let sites = sites.iter().copied().filter(|a| self.symbol_start(*a).is_some_and(|s| ours.contains(&s)));
        self.lines_at(sites).into_iter().collect()
    }
}

/// The lines a function of `FILES` has code on, first to last: the HTML shows them
/// all, coverable or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub file: String,
    pub function: String,
    pub first: u32,
    pub last: u32,
}

/// The spans of the functions of `lines` (`Symbolizer::lines_with_code`).
fn spans(lines: &[Frame]) -> Vec<Span> {
    let mut out: BTreeMap<(&str, &str), (u32, u32)> = BTreeMap::new();
    for f in lines {
        let span = out.entry((&f.file, &f.function)).or_insert((f.line, f.line));
        *span = (span.0.min(f.line), span.1.max(f.line));
    }
    out.into_iter()
        .map(|((file, function), (first, last))| Span { file: file.into(), function: function.into(), first, last })
        .collect()
}

/// What the report needs of one vmlinux: the coverable lines of `FILES`, the spans of
/// their functions, and the frames of every PC seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// The vmlinux has DWARF line information.
    pub has_lines: bool,
    /// The vmlinux has KCOV's callback (else no line is coverable).
    pub has_kcov: bool,
    /// The coverable lines: those with a KCOV call site.
    pub coverable: Vec<Frame>,
    pub spans: Vec<Span>,
    /// Frames by KCOV PC (already moved back to the call).
    pub pcs: BTreeMap<u64, Vec<Frame>>,
}

impl Mapping {
    /// Build a mapping from an open vmlinux.
    pub fn build(sym: &Symbolizer, pcs: &Pcs) -> Result<Mapping> {
        let rows = sym.rows()?;
        let sites = callsites::read(&sym.path)?;
        let mut m = Mapping {
            has_lines: !rows.is_empty(),
            has_kcov: sites.kcov,
            coverable: sym.coverable(&rows, &sites.addresses),
            spans: spans(&sym.lines_with_code(&rows)),
            pcs: BTreeMap::new(),
        };
        m.add(sym, pcs);
        Ok(m)
    }

    fn add(&mut self, sym: &Symbolizer, pcs: &Pcs) {
        for &pc in pcs.as_slice() {
            self.pcs.entry(pc).or_insert_with(|| sym.frames(sym.call_site(pc)));
        }
    }

    pub fn frames(&self, pc: u64) -> &[Frame] {
        self.pcs.get(&pc).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The mapping of `vmlinux` for `pcs`: from the cache, with what it lacks added
    /// (and saved).
    pub fn load(vmlinux: &Path, pcs: &Pcs) -> Result<Mapping> {
        let meta = std::fs::metadata(vmlinux).with_context(|| format!("reading {}", vmlinux.display()))?;
        let canonical = std::fs::canonicalize(vmlinux)?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let key = cache::Key::new()
            .part("path", canonical.display().to_string())
            .part("len", meta.len().to_le_bytes())
            .part("mtime", format!("{mtime:?}"))
            .part("coverable", "lines with a KCOV call site")
            .part("files", FILES.join(","))
            .short();
        let path = cache::subdir("coverage")?.join(format!("{key}.json"));
        let _lock = cache::lock(&path)?;
        let cached: Option<Mapping> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let missing = |m: &Mapping| pcs.as_slice().iter().any(|pc| !m.pcs.contains_key(pc));
        match cached {
            Some(m) if !missing(&m) => Ok(m),
            cached => {
                let sym = Symbolizer::open(vmlinux)?;
                let m = match cached {
                    Some(mut m) => {
                        m.add(&sym, pcs);
                        m
                    }
                    None => Mapping::build(&sym, pcs)?,
                };
                cache::write_atomic(&path, &serde_json::to_vec(&m)?)?;
                Ok(m)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A small program whose source is `mm/rmap.c` (so it counts as one of `FILES`),
    /// with an always-inline function from `include/linux/mm.h`, built with `cc -g`.
    /// Returns the folder and the binary.
    pub(crate) fn tiny_vmlinux() -> (tempfile::TempDir, PathBuf) {
        tiny_build("cc", &[])
    }

    /// The same program for arm64 as a KCOV kernel is built: `-fsanitize-coverage=
    /// trace-pc`, with a callback of its own (`kcov.c`, not instrumented).
    pub(crate) fn tiny_kcov_vmlinux() -> (tempfile::TempDir, PathBuf) {
        tiny_build(
            "aarch64-linux-gnu-gcc",
            &["-fsanitize-coverage=trace-pc", "-nostdlib", "-static", "-Wl,-e,main", "kcov.c"],
        )
    }

    fn tiny_build(cc: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("mm")).unwrap();
        std::fs::create_dir_all(dir.path().join("include/linux")).unwrap();
        std::fs::write(
            dir.path().join("include/linux/mm.h"),
            "static inline __attribute__((always_inline)) int folio_ref(int x)\n{\n\treturn x * 3;\n}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("mm/rmap.c"), RMAP_C).unwrap();
        std::fs::write(
            dir.path().join("kcov.c"),
            "void __attribute__((no_sanitize_coverage)) __sanitizer_cov_trace_pc(void)\n{\n}\n",
        )
        .unwrap();
        let out = std::process::Command::new(cc)
            .current_dir(dir.path())
            .args(["-g", "-O0", "-Iinclude", "-o", "vmlinux", "mm/rmap.c"])
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("{cc}: {e}"));
        assert!(out.status.success(), "{cc}: {}", String::from_utf8_lossy(&out.stderr));
        let bin = dir.path().join("vmlinux");
        (dir, bin)
    }

    pub(crate) const RMAP_C: &str = "#include <linux/mm.h>\n\
int rmap_walk(int n)\n\
{\n\
\tint s = 0;\n\
\tfor (int i = 0; i < n; i++)\n\
\t\ts += folio_ref(i);\n\
\treturn s;\n\
}\n\
\n\
int try_to_unmap(int n)\n\
{\n\
\tif (n > 100)\n\
\t\treturn -1;\n\
\treturn n + 1;\n\
}\n\
\n\
int main(int argc, char **argv)\n\
{\n\
\treturn rmap_walk(argc) + try_to_unmap(argc);\n\
}\n";

    /// The first address of `line` of `file`.
    pub(crate) fn address_of(sym: &Symbolizer, file: &str, line: u32) -> u64 {
        let rows = sym.rows().unwrap();
        rows.iter()
            .filter(|(_, f, l)| f == file && *l == line)
            .map(|(a, _, _)| *a)
            .min()
            .unwrap_or_else(|| panic!("no code for {file}:{line} in {rows:?}"))
    }

    #[test]
    fn pcs_map_to_file_function_and_line_with_inlined_callers() {
        let (_dir, bin) = tiny_vmlinux();
        let sym = Symbolizer::open(&bin).unwrap();
        // The loop body (line 6) calls the inline folio_ref (mm.h line 3).
        let inline = address_of(&sym, "include/linux/mm.h", 3);
        let frames = sym.frames(inline);
        let f = |file: &str, function: &str, line: u32| Frame { file: file.into(), function: function.into(), line };
        assert_eq!(frames, [f("include/linux/mm.h", "folio_ref", 3), f("mm/rmap.c", "rmap_walk", 6)]);
        // A KCOV PC is a return address: the mapping looks one call back.
        let early = address_of(&sym, "mm/rmap.c", 13);
        let pcs = Pcs::new(vec![early + 1, inline + 1]);
        let m = Mapping::build(&sym, &pcs).unwrap();
        assert!(m.has_lines);
        assert_eq!(m.frames(early + 1), [f("mm/rmap.c", "try_to_unmap", 13)]);
        // Every line with code in mm/rmap.c is in a function's span, the inline call's
        // line too, and nothing of the header; without KCOV no line is coverable.
        let span = |name: &str| m.spans.iter().find(|s| s.function == name).map(|s| (s.file.as_str(), s.first, s.last));
        assert_eq!(span("rmap_walk"), Some(("mm/rmap.c", 3, 8)));
        assert_eq!(span("main"), Some(("mm/rmap.c", 18, 20)));
        assert!(m.spans.iter().all(|s| s.file == "mm/rmap.c"), "{:?}", m.spans);
        assert!(!m.has_kcov && m.coverable.is_empty());
    }

    /// The call sites `aarch64-linux-gnu-objdump -d` lists in `bin`.
    fn objdump_call_sites(bin: &Path) -> Vec<u64> {
        let out = std::process::Command::new("aarch64-linux-gnu-objdump").arg("-d").arg(bin).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter(|l| l.contains("\tbl\t") && l.ends_with("<__sanitizer_cov_trace_pc>"))
            .map(|l| u64::from_str_radix(l.trim().split(':').next().unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn coverable_lines_are_those_with_a_kcov_call_site() {
        let (_dir, bin) = tiny_kcov_vmlinux();
        let sites = callsites::read(&bin).unwrap();
        assert!(sites.kcov);
        assert_eq!(sites.addresses, objdump_call_sites(&bin), "the decoder and objdump disagree");
        let sym = Symbolizer::open(&bin).unwrap();
        let m = Mapping::build(&sym, &Pcs::default()).unwrap();
        assert!(m.has_lines && m.has_kcov);
        let lines = |name: &str| m.coverable.iter().filter(|f| f.function == name).map(|f| f.line).collect::<Vec<_>>();
        // Basic blocks start on these lines; the braces and the signature have code
        // (prologue, epilogue) but no call site.
        assert_eq!(lines("rmap_walk"), [4, 5, 6, 7]);
        assert_eq!(lines("try_to_unmap"), [12, 13, 14]);
        assert!(m.coverable.iter().all(|f| f.file == "mm/rmap.c"), "{:?}", m.coverable);
        // Every call site's return address (a KCOV PC) lands on a coverable line.
        let pcs = Pcs::new(sites.addresses.iter().map(|a| a + 4).collect());
        let m = Mapping::build(&sym, &pcs).unwrap();
        for pc in pcs.as_slice() {
            let line = m.frames(*pc).iter().find(|f| f.file == "mm/rmap.c").unwrap();
            assert!(m.coverable.contains(line), "{pc:#x}: {line:?}");
        }
    }

    #[test]
    fn without_dwarf_a_pc_maps_to_its_symbol() {
        let (dir, bin) = tiny_vmlinux();
        let stripped = dir.path().join("stripped");
        // binutils, which cc above linked with, has objcopy: no reason to skip.
        let ok = std::process::Command::new("objcopy")
            .args(["--strip-debug", &bin.display().to_string(), &stripped.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "objcopy --strip-debug failed");
        let with = Symbolizer::open(&bin).unwrap();
        let addr = address_of(&with, "mm/rmap.c", 13);
        let sym = Symbolizer::open(&stripped).unwrap();
        let m = Mapping::build(&sym, &Pcs::new(vec![addr + 1])).unwrap();
        assert!(!m.has_lines && m.coverable.is_empty() && m.spans.is_empty());
        assert_eq!(m.frames(addr + 1), [Frame { file: String::new(), function: "try_to_unmap".into(), line: 0 }]);
    }
}
