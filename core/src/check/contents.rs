//! O5, page contents: what the agent read from every present page against what the
//! model predicts it holds.
//!
//! Architecture invariant: pure, like the oracle; the runner hands it what the guest read.

use crate::check::model::{slot_text, Bytes, Model, Slot};
use crate::wire::Fields;
use std::collections::BTreeMap;
use std::fmt;

/// What the agent read from one present page (docs/PROTOCOL.md, `data=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    /// Every byte is this one.
    Uniform(u8),
    /// The first 8 bytes (big-endian) and an FNV-1a 64 digest of the page's 64-bit
    /// little-endian words.
    Mixed { first: u64, digest: u64 },
    /// The agent could not read it.
    Unreadable,
}

impl Contents {
    /// One token; `None` for `-` (not present) and for what does not parse.
    pub fn parse(token: &str) -> Option<Option<Contents>> {
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        Some(match token {
            "-" => None,
            "?" => Some(Contents::Unreadable),
            t if t.starts_with('=') => Some(Contents::Uniform(u8::from_str_radix(&t[1..], 16).ok()?)),
            t => {
                let (first, digest) = t.split_once(':')?;
                Some(Contents::Mixed { first: hex(first)?, digest: hex(digest)? })
            }
        })
    }

    /// A comma-separated `data=` list: one entry per page.
    pub fn parse_list(list: &str) -> Result<Vec<Option<Contents>>, String> {
        list.split(',').map(|t| Contents::parse(t).ok_or_else(|| format!("bad contents token '{t}'"))).collect()
    }
}

impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contents::Uniform(b) => write!(f, "0x{b:02x} in every byte"),
            Contents::Mixed { first, digest } => write!(f, "mixed bytes (first 0x{first:016x}, digest {digest:016x})"),
            Contents::Unreadable => write!(f, "unreadable"),
        }
    }
}

/// What a page of `page_size` bytes holding `b` reads as.
pub fn expected(b: &Bytes, page_size: u64) -> Contents {
    let Some(tag) = b.tag else { return Contents::Uniform(b.value) };
    let head = tag.to_le_bytes();
    if head.iter().all(|x| *x == b.value) {
        return Contents::Uniform(b.value);
    }
    // FNV-1a 64 over words, as the agent computes it: the tag, then the value's.
    let rest = u64::from_ne_bytes([b.value; 8]);
    let words = std::iter::once(tag).chain(std::iter::repeat_n(rest, (page_size / 8).saturating_sub(1) as usize));
    let h = words.fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ w).wrapping_mul(0x0100_0000_01b3));
    Contents::Mixed { first: u64::from_be_bytes(head), digest: h }
}

/// What a `pagemap data=1` read saw: the contents of every present slot.
pub type Seen = BTreeMap<Slot, Contents>;

/// The contents in the `D` lines of a `pagemap data=1` reply.
pub fn from_data(data: &[Fields]) -> Result<Seen, String> {
    let mut seen = Seen::new();
    for d in data {
        let (Some(proc), Some(name), Some(list)) = (d.get("proc"), d.get("name"), d.get("data")) else { continue };
        for (i, c) in Contents::parse_list(list)?.into_iter().enumerate() {
            if let Some(c) = c {
                seen.insert((proc.clone(), name.clone(), i as u64), c);
            }
        }
    }
    Ok(seen)
}

/// An O5 problem: a page holds other bytes than the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub slot: Slot,
    pub seen: Contents,
    pub want: Bytes,
}

impl Mismatch {
    /// What identifies it: the shapes of what was read and what was expected, not
    /// the values, the slot or the step.
    pub fn title(&self) -> String {
        let seen = match self.seen {
            Contents::Uniform(_) => "one byte value",
            Contents::Mixed { .. } => "mixed bytes",
            Contents::Unreadable => "unreadable",
        };
        let want = &self.want;
        let tag = if want.tag.is_some() { " after its page index" } else { "" };
        let or_zero = if want.may_be_zero { " or zeros (MADV_FREE)" } else { "" };
        let why = match &want.by {
            Some(_) => "written by a step",
            None if want.value == 0 => "never written",
            None => "the model's page",
        };
        format!("the page holds {seen} but the model expects one byte value{tag}{or_zero} ({why})")
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = &self.want;
        let why = match &want.by {
            Some((proc, step)) => format!("written by {proc} at step {step}"),
            None if want.value == 0 => "never written".to_string(),
            None => "the model's page".to_string(),
        };
        let or_zero = if want.may_be_zero { " or zeros (MADV_FREE)" } else { "" };
        let tag = want.tag.map(|t| format!(" after its page index {t}")).unwrap_or_default();
        write!(
            f,
            "{}: the page holds {} but the model expects 0x{:02x} in every byte{tag}{or_zero} ({why})",
            slot_text(&self.slot),
            self.seen,
            want.value
        )
    }
}

