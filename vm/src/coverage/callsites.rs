//! KCOV call sites: the instructions of a vmlinux's `.text` that call
//! `__sanitizer_cov_trace_pc`. gcc's `-fsanitize-coverage=trace-pc` puts one such call
//! at the start of every basic block, and KCOV records its return address, so these are
//! the only places a KCOV PC can come from: a line is coverable if and only if one is on
//! it (syzkaller's cover report counts lines the same way).
//!
//! Found by decoding arm64 `BL` instructions (the kernels rmapcheck builds are arm64);
//! calls through the linker's veneer for a far callee count too. Calls to the
//! comparison callbacks (`__sanitizer_cov_trace_cmp*`) are not sites: KCOV reports
//! them in its comparison mode, which the agent never enables.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::BTreeSet;
use std::path::Path;

/// The callback's name, and the veneer the arm64 linker names after it when a caller
/// is more than 128 MiB away.
const TRACE_PC: &[&str] = &["__sanitizer_cov_trace_pc", "____sanitizer_cov_trace_pc_veneer"];

/// The target of the instruction `insn` at `pc` if it is an arm64 `BL` (opcode
/// 0b100101 in bits 31..26, a signed 26-bit word offset below).
pub fn bl_target(insn: u32, pc: u64) -> Option<u64> {
    if insn >> 26 != 0b100101 {
        return None;
    }
    // Move imm26 to the top, then shift back arithmetically: sign-extended, times 4.
    let offset = (i64::from(insn & 0x03ff_ffff) << 38) >> 36;
    Some(pc.wrapping_add_signed(offset))
}

/// The addresses of the `BL`s in `code` (little-endian arm64, loaded at `base`) whose
/// target is one of `targets`.
pub fn calls_to(code: &[u8], base: u64, targets: &BTreeSet<u64>) -> Vec<u64> {
    code.chunks_exact(4)
        .enumerate()
        .filter_map(|(i, word)| {
            let pc = base + 4 * i as u64;
            let insn = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            bl_target(insn, pc).filter(|t| targets.contains(t)).map(|_| pc)
        })
        .collect()
}

/// What a vmlinux says about its KCOV call sites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSites {
    /// It has `__sanitizer_cov_trace_pc` (a kernel built with CONFIG_KCOV).
    pub kcov: bool,
    /// The call instructions' addresses, ascending.
    pub addresses: Vec<u64>,
}

/// The KCOV call sites in `vmlinux`'s `.text`. A vmlinux without the callback has none
/// (`kcov` false); one with it on another architecture than arm64 is an error.
pub fn read(vmlinux: &Path) -> Result<CallSites> {
    let data = std::fs::read(vmlinux).with_context(|| format!("reading {}", vmlinux.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an object file", vmlinux.display()))?;
    let targets: BTreeSet<u64> =
        file.symbols().filter(|s| s.name().is_ok_and(|n| TRACE_PC.contains(&n))).map(|s| s.address()).collect();
    if targets.is_empty() {
        return Ok(CallSites::default());
    }
    if file.architecture() != object::Architecture::Aarch64 {
        bail!("{}: finding KCOV call sites is only done for arm64", vmlinux.display());
    }
    let Some(text) = file.section_by_name(".text") else { return Ok(CallSites { kcov: true, addresses: vec![] }) };
    let code = text.data().with_context(|| format!("{}: reading .text", vmlinux.display()))?;
    Ok(CallSites { kcov: true, addresses: calls_to(code, text.address(), &targets) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BL` from `pc` to `target`, encoded.
    fn bl(pc: u64, target: u64) -> u32 {
        let words = (target.wrapping_sub(pc) as i64) >> 2;
        0x9400_0000 | (words as u32 & 0x03ff_ffff)
    }

    #[test]
    fn bl_decodes_forward_and_backward_and_nothing_else() {
        let pc = 0xffff_8000_8010_0000;
        // Hand-assembled: `bl .+8` is 0x94000002, `bl .-4` 0x97ffffff.
        assert_eq!(bl_target(0x9400_0002, pc), Some(pc + 8));
        assert_eq!(bl_target(0x97ff_ffff, pc), Some(pc - 4));
        // The ends of the range: ±128 MiB.
        assert_eq!(bl_target(0x9600_0000, pc), Some(pc - (128 << 20)));
        assert_eq!(bl_target(0x95ff_ffff, pc), Some(pc + (128 << 20) - 4));
        // `b .+8` (no link), `nop`, `ret` and `blr x1` are no calls to decode.
        for insn in [0x1400_0002, 0xd503_201f, 0xd65f_03c0, 0xd63f_0020] {
            assert_eq!(bl_target(insn, pc), None, "{insn:#x}");
        }
        assert_eq!(bl_target(bl(pc, pc - 0x7_0000), pc), Some(pc - 0x7_0000));
    }

    #[test]
    fn only_calls_to_the_callback_are_sites() {
        let (base, cb, other) = (0x1000u64, 0x800u64, 0x2000u64);
        let insns = [0xd503_201f, bl(0x1004, cb), bl(0x1008, other), 0x1400_0002, bl(0x1010, cb), 0xd65f_03c0];
        let code: Vec<u8> = insns.iter().flat_map(|i: &u32| i.to_le_bytes()).collect();
        assert_eq!(calls_to(&code, base, &BTreeSet::from([cb])), [0x1004, 0x1010]);
        assert_eq!(calls_to(&code, base, &BTreeSet::from([cb, other])), [0x1004, 0x1008, 0x1010]);
        assert!(calls_to(&code[..3], base, &BTreeSet::from([cb])).is_empty(), "a torn word is no instruction");
    }
}
