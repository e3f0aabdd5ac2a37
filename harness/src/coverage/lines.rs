//! Kernel PCs to source: (file, function, line) through the vmlinux's DWARF with the
//! `addr2line` crate, and every line with code in the files the report covers. The
//! result is cached per vmlinux (path, size, mtime) under the cache's `coverage/`, and
//! extended when new PCs come; a vmlinux is only opened when something is missing.
//!
//! Without DWARF (a kernel built without CONFIG_DEBUG_INFO) a PC maps to its symbol
//! alone: functions, no files or lines.

use super::pcs::Pcs;
use crate::cache;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The files the coverage report shows line by line.
pub const FILES: &[&str] = &[
    "mm/rmap.c",
    "mm/memory.c",
    "mm/huge_memory.c",
    "mm/mremap.c",
    "mm/ksm.c",
    "mm/migrate.c",
    "mm/page_vma_mapped.c",
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
        Ok(Symbolizer { loader, machine, root: format!("{dir}/") })
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
    /// position (function from the frames, filled in by `table`).
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

    /// Every line with code in `FILES`, with its function: the lines of their line
    /// tables, and the lines in them that call inlined code from elsewhere (a header's
    /// inline function called from mm/rmap.c has rows of the header only).
    pub fn table(&self) -> Result<Vec<Frame>> {
        let rows = self.rows()?;
        let symbol = |addr: u64| self.loader.find_symbol_info(addr).map(|s| s.address());
        let mut probe: BTreeSet<u64> = BTreeSet::new();
        let mut ours: BTreeSet<u64> = BTreeSet::new();
        for (addr, file, _) in &rows {
            if FILES.contains(&file.as_str()) {
                probe.insert(*addr);
                ours.extend(symbol(*addr));
            }
        }
        for (addr, file, _) in &rows {
            if !FILES.contains(&file.as_str()) && symbol(*addr).is_some_and(|s| ours.contains(&s)) {
                probe.insert(*addr);
            }
        }
        let mut out: BTreeSet<Frame> = BTreeSet::new();
        for addr in probe {
            out.extend(self.frames(addr).into_iter().filter(|f| FILES.contains(&f.file.as_str()) && f.line > 0));
        }
        Ok(out.into_iter().collect())
    }
}

/// What the report needs of one vmlinux: the lines with code in `FILES`, and the
/// frames of every PC seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// The vmlinux has DWARF line information.
    pub has_lines: bool,
    pub table: Vec<Frame>,
    /// Frames by KCOV PC (already moved back to the call).
    pub pcs: BTreeMap<u64, Vec<Frame>>,
}

impl Mapping {
    /// Build a mapping from an open vmlinux.
    pub fn build(sym: &Symbolizer, pcs: &Pcs) -> Result<Mapping> {
        let table = sym.table()?;
        let mut m = Mapping { has_lines: !sym.rows()?.is_empty(), table, pcs: BTreeMap::new() };
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
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("mm")).unwrap();
        std::fs::create_dir_all(dir.path().join("include/linux")).unwrap();
        std::fs::write(
            dir.path().join("include/linux/mm.h"),
            "static inline __attribute__((always_inline)) int folio_ref(int x)\n{\n\treturn x * 3;\n}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("mm/rmap.c"), RMAP_C).unwrap();
        let out = std::process::Command::new("cc")
            .current_dir(dir.path())
            .args(["-g", "-O0", "-Iinclude", "-o", "vmlinux", "mm/rmap.c"])
            .output()
            .expect("cc runs");
        assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
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
        // The table has every line with code in mm/rmap.c, the inline call's line too,
        // and nothing of the header.
        let lines: Vec<(String, u32)> =
            m.table.iter().filter(|fr| fr.function == "rmap_walk").map(|fr| (fr.file.clone(), fr.line)).collect();
        for l in [3, 4, 5, 6, 7, 8] {
            assert!(lines.contains(&("mm/rmap.c".into(), l)), "line {l} missing from {lines:?}");
        }
        assert!(m.table.iter().all(|fr| fr.file == "mm/rmap.c"), "{:?}", m.table);
        assert!(m.table.iter().any(|fr| fr.function == "main" && fr.line == 19));
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
        assert!(!m.has_lines && m.table.is_empty());
        assert_eq!(m.frames(addr + 1), [Frame { file: String::new(), function: "try_to_unmap".into(), line: 0 }]);
    }
}
