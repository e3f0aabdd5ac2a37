//! Sets of kernel PCs, and the `.cov` file that keeps one beside each corpus entry.
//!
//! A `.cov` file is one text line, `rmapcheck-cov 1 <release>`, then the sorted PCs as
//! LEB128 varints: the first PC, then each difference to the one before. Kernel PCs of
//! one run lie close together, so most take two or three bytes.

use anyhow::{bail, Context, Result};
use std::path::Path;

const MAGIC: &str = "rmapcheck-cov 1";

/// A sorted set of PCs without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pcs(Vec<u64>);

impl Pcs {
    /// From any PCs (sorted and deduplicated here).
    pub fn new(mut pcs: Vec<u64>) -> Pcs {
        pcs.sort_unstable();
        pcs.dedup();
        Pcs(pcs)
    }

    pub fn as_slice(&self) -> &[u64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The PCs of `self` that `other` lacks.
    pub fn minus(&self, other: &Pcs) -> Pcs {
        let (mut i, mut out) = (0, Vec::new());
        for &pc in &self.0 {
            while i < other.0.len() && other.0[i] < pc {
                i += 1;
            }
            if other.0.get(i) != Some(&pc) {
                out.push(pc);
            }
        }
        Pcs(out)
    }

    pub fn union(&self, other: &Pcs) -> Pcs {
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(&&x), Some(&&y)) if x > y => b.next(),
                (Some(_), Some(_)) => {
                    b.next();
                    a.next()
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            out.extend(next);
        }
        Pcs(out)
    }
}

/// A `.cov` file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovFile {
    /// The release of the kernel whose PCs these are (a PC means nothing on another).
    pub release: String,
    pub pcs: Pcs,
}

pub fn encode(release: &str, pcs: &Pcs) -> Vec<u8> {
    let mut out = format!("{MAGIC} {}\n", release.trim()).into_bytes();
    let mut prev = 0u64;
    for &pc in pcs.as_slice() {
        let mut d = pc - prev;
        prev = pc;
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<CovFile> {
    let nl = bytes.iter().position(|b| *b == b'\n').context("no header line")?;
    let head = std::str::from_utf8(&bytes[..nl]).context("header is not text")?;
    let Some(release) = head.strip_prefix(MAGIC) else { bail!("not a coverage file (no '{MAGIC}' header)") };
    let (mut pcs, mut prev, mut cur, mut shift) = (Vec::new(), 0u64, 0u64, 0u32);
    for &b in &bytes[nl + 1..] {
        if shift >= 64 {
            bail!("a PC longer than 64 bits");
        }
        cur |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            prev = prev.checked_add(cur).context("PC overflow")?;
            pcs.push(prev);
            (cur, shift) = (0, 0);
        }
    }
    if shift != 0 {
        bail!("truncated");
    }
    Ok(CovFile { release: release.trim().to_string(), pcs: Pcs::new(pcs) })
}

pub fn read(path: &Path) -> Result<CovFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode(&bytes).with_context(|| format!("{}: not a coverage file", path.display()))
}

pub fn write(path: &Path, release: &str, pcs: &Pcs) -> Result<()> {
    crate::cache::write_atomic(path, &encode(release, pcs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_union_and_difference() {
        let a = Pcs::new(vec![5, 1, 3, 3, 9]);
        let b = Pcs::new(vec![3, 4, 9, 10]);
        assert_eq!(a.as_slice(), [1, 3, 5, 9]);
        assert_eq!(a.minus(&b).as_slice(), [1, 5]);
        assert_eq!(b.minus(&a).as_slice(), [4, 10]);
        assert_eq!(a.union(&b).as_slice(), [1, 3, 4, 5, 9, 10]);
        assert!(Pcs::default().minus(&a).is_empty());
    }

    #[test]
    fn cov_files_round_trip_compactly_and_refuse_garbage() {
        let base = 0xffff_8000_8010_0000u64;
        let pcs = Pcs::new((0..1000).map(|i| base + i * 12).collect());
        let bytes = encode("6.12.9-rmapcheck", &pcs);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, CovFile { release: "6.12.9-rmapcheck".into(), pcs: pcs.clone() });
        // One kernel PC (9 bytes) and then one byte per neighbour.
        let header = "rmapcheck-cov 1 6.12.9-rmapcheck\n".len();
        assert_eq!(bytes.len(), header + 10 + 999, "{}", bytes.len());
        assert_eq!(decode(&encode("r", &Pcs::default())).unwrap().pcs, Pcs::default());
        assert!(decode(b"hello\n\x01").is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_ok(), "a whole varint less is still a file");
        let mut cut = encode("r", &Pcs::new(vec![base]));
        cut.pop();
        assert!(decode(&cut).is_err(), "a cut varint is refused");
    }
}
