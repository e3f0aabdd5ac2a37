//! Parses the kernel log into typed values: the module's structured lines and every
//! kernel splat.
//!
//! Architecture invariant: this module does no I/O; it works on strings.

use crate::wire::{parse_fields, Fields};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One /dev/kmsg record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub level: u8,
    pub seq: u64,
    pub usec: u64,
    pub text: String,
}

/// Parse `prio,seq,usec[,flags];text` as /dev/kmsg gives it.
pub fn parse_record(raw: &str) -> Option<Record> {
    let (head, text) = raw.split_once(';')?;
    let mut parts = head.split(',');
    let prio: u32 = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let usec = parts.next()?.parse().ok()?;
    Some(Record { level: (prio & 7) as u8, seq, usec, text: text.to_string() })
}

/// Strip the `[    1.234567] ` stamp of a console line.
pub fn strip_console_stamp(line: &str) -> &str {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix('[') {
        if let Some((stamp, text)) = rest.split_once("] ") {
            if stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                return text;
            }
        }
    }
    line
}

/// The kinds of kernel complaint that fail a scenario (oracle O3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplatKind {
    Panic,
    Oops,
    Bug,
    Warning,
    BadPageMap,
    BadRssCounter,
    BadPageState,
    Kasan,
    SoftLockup,
    RcuStall,
    ListCorruption,
    Ubsan,
}

impl SplatKind {
    /// Whether the kernel is past helping itself: an Oops (BUG() on arm64 prints one),
    /// a panic, or a CPU stuck for good. The agent will likely never answer again.
    pub fn is_fatal(self) -> bool {
        matches!(self, SplatKind::Panic | SplatKind::Oops | SplatKind::SoftLockup | SplatKind::RcuStall)
    }
}

/// A kernel splat: its kind, the line that opened it, and a title with addresses and
/// numbers stripped, fit for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splat {
    pub kind: SplatKind,
    pub line: String,
    pub title: String,
    /// Its stack: the `pc :`/`lr :` lines and the call trace's frames, as the kernel
    /// printed them, each decoded to `(file:line)` where the kernel's DWARF allows
    /// (`coverage::stack`). Empty in results saved before traces were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
}

/// Frames kept per splat: enough for any rmap call chain, bounded for a storm.
pub const TRACE_MAX: usize = 64;

/// What a kernel log line after a splat is to its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceLine {
    /// A frame (`func+0x1c/0x40`, with `pc : `/`lr : ` or a `[module]` and marker),
    /// trimmed.
    Frame(String),
    /// The report ends (`---[ end trace ... ]---`).
    End,
    /// Anything else: registers, the header lines, other messages.
    Other,
}

/// Classify one log line that follows a splat.
pub fn trace_line(text: &str) -> TraceLine {
    use std::sync::OnceLock;
    static FRAME: OnceLock<regex::Regex> = OnceLock::new();
    let frame = FRAME.get_or_init(|| {
        regex::Regex::new(r"^((pc|lr) : )?[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+( \[[\w]+\])?( \([A-Z]\))?\s*$")
            .expect("a valid pattern")
    });
    // A console line may start with its printk time, `[   12.345678] `.
    let body = match text.trim_start().strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((time, rest)) if time.trim().parse::<f64>().is_ok() => rest,
        _ => text,
    }
    .trim();
    if text.contains("---[ end trace") {
        TraceLine::End
    } else if frame.is_match(body) {
        TraceLine::Frame(body.to_string())
    } else {
        TraceLine::Other
    }
}

/// Read one log line into a collection of splats: a new splat comes back; otherwise,
/// while `open` (the last splat's report goes on), the line may add to `last`'s trace.
pub fn feed(open: &mut bool, last: Option<&mut Splat>, text: &str) -> Option<Splat> {
    if let Some(splat) = detect_splat(text) {
        *open = true;
        return Some(splat);
    }
    if *open {
        if let Some(last) = last {
            *open = extend_trace(last, text);
        }
    }
    None
}

