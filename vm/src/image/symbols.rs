//! Kernel symbols for `--gdb`: the vmlinux of a kernel built from source, or what to do
//! where there is none.

use crate::image::apt::Apt;
use crate::image::kernel::Kernel;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where gdb gets symbols for a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbols {
    Vmlinux(PathBuf),
    /// None here; the note says why and where they are.
    Missing(String),
}

/// Whether the ELF file at `path` has a `.text` section: a real vmlinux, not the
/// BTF-only one Debian's headers ship for building modules.
pub fn has_text(path: &Path) -> bool {
    section_names(path).is_some_and(|names| names.iter().any(|n| n == b".text"))
}

/// The section names of a little-endian ELF64 file. Each is read at its header's
/// offset into the name table: linkers share suffixes there, so `.text` may exist only
/// as the tail of `.head.text`.
fn section_names(path: &Path) -> Option<Vec<Vec<u8>>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).ok()?;
    if &head[..6] != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default()) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(&head, 0x28), u16_at(&head, 0x3a), u16_at(&head, 0x3c), u16_at(&head, 0x3e));
    if shentsize < 64 || shnum > 4096 {
        return None;
    }
    let mut headers = vec![0u8; (shnum * shentsize) as usize];
    f.seek(SeekFrom::Start(shoff)).ok()?;
    f.read_exact(&mut headers).ok()?;
    let sh = |i: u64| headers.get((i * shentsize) as usize..(i * shentsize + 64) as usize);
    let strtab = sh(shstrndx)?;
    let (offset, size) = (u64_at(strtab, 0x18), u64_at(strtab, 0x20));
    let mut names = vec![0u8; size.min(1 << 20) as usize];
    f.seek(SeekFrom::Start(offset)).ok()?;
    f.read_exact(&mut names).ok()?;
    let name = |at: usize| {
        let tail = names.get(at..).unwrap_or_default();
        tail[..tail.iter().position(|b| *b == 0).unwrap_or(tail.len())].to_vec()
    };
    (0..shnum).map(|i| sh(i).map(|h| name(u32_at(h, 0)))).collect()
}

/// The debug package Debian builds for a kernel release.
pub fn dbg_package(release: &str) -> String {
    format!("linux-image-{release}-dbg")
}

/// The symbols of `kernel`: the vmlinux next to its build tree (source kernels and a
/// developer's own build). Else, with `apt` (the kernel's private apt root), a note
/// that names Debian's debug package if the archive has one.
pub fn find(kernel: &Kernel, apt: Option<&Apt>) -> Symbols {
    let vmlinux = kernel.build_dir.join("vmlinux");
    if has_text(&vmlinux) {
        return Symbols::Vmlinux(vmlinux);
    }
    let package = dbg_package(&kernel.release);
    let has = apt.is_some_and(|a| a.candidate(&package).is_ok());
    Symbols::Missing(if has {
        format!(
            "symbols are missing: {} has no vmlinux; Debian's {package} holds it (its \
             usr/lib/debug/boot/vmlinux-{}); gdb reads registers and memory without it",
            kernel.key, kernel.release
        )
    } else {
        format!(
            "symbols are missing: {} has no vmlinux and the archive has no {package}; gdb reads \
             registers and memory without it",
            kernel.key
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_elf_with_text_counts_as_vmlinux() {
        // The test binary itself is an ELF64 with .text (the host is little-endian x86-64
        // or arm64); a text file and a missing file are not.
        let me = std::env::current_exe().unwrap();
        assert!(has_text(&me));
        assert!(!has_text(Path::new(file!())));
        assert!(!has_text(Path::new("/nonexistent/vmlinux")));
    }

    /// An ELF64 header and three section headers: null, one named at `text_name` in the
    /// name table, and the name table itself.
    fn elf(names: &[u8], text_name: u32) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let strtab_at = 64u64;
        let shoff = 64 + names.len() as u64;
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(names);
        let mut sh = |name: u32, offset: u64, size: u64| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(text_name, 0, 0);
        sh(12, strtab_at, names.len() as u64);
        f
    }

    #[test]
    fn text_found_as_the_tail_of_a_longer_name() {
        // ld merges `.text` into `.head.text`'s tail (vmlinux with DWARF does this).
        let names = b"\0.head.text\0.shstrtab\0";
        let dir = tempfile::tempdir().unwrap();
        let (shared, other) = (dir.path().join("shared"), dir.path().join("other"));
        std::fs::write(&shared, elf(names, 6)).unwrap();
        std::fs::write(&other, elf(names, 1)).unwrap();
        assert!(has_text(&shared));
        assert!(!has_text(&other), "only .head.text");
    }
}
