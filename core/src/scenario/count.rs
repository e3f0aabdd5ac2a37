//! Page counts that mean the same on every page size: `pmd` is the pages one PMD maps
//! (512 on 4k kernels, 2048 on 16k), so `pages: pmd` is a PMD-sized THP on both.
//!
//! Grammar: a number, or `[K*]pmd[/D][+M|-M]` (e.g. `2*pmd`, `pmd/2`, `pmd-1`,
//! `pmd/2+3`). Deserialisation resolves against the page size that [`with_page_size`]
//! set for the current thread (4 KiB otherwise) and notes that the text depended on it.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::cell::Cell;

thread_local! {
    static PAGE_SIZE: Cell<u64> = const { Cell::new(4096) };
    static RELATIVE: Cell<bool> = const { Cell::new(false) };
}

/// The page size that parsing assumes when nothing else is said.
pub const DEFAULT_PAGE_SIZE: u64 = 4096;

/// Pages one PMD maps: one page of 8-byte entries.
pub fn pmd_pages(page_size: u64) -> u64 {
    page_size / 8
}

/// The page size counts resolve against on this thread.
pub fn page_size() -> u64 {
    PAGE_SIZE.with(Cell::get)
}

/// Run `f` with counts resolved for `page_size`; also says whether any count was
/// relative (so the result differs between page sizes).
pub fn with_page_size<T>(page_size: u64, f: impl FnOnce() -> T) -> (T, bool) {
    let old = PAGE_SIZE.with(|p| p.replace(page_size));
    let old_rel = RELATIVE.with(|r| r.replace(false));
    let out = f();
    PAGE_SIZE.with(|p| p.set(old));
    let rel = RELATIVE.with(|r| r.replace(old_rel));
    (out, rel)
}

/// A count as written: for the JSON Schema only.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Count {
    Pages(u64),
    /// `pmd`, `2*pmd`, `pmd/2`, `pmd-1`, `pmd/2+3`: pages relative to one PMD.
    Relative(String),
}

enum Raw {
    N(u64),
    S(String),
}

/// A visitor rather than an untagged enum, so a bad value keeps its position and
/// serde's own message ("invalid type: integer `-3`").
impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a page count: a number, or e.g. pmd, 2*pmd, pmd/2, pmd-1")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::N(v))
            }
            // Checked here, not after, so a bad expression keeps its own position.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Raw, E> {
                if v.trim() != "all" {
                    eval(v, PAGE_SIZE.with(Cell::get)).map_err(E::custom)?;
                }
                Ok(Raw::S(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Resolve an expression for a page size; `Err` says what is wrong with it.
pub fn eval(expr: &str, page_size: u64) -> Result<u64, String> {
    let s: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let bad = || format!("'{expr}' is not a page count (a number, or e.g. pmd, 2*pmd, pmd/2, pmd-1)");
    let (mul, rest) = match s.split_once("*pmd") {
        Some((k, rest)) => (k.parse::<u64>().map_err(|_| bad())?, rest),
        None => (1, s.strip_prefix("pmd").ok_or_else(bad)?),
    };
    let (div, rest) = match rest.strip_prefix('/') {
        Some(r) => {
            let end = r.find(['+', '-']).unwrap_or(r.len());
            let d: u64 = r[..end].parse().map_err(|_| bad())?;
            if d == 0 {
                return Err(bad());
            }
            (d, &r[end..])
        }
        None => (1, rest),
    };
    let base = (pmd_pages(page_size) * mul) / div;
    let out = if let Some(m) = rest.strip_prefix('+') {
        base.checked_add(m.parse().map_err(|_| bad())?)
    } else if let Some(m) = rest.strip_prefix('-') {
        base.checked_sub(m.parse().map_err(|_| bad())?)
    } else if rest.is_empty() {
        Some(base)
    } else {
        return Err(bad());
    };
    out.ok_or_else(|| format!("'{expr}' is negative on {} KiB pages", page_size / 1024))
}

fn resolve(raw: Raw) -> Result<u64, String> {
    match raw {
        Raw::N(n) => Ok(n),
        Raw::S(s) => {
            let ps = PAGE_SIZE.with(Cell::get);
            let n = eval(&s, ps)?;
            if s.trim().parse::<u64>().is_err() {
                RELATIVE.with(|r| r.set(true));
            }
            Ok(n)
        }
    }
}

/// `deserialize_with` for a count.
pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    resolve(Raw::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an optional count.
pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Raw>::deserialize(d)? {
        Some(raw) => resolve(raw).map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

/// `deserialize_with` for a count or `all` (`None`).
pub fn or_all<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::S(s) if s.trim() == "all" => Ok(None),
        raw => resolve(raw).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `deserialize_with` for a page reference `map[count]` (e.g. `h[pmd-1]`).
pub fn page_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    let Some((name, rest)) = s.split_once('[') else { return Ok(Some(s)) };
    let Some(idx) = rest.strip_suffix(']') else { return Ok(Some(s)) };
    let n = resolve(Raw::S(idx.to_string())).map_err(serde::de::Error::custom)?;
    Ok(Some(format!("{name}[{n}]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmd_means_one_pmd_on_every_page_size() {
        for (ps, pmd) in [(4096, 512), (16384, 2048), (65536, 8192)] {
            assert_eq!(eval("pmd", ps), Ok(pmd));
            assert_eq!(eval("2*pmd", ps), Ok(2 * pmd));
            assert_eq!(eval("pmd/2", ps), Ok(pmd / 2));
            assert_eq!(eval("pmd - 1", ps), Ok(pmd - 1));
            assert_eq!(eval("pmd/2+3", ps), Ok(pmd / 2 + 3));
            assert_eq!(eval("2*pmd+16", ps), Ok(2 * pmd + 16));
        }
        assert_eq!(eval("17", 16384), Ok(17));
        for bad in ["pmdx", "3*", "pmd/0", "pmd+", "pud", "pmd*2", "-1"] {
            assert!(eval(bad, 4096).is_err(), "{bad}");
        }
        assert!(eval("pmd-600", 4096).unwrap_err().contains("negative"));
    }
}