/// Add a log line to the trace of the splat it follows; false once the report ended.
fn extend_trace(splat: &mut Splat, text: &str) -> bool {
    match trace_line(text) {
        TraceLine::End => false,
        TraceLine::Frame(f) => {
            if splat.trace.len() < TRACE_MAX {
                splat.trace.push(f);
            }
            true
        }
        TraceLine::Other => true,
    }
}

/// Patterns in priority order: the first that matches names the kind.
const PATTERNS: &[(&str, SplatKind)] = &[
    ("Kernel panic - not syncing", SplatKind::Panic),
    ("Bad page map", SplatKind::BadPageMap),
    ("Bad rss-counter", SplatKind::BadRssCounter),
    ("Bad page state", SplatKind::BadPageState),
    ("KASAN:", SplatKind::Kasan),
    ("soft lockup", SplatKind::SoftLockup),
    ("rcu_sched self-detected stall", SplatKind::RcuStall),
    ("rcu_preempt self-detected stall", SplatKind::RcuStall),
    ("detected stalls on CPUs", SplatKind::RcuStall),
    ("list_del corruption", SplatKind::ListCorruption),
    ("list_add corruption", SplatKind::ListCorruption),
    ("UBSAN:", SplatKind::Ubsan),
    ("Internal error: Oops", SplatKind::Oops),
    ("Unable to handle kernel", SplatKind::Oops),
    ("kernel BUG at", SplatKind::Bug),
    ("BUG: ", SplatKind::Bug),
    ("WARNING: ", SplatKind::Warning),
];

/// The splat this log line opens, if any.
pub fn detect_splat(text: &str) -> Option<Splat> {
    // Our own module lines quote user input; they are never splats.
    if text.starts_with("rmapcheck: ") {
        return None;
    }
    let (_, kind) = PATTERNS.iter().find(|(pat, _)| text.contains(pat))?;
    Some(Splat { kind: *kind, line: text.to_string(), title: normalise_title(text), trace: Vec::new() })
}

/// Replace addresses and numbers so the same bug gets the same title.
pub fn normalise_title(text: &str) -> String {
    use std::sync::OnceLock;
    static RES: OnceLock<[regex::Regex; 4]> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            // Function offsets: `folio_add+0x2a4/0x2f0` keeps the name.
            regex::Regex::new(r"\+0x[0-9a-f]+/0x[0-9a-f]+").unwrap(),
            // Hex with or without 0x (`pfn:4e`, `mm:00000000c2a1`): any word of hex
            // digits that has a decimal digit in it.
            regex::Regex::new(r"0x[0-9a-fA-F]+|\b[0-9a-f]*[0-9][0-9a-f]*\b").unwrap(),
            regex::Regex::new(r"\d+").unwrap(),
            regex::Regex::new(r"\s+").unwrap(),
        ]
    });
    let t = res[0].replace_all(text, "");
    let t = res[1].replace_all(&t, "#");
    let t = res[2].replace_all(&t, "#");
    res[3].replace_all(t.trim(), " ").into_owned()
}

/// Every splat in a list of log lines.
pub fn splats<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Splat> {
    let mut out: Vec<Splat> = Vec::new();
    let mut open = false;
    for line in lines {
        if let Some(s) = feed(&mut open, out.last_mut(), line) {
            out.push(s);
        }
    }
    out
}

/// A parsed `rmapcheck:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleLine {
    Cmd { req: u64, fields: Fields },
    Page { req: u64, page: PageLine },
    Vma { req: u64, vma: VmaLine },
    Task { req: u64, pid: u32, comm: String, vmas: u32 },
    Error { req: u64, rc: i32, msg: String },
    End { req: u64, rc: i32, mapped: u32, visited: u32 },
}