/// O5 for one slot: a mismatch when what was read is not what the model predicts. A
/// page the agent could not read says nothing (7.x refuses /proc/PID/mem reads of
/// PROT_NONE pages).
pub fn check(model: &Model, slot: &Slot, seen: Contents, page_size: u64) -> Option<Mismatch> {
    let want = model.contents(&slot.0, &slot.1, slot.2)?;
    if seen == Contents::Unreadable || seen == expected(want, page_size) {
        return None;
    }
    if want.may_be_zero && seen == Contents::Uniform(0) {
        return None;
    }
    if want.rest_may_be_zero && seen == expected(&Bytes { value: 0, ..want.clone() }, page_size) {
        return None;
    }
    Some(Mismatch { slot: slot.clone(), seen, want: want.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    fn model(yaml: &str) -> Model {
        let s = parse(Path::new("t.yaml"), &format!("name: t\nabout: t\nsteps:\n{yaml}")).unwrap();
        let mut m = Model::new();
        for step in &s.steps {
            m.apply(step);
        }
        m
    }

    fn slot(p: &str, m: &str, i: u64) -> Slot {
        (p.into(), m.into(), i)
    }

    const PS: u64 = 4096;

    /// A lazy-free page the kernel dropped, then poked by ptrace: the poke faulted in a
    /// fresh zero page, so the word and then zeros; the old bytes after the word too.
    #[test]
    fn a_poke_of_a_lazy_free_page_may_land_on_zeros() {
        let m = model(
            " - mmap: {name: a, pages: 1, backing: anon, share: private}\n - write: {map: a, page: 0, value: 7}\n \
             - madvise: {map: a, advice: free}\n - remote: {map: a, page: 0, kind: ptrace}\n",
        );
        let want = m.contents("p0", "a", 0).unwrap().clone();
        assert!(want.rest_may_be_zero && !want.may_be_zero);
        let s = slot("p0", "a", 0);
        assert!(check(&m, &s, expected(&want, PS), PS).is_none(), "the word over the old bytes");
        assert!(check(&m, &s, expected(&Bytes { value: 0, ..want.clone() }, PS), PS).is_none(), "the word over zeros");
        assert!(check(&m, &s, Contents::Uniform(0), PS).is_some(), "the poke cannot be lost");
    }

    #[test]
    fn a_default_write_tags_each_page_with_its_index() {
        let m = model(
            " - mmap: {name: a, pages: 3, backing: anon, share: private}\n - write: {map: a, page: 0, pages: 3}\n",
        );
        let b = m.contents("p0", "a", 2).unwrap();
        assert_eq!(b.tag, Some(2));
        // 2 in little-endian, then step 2's byte (3) for the rest of the page.
        let Contents::Mixed { first, digest } = expected(b, PS) else { panic!("a tagged page is mixed") };
        assert_eq!(first, 0x0200_0000_0000_0000);
        let mut page = vec![3u8; PS as usize];
        page[..8].copy_from_slice(&2u64.to_le_bytes());
        let words = page.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap()));
        let fnv = words.fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ w).wrapping_mul(0x0100_0000_01b3));
        assert_eq!(digest, fnv);
        // Page 1's bytes at index 2: a page that moved.
        let moved = expected(m.contents("p0", "a", 1).unwrap(), PS);
        let p = check(&m, &slot("p0", "a", 2), moved, PS).unwrap();
        assert!(p.to_string().contains("after its page index 2"), "{p}");
    }

    #[test]
    fn tokens_parse() {
        assert_eq!(Contents::parse("=05"), Some(Some(Contents::Uniform(5))));
        assert_eq!(Contents::parse("-"), Some(None));
        assert_eq!(Contents::parse("?"), Some(Some(Contents::Unreadable)));
        assert_eq!(
            Contents::parse("0102030405060708:00000000000000ff"),
            Some(Some(Contents::Mixed { first: 0x0102030405060708, digest: 0xff }))
        );
        assert!(Contents::parse("=zz").is_none());
        assert!(Contents::parse_list("=01,-,x").is_err());
    }

    #[test]
    fn a_childs_write_does_not_show_in_the_parent() {
        let m = model(" - mmap: {name: a, pages: 2, backing: anon, share: private}\n - write: {map: a, page: 0, value: 7}\n - fork: {child: c1}\n - write: {proc: c1, map: a, page: 0, value: 9}\n");
        assert!(check(&m, &slot("p0", "a", 0), Contents::Uniform(7), PS).is_none());
        assert!(check(&m, &slot("c1", "a", 0), Contents::Uniform(9), PS).is_none());
        let p = check(&m, &slot("p0", "a", 0), Contents::Uniform(9), PS).unwrap();
        assert_eq!(
            p.to_string(),
            "p0 a[0]: the page holds 0x09 in every byte but the model expects 0x07 in every byte (written by p0 at step 2)"
        );
        assert!(check(&m, &slot("p0", "a", 1), Contents::Uniform(0), PS).is_none(), "untouched anon reads zeros");
        assert!(check(&m, &slot("p0", "a", 0), Contents::Unreadable, PS).is_none());
    }

    #[test]
    fn shared_file_wipeonfork_dontneed_and_mremap() {
        let m = model(" - mmap: {name: s, pages: 2, backing: memfd, share: shared}\n - mmap: {name: w, pages: 1, backing: anon, share: private}\n - mmap: {name: z, pages: 1, backing: dev-zero, share: private}\n - write: {map: s, page: 1, value: 3}\n - write: {map: w, page: 0, value: 4}\n - write: {map: z, page: 0, value: 5}\n - madvise: {map: w, advice: wipeonfork}\n - madvise: {map: z, advice: wipeonfork}\n - fork: {child: c1}\n - mremap: {proc: c1, map: z, pages: 3, move: true}\n - write: {proc: c1, map: s, page: 0, value: 6}\n - madvise: {map: w, advice: dontneed}\n");
        // Shared: the child's write shows in the parent, even where it never touched.
        assert_eq!(m.contents("p0", "s", 0).unwrap().value, 6);
        assert_eq!(m.contents("c1", "s", 1).unwrap().value, 3);
        // WIPEONFORK: the child reads zeros; private /dev/zero refuses it.
        assert_eq!(m.contents("c1", "w", 0).unwrap().value, 0);
        assert_eq!(m.contents("c1", "z", 0).unwrap().value, 5, "mremap keeps the data");
        assert_eq!(m.contents("c1", "z", 2).unwrap().value, 0);
        // DONTNEED drops a private anon page: zeros again.
        assert_eq!(m.contents("p0", "w", 0).unwrap().value, 0);
    }

    #[test]
    fn dontneed_on_a_private_file_mapping_rereads_the_file() {
        let m = model(" - mmap: {name: f, pages: 1, backing: file, share: shared}\n - write: {map: f, page: 0, value: 2}\n - fork: {child: c1}\n - mmap: {proc: c1, name: g, pages: 1, backing: file, share: private}\n - write: {proc: c1, map: g, page: 0, value: 8}\n - madvise: {proc: c1, map: g, advice: dontneed}\n");
        assert_eq!(m.contents("c1", "f", 0).unwrap().value, 2);
        assert_eq!(m.contents("c1", "g", 0).unwrap().value, 0, "a fresh file reads zeros");
    }

    #[test]
    fn madv_free_allows_old_or_zero() {
        let m = model(" - mmap: {name: a, pages: 1, backing: anon, share: private}\n - write: {map: a, page: 0, value: 7}\n - madvise: {map: a, advice: free}\n");
        assert!(check(&m, &slot("p0", "a", 0), Contents::Uniform(7), PS).is_none());
        assert!(check(&m, &slot("p0", "a", 0), Contents::Uniform(0), PS).is_none());
        assert!(check(&m, &slot("p0", "a", 0), Contents::Uniform(1), PS).is_some());
    }
}
