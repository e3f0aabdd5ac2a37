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
    section_names(path).is_some_and(|names| names.split(|b| *b == 0).any(|n| n == b".text"))
}

/// The section name table of a little-endian ELF64 file.
fn section_names(path: &Path) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).ok()?;
    if &head[..6] != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let (shoff, shentsize, shstrndx) = (u64_at(&head, 0x28), u16_at(&head, 0x3a), u16_at(&head, 0x3e));
    let mut sh = [0u8; 64];
    f.seek(SeekFrom::Start(shoff + shstrndx * shentsize)).ok()?;
    f.read_exact(&mut sh).ok()?;
    let (offset, size) = (u64_at(&sh, 0x18), u64_at(&sh, 0x20));
    let mut names = vec![0u8; size.min(1 << 20) as usize];
    f.seek(SeekFrom::Start(offset)).ok()?;
    f.read_exact(&mut names).ok()?;
    Some(names)
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
}