impl ModuleLine {
    pub fn req(&self) -> u64 {
        match self {
            ModuleLine::Cmd { req, .. }
            | ModuleLine::Page { req, .. }
            | ModuleLine::Vma { req, .. }
            | ModuleLine::Task { req, .. }
            | ModuleLine::Error { req, .. }
            | ModuleLine::End { req, .. } => *req,
        }
    }
}

/// What the module says about the page it walked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageLine {
    pub pfn: u64,
    pub order: u32,
    pub kind: String,
    pub mapcount: i64,
    pub page_mapcount: Option<i64>,
    pub refcount: i64,
    pub flags: u64,
    pub mcsem: String,
    /// The folio's first pfn (`head=`); `None` for `kind=none` and older modules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// Pages in the folio (`nr=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nr_pages: Option<u64>,
    /// For a KSM page: whether its mapping holds a stable node (`ksmnode=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ksm_node: Option<bool>,
}

/// One VMA the walk visited, or one VMA of a findtask listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmaLine {
    pub pid: u32,
    pub comm: String,
    pub start: u64,
    pub end: u64,
    pub flags: u64,
    pub prot: String,
    pub pgoff: u64,
    pub file: Option<String>,
    pub ops: Option<String>,
    pub anon_vma: bool,
    pub addr: Option<u64>,
    pub state: VmaState,
    pub level: Option<String>,
    /// The address rmap_walk() passed to the module's callback (`rmap_addr=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmap_addr: Option<u64>,
    /// Where the module computes the folio starts in this VMA (`folio_addr=`): what
    /// `rmap_addr` must be. `None` for KSM, findtask and older modules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folio_addr: Option<u64>,
    /// Every PTE and PMD of this VMA that maps a page of the folio (`at=`), in address
    /// order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<MappedAt>,
    /// Mappings found beyond those `at` lists (`at=...,+N`).
    #[serde(skip_serializing_if = "is_zero")]
    pub at_more: u32,
    /// The VMA's anon_vma and that anon_vma's parent, as hashed pointers (`av=A:P`):
    /// identities, stable for one boot. `None` without an anon_vma.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub av: Option<(String, String)>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One `at=` entry: `pages` consecutive pages mapped by PTEs from `addr`, or one PMD
/// (`pages` is 1) at `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MappedAt {
    pub addr: u64,
    pub level: AtLevel,
    pub pages: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AtLevel {
    Pte,
    Pmd,
}

impl VmaLine {
    /// The address rmap_walk() passed and where the folio starts in this VMA, when
    /// they differ; `None` when they agree or either is unknown.
    pub fn rmap_addr_mismatch(&self) -> Option<(u64, u64)> {
        match (self.rmap_addr, self.folio_addr) {
            (Some(k), Some(m)) if k != m => Some((k, m)),
            _ => None,
        }
    }
}

/// Parse `at=`: `-`, or comma-separated `0x<addr>:pte|pmd[*<pages>]`, optionally ending
/// in `+<n>`.
fn parse_at(value: Option<&String>) -> Result<(Vec<MappedAt>, u32), String> {
    let mut at = Vec::new();
    let mut more = 0;
    let Some(value) = value.filter(|v| v.as_str() != "-") else {
        return Ok((at, more));
    };
    let entries: Vec<&str> = value.split(',').collect();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(n) = entry.strip_prefix('+') {
            if i + 1 != entries.len() {
                return Err(format!("at: +{n} is not last"));
            }
            more = n.parse().map_err(|_| format!("at: bad count '{entry}'"))?;
            continue;
        }
        let (addr, rest) = entry.split_once(':').ok_or_else(|| format!("at: no level in '{entry}'"))?;
        let (level, pages) = match rest.split_once('*') {
            Some((l, n)) => (l, n.parse().map_err(|_| format!("at: bad page count in '{entry}'"))?),
            None => (rest, 1),
        };
        let level = match level {
            "pte" => AtLevel::Pte,
            "pmd" if pages == 1 => AtLevel::Pmd,
            _ => return Err(format!("at: bad level in '{entry}'")),
        };
        let addr = addr
            .strip_prefix("0x")
            .and_then(|d| u64::from_str_radix(d, 16).ok())
            .ok_or_else(|| format!("at: bad address in '{entry}'"))?;
        at.push(MappedAt { addr, level, pages });
    }
    Ok((at, more))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmaState {
    Mapped,
    Visited,
    /// A findtask listing, which says nothing about a page.
    Listed,
}

