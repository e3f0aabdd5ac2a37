//! Splat stack traces to source, as the kernel's scripts/decode_stacktrace.sh prints
//! them: a frame `func+0x1c/0x40` is System.map's address of `func` plus the offset,
//! and the vmlinux's DWARF names its file and line, and the functions inlined there.
//! A frame the DWARF does not cover (a file built without -g, a module) stays as the
//! kernel printed it.

use super::lines::Symbolizer;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// A kernel's symbols for decoding: its vmlinux and its System.map.
pub struct Decoder {
    symbolizer: Symbolizer,
    /// Text symbols by name; `None` when a name has several addresses (a static
    /// function in two files), which a frame's name cannot tell apart.
    addresses: HashMap<String, Option<u64>>,
}

/// Text symbols of a System.map (`ffff800080010000 T _text`), by name.
pub fn parse_system_map(text: &str) -> HashMap<String, Option<u64>> {
    let mut out: HashMap<String, Option<u64>> = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next()) else { continue };
        if !matches!(kind, "T" | "t" | "W" | "w") {
            continue;
        }
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        out.entry(name.to_string()).and_modify(|a| *a = a.filter(|old| *old == addr)).or_insert(Some(addr));
    }
    out
}

/// A frame line's parts: whether it is the exact pc (`pc : ...`), the function, the
/// offset, and whether a module (`[name]`) holds it.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub exact: bool,
    pub function: &'a str,
    pub offset: u64,
    pub in_module: bool,
}

pub fn frame_ref(line: &str) -> Option<FrameRef<'_>> {
    let (exact, rest) = match line.strip_prefix("pc : ") {
        Some(r) => (true, r),
        None => (false, line.strip_prefix("lr : ").unwrap_or(line)),
    };
    let mut words = rest.split_whitespace();
    let (function, sizes) = words.next()?.split_once('+')?;
    let offset = u64::from_str_radix(sizes.split_once('/')?.0.strip_prefix("0x")?, 16).ok()?;
    let in_module = words.any(|w| w.starts_with('['));
    Some(FrameRef { exact, function, offset, in_module })
}

impl Decoder {
    pub fn open(vmlinux: &Path, system_map: &Path) -> Result<Decoder> {
        let text = std::fs::read_to_string(system_map).with_context(|| format!("reading {}", system_map.display()))?;
        Ok(Decoder { symbolizer: Symbolizer::open(vmlinux)?, addresses: parse_system_map(&text) })
    }

    /// One frame line decoded: the inlined functions at its address first, each
    /// `name (file:line) [inline]`, then the line itself with `(file:line)`. A frame
    /// without a known address or line comes back as it was.
    pub fn decode(&self, line: &str) -> Vec<String> {
        let Some(f) = frame_ref(line).filter(|f| !f.in_module) else { return vec![line.to_string()] };
        let Some(Some(base)) = self.addresses.get(f.function) else { return vec![line.to_string()] };
        let addr = base + f.offset;
        // Every frame but the pc is a return address: the call is the instruction before.
        let addr = if f.exact { addr } else { self.symbolizer.call_site(addr) };
        let frames = self.symbolizer.frames(addr);
        let located: Vec<_> = frames.iter().filter(|fr| !fr.file.is_empty() && fr.line > 0).collect();
        let Some((outer, inlined)) = located.split_last() else { return vec![line.to_string()] };
        let file = |f: &str| f.trim_start_matches("./").to_string();
        let mut out: Vec<String> =
            inlined.iter().map(|fr| format!("{} ({}:{}) [inline]", fr.function, file(&fr.file), fr.line)).collect();
        out.push(format!("{line} ({}:{})", file(&outer.file), outer.line));
        out
    }

    /// A whole trace decoded, frame by frame.
    pub fn decode_all(&self, trace: &[String]) -> Vec<String> {
        trace.iter().flat_map(|l| self.decode(l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_map_gives_text_symbols_and_refuses_ambiguous_ones() {
        let map = parse_system_map(
            "ffff800080010000 T _text\n\
             ffff800080200000 t folio_add\n\
             ffff800080300000 D some_data\n\
             ffff800080400000 t helper\n\
             ffff800080500000 t helper\n\
             garbage line\n",
        );
        assert_eq!(map.get("folio_add"), Some(&Some(0xffff800080200000)));
        assert_eq!(map.get("helper"), Some(&None));
        assert_eq!(map.get("some_data"), None);
    }

    #[test]
    fn frames_of_every_shape_the_kernel_prints() {
        let f = frame_ref("__folio_add_anon_rmap+0x2a4/0x2f0").unwrap();
        assert_eq!((f.exact, f.function, f.offset, f.in_module), (false, "__folio_add_anon_rmap", 0x2a4, false));
        let f = frame_ref("pc : folio_remove_rmap_ptes+0x40/0x100").unwrap();
        assert!(f.exact && f.function == "folio_remove_rmap_ptes" && f.offset == 0x40);
        let f = frame_ref("lr : do_wp_page+0x1c/0x3a0").unwrap();
        assert!(!f.exact && f.function == "do_wp_page");
        let f = frame_ref("rmc_walk+0x10/0x80 [rmapcheck]").unwrap();
        assert!(f.in_module);
        let f = frame_ref("show_stack+0x20/0x38 (C)").unwrap();
        assert!(!f.in_module && f.offset == 0x20);
        assert_eq!(frame_ref("Call trace:"), None);
    }
}