/// A module line that has the prefix but does not parse: the module and this parser
/// disagree, which is a bug worth reporting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad module line ({why}): {line}")]
pub struct BadLine {
    pub line: String,
    pub why: String,
}

fn hex(fields: &Fields, key: &str) -> Result<u64, String> {
    let v = fields.get(key).ok_or_else(|| format!("no {key}"))?;
    let digits = v.strip_prefix("0x").ok_or_else(|| format!("{key} is not 0x-hex"))?;
    u64::from_str_radix(digits, 16).map_err(|e| format!("{key}: {e}"))
}

fn num<T: std::str::FromStr>(fields: &Fields, key: &str) -> Result<T, String> {
    fields.get(key).ok_or_else(|| format!("no {key}"))?.parse().map_err(|_| format!("{key} is not a number"))
}

fn text(fields: &Fields, key: &str) -> Result<String, String> {
    fields.get(key).cloned().ok_or_else(|| format!("no {key}"))
}

fn optional(fields: &Fields, key: &str) -> Option<String> {
    fields.get(key).filter(|v| v.as_str() != "-").cloned()
}

/// Parse one log line; `None` when it is not the module's.
pub fn parse_module_line(line: &str) -> Option<Result<ModuleLine, BadLine>> {
    let rest = line.strip_prefix("rmapcheck: ")?;
    let mut words = rest.splitn(3, ' ');
    let req = words.next()?.strip_prefix("req=")?;
    let parsed = (|| -> Result<ModuleLine, String> {
        let req: u64 = req.parse().map_err(|_| "req is not a number".to_string())?;
        let tag = words.next().unwrap_or("");
        let body = words.next().unwrap_or("");
        let f = parse_fields(body);
        Ok(match tag {
            t if t.starts_with("cmd=") => {
                let mut fields = f;
                fields.insert("cmd".into(), t["cmd=".len()..].to_string());
                ModuleLine::Cmd { req, fields }
            }
            "page" => ModuleLine::Page {
                req,
                page: PageLine {
                    pfn: hex(&f, "pfn")?,
                    order: num(&f, "order")?,
                    kind: text(&f, "kind")?,
                    mapcount: num(&f, "mapcount")?,
                    page_mapcount: optional(&f, "pagemapcount").and_then(|v| v.parse().ok()),
                    refcount: num(&f, "refcount")?,
                    flags: hex(&f, "flags")?,
                    mcsem: text(&f, "mcsem")?,
                    head: optional(&f, "head").map(|_| hex(&f, "head")).transpose()?,
                    nr_pages: optional(&f, "nr").map(|_| num(&f, "nr")).transpose()?,
                    ksm_node: optional(&f, "ksmnode").map(|v| v != "0"),
                },
            },
            "vma" => {
                let state = match f.get("state").map(String::as_str) {
                    Some("mapped") => VmaState::Mapped,
                    Some("visited") => VmaState::Visited,
                    Some("-") => VmaState::Listed,
                    other => return Err(format!("bad state {other:?}")),
                };
                let (at, at_more) = parse_at(f.get("at"))?;
                ModuleLine::Vma {
                    req,
                    vma: VmaLine {
                        pid: num(&f, "pid")?,
                        comm: text(&f, "comm")?,
                        start: hex(&f, "start")?,
                        end: hex(&f, "end")?,
                        flags: hex(&f, "flags")?,
                        prot: text(&f, "prot")?,
                        pgoff: hex(&f, "pgoff")?,
                        file: optional(&f, "file"),
                        ops: optional(&f, "ops"),
                        anon_vma: f.get("anon_vma").is_some_and(|v| v == "1"),
                        addr: optional(&f, "addr").map(|_| hex(&f, "addr")).transpose()?,
                        state,
                        level: optional(&f, "level"),
                        rmap_addr: optional(&f, "rmap_addr").map(|_| hex(&f, "rmap_addr")).transpose()?,
                        folio_addr: optional(&f, "folio_addr").map(|_| hex(&f, "folio_addr")).transpose()?,
                        at,
                        at_more,
                        av: optional(&f, "av").and_then(|v| v.split_once(':').map(|(a, p)| (a.into(), p.into()))),
                    },
                }
            }
            "task" => ModuleLine::Task { req, pid: num(&f, "pid")?, comm: text(&f, "comm")?, vmas: num(&f, "vmas")? },
            "error" => ModuleLine::Error { req, rc: num(&f, "rc")?, msg: f.get("msg").cloned().unwrap_or_default() },
            "end" => ModuleLine::End {
                req,
                rc: num(&f, "rc")?,
                mapped: f.get("mapped").and_then(|v| v.parse().ok()).unwrap_or(0),
                visited: f.get("visited").and_then(|v| v.parse().ok()).unwrap_or(0),
            },
            other => return Err(format!("unknown tag '{other}'")),
        })
    })();
    Some(parsed.map_err(|why| BadLine { line: line.to_string(), why }))
}

/// Everything the module said about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    pub req: u64,
    pub cmd: Option<Fields>,
    pub page: Option<PageLine>,
    pub vmas: Vec<VmaLine>,
    pub task: Option<(u32, String, u32)>,
    pub errors: Vec<(i32, String)>,
    /// `(rc, mapped, visited)` of the closing line; `None` means lines were lost.
    pub end: Option<(i32, u32, u32)>,
    pub bad_lines: Vec<BadLine>,
}

/// Gather the lines of request `req` from a list of log lines.
pub fn collect_walk<'a>(lines: impl IntoIterator<Item = &'a str>, req: u64) -> Walk {
    let mut walk = Walk { req, ..Walk::default() };
    for line in lines {
        match parse_module_line(line) {
            None => {}
            Some(Err(bad)) => walk.bad_lines.push(bad),
            Some(Ok(ml)) if ml.req() != req => {}
            Some(Ok(ml)) => match ml {
                ModuleLine::Cmd { fields, .. } => walk.cmd = Some(fields),
                ModuleLine::Page { page, .. } => walk.page = Some(page),
                ModuleLine::Vma { vma, .. } => walk.vmas.push(vma),
                ModuleLine::Task { pid, comm, vmas, .. } => walk.task = Some((pid, comm, vmas)),
                ModuleLine::Error { rc, msg, .. } => walk.errors.push((rc, msg)),
                ModuleLine::End { rc, mapped, visited, .. } => walk.end = Some((rc, mapped, visited)),
            },
        }
    }
    walk
}

/// The raw kmsg records of a reply, by the module request (`req=`) they belong to;
/// records that are not the module's are left out.
pub fn records_by_req(raw: &[String]) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in raw {
        let req = r.split_once(';').and_then(|(_, text)| text.strip_prefix("rmapcheck: req="));
        if let Some(n) = req.and_then(|rest| rest.split(' ').next()?.parse().ok()) {
            out.entry(n).or_default().push(r.clone());
        }
    }
    out
}

/// The module's account of request `req` in the raw kmsg records of a reply.
pub fn walk_in_records(raw: &[String], req: u64) -> Walk {
    let records: Vec<Record> = raw.iter().filter_map(|k| parse_record(k)).collect();
    collect_walk(records.iter().map(|r| r.text.as_str()), req)
}

#[cfg(test)]
mod tests;
