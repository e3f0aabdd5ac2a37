//! Writes a scenario back as YAML that [`parse`](super::parse) accepts: one flow mapping
//! per step, so a generated or shrunk sequence reads like a hand-written one.

use super::*;

/// A YAML string: double-quoted with JSON escapes, which YAML accepts as is.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// `key: value` pairs of one step, leaving out what equals the default.
struct Fields(Vec<String>);

impl Fields {
    fn new() -> Fields {
        Fields(Vec::new())
    }
    fn proc(mut self, proc: &str) -> Fields {
        if proc != FIRST_PROC {
            self.0.push(format!("proc: {}", quoted(proc)));
        }
        self
    }
    fn text(mut self, key: &str, value: &str) -> Fields {
        self.0.push(format!("{key}: {}", quoted(value)));
        self
    }
    fn word(mut self, key: &str, value: impl fmt::Display) -> Fields {
        self.0.push(format!("{key}: {value}"));
        self
    }
    fn maybe(self, key: &str, value: Option<impl fmt::Display>) -> Fields {
        match value {
            Some(v) => self.word(key, v),
            None => self,
        }
    }
    fn flag(self, key: &str, on: bool) -> Fields {
        if on {
            self.word(key, true)
        } else {
            self
        }
    }
    /// `proc`, `map` and an optional `page`/`pages` range.
    fn range(self, proc: &str, map: &str, page: Option<u64>, pages: Option<u64>) -> Fields {
        self.proc(proc).text("map", map).maybe("page", page).maybe("pages", pages)
    }
    /// A place as a nested flow mapping, when there is one.
    fn place(mut self, key: &str, place: Option<&Place>) -> Fields {
        if let Some(p) = place {
            let inner = Fields::new()
                .maybe("after", p.after.as_deref().map(quoted))
                .maybe("before", p.before.as_deref().map(quoted))
                .maybe("over", p.over.as_deref().map(quoted))
                .maybe("page", p.page)
                .flag("back", p.back)
                .maybe("gap", p.gap);
            self.0.push(format!("{key}: {}", inner.done()));
        }
        self
    }
    fn done(self) -> String {
        if self.0.is_empty() {
            return "{}".into();
        }
        format!("{{ {} }}", self.0.join(", "))
    }
}

fn backing(b: Backing) -> &'static str {
    match b {
        Backing::Anon => "anon",
        Backing::DevZero => "dev-zero",
        Backing::Memfd => "memfd",
        Backing::File => "file",
        Backing::Hugetlb => "hugetlb",
        Backing::Hugetlbfs => "hugetlbfs",
        Backing::Ext4 => "ext4",
    }
}

/// One step as `op: { ... }`.
pub fn step(s: &Step) -> String {
    let body = match s {
        Step::Mmap(m) => Fields::new()
            .proc(&m.proc)
            .text("name", &m.name)
            .word("pages", huge_pages(m))
            .word("backing", backing(m.backing))
            .word("share", if m.share == Share::Shared { "shared" } else { "private" })
            .maybe("huge", m.huge)
            .flag("locked", m.locked)
            .place("at", m.at.as_ref())
            .maybe("align", m.align)
            .done(),
        Step::Truncate(x) => Fields::new().proc(&x.proc).text("map", &x.map).word("pages", x.pages).done(),
        Step::Munmap(r) | Step::Split(r) | Step::Munlock(r) | Step::Punch(r) => {
            Fields::new().range(&r.proc, &r.map, r.page, r.pages).done()
        }
        Step::Mprotect(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .maybe("pages", x.pages)
            .word("prot", x.prot.wire())
            .done(),
        Step::Mremap(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("pages", x.pages)
            .maybe("page", x.page)
            .maybe("new_pages", x.new_pages)
            .maybe("as", x.as_.as_deref().map(quoted))
            .place("to", x.to.as_ref())
            .flag("move", x.move_)
            .flag("dontunmap", x.dontunmap)
            .done(),
        Step::Madvise(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .maybe("pages", x.pages)
            .word("advice", x.advice.wire())
            .done(),
        Step::Write(a) | Step::Read(a) | Step::UffdCopy(a) => Fields::new()
            .proc(&a.proc)
            .text("map", &a.map)
            .word("page", a.page)
            .word("pages", a.pages)
            .maybe("value", a.value)
            .done(),
        Step::Fork(f) => Fields::new().proc(&f.proc).text("child", &f.child).done(),
        Step::Exit(p) | Step::Findtask(p) => Fields::new().proc(&p.proc).done(),
        Step::Findpage(r) | Step::Poke(r) => {
            Fields::new().proc(&r.proc).text("map", &r.map).word("page", r.page).done()
        }
        Step::Check(CheckWhat::All) => "all".to_string(),
        Step::Ksm(k) => Fields::new().maybe("timeout_ms", k.timeout_ms).done(),
        Step::Migrate(x) => Fields::new().range(&x.proc, &x.map, x.page, x.pages).maybe("node", x.node).done(),
        Step::Compact(_) => "{}".to_string(),
        Step::Reclaim(r) => Fields::new().maybe("pages", r.pages).done(),
        Step::Mlock(x) => Fields::new().range(&x.proc, &x.map, x.page, x.pages).flag("onfault", x.onfault).done(),
        Step::Mlockall(x) => Fields::new()
            .proc(&x.proc)
            .maybe("current", (!x.current).then_some(false))
            .flag("future", x.future)
            .flag("onfault", x.onfault)
            .done(),
        Step::Munlockall(p) => Fields::new().proc(&p.proc).done(),
        Step::Pin(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .word("pages", x.pages)
            .word("kind", x.kind.wire())
            .done(),
        Step::Unpin(x) => Fields::new().proc(&x.proc).word("kind", x.kind.wire()).done(),
        Step::Remote(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .word("pages", x.pages)
            .word("kind", x.kind.wire())
            .maybe("value", x.value)
            .done(),
        Step::Msync(x) => Fields::new().range(&x.proc, &x.map, x.page, x.pages).flag("async", x.async_).done(),
        Step::Fsync(x) => Fields::new().proc(&x.proc).text("map", &x.map).maybe("page", x.page).done(),
        Step::Sync(_) | Step::DropCaches(_) => "{}".to_string(),
        Step::Uffd(x) => Fields::new().proc(&x.proc).text("map", &x.map).word("mode", x.mode.wire()).done(),
        Step::UffdZeropage(x) => {
            Fields::new().proc(&x.proc).text("map", &x.map).word("page", x.page).word("pages", x.pages).done()
        }
        Step::UffdMove(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .word("pages", x.pages)
            .word("to", format!("{{ map: {}, page: {} }}", quoted(&x.to.map), x.to.page))
            .done(),
        Step::UffdWp(x) => Fields::new()
            .proc(&x.proc)
            .text("map", &x.map)
            .word("page", x.page)
            .word("pages", x.pages)
            .word("on", x.on)
            .done(),
    };
    format!("{}: {body}", s.op())
}

/// The scenario as YAML, with `comment` lines (if any) on top.
///
/// Only scenarios without an `expect:` block can be written; generated and shrunk
/// scenarios never have one.
pub fn to_yaml(s: &Scenario, comment: &str) -> String {
    assert!(s.expect.is_empty(), "to_yaml writes scenarios without expectations");
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(&format!("name: {}\nabout: {}\n", quoted(&s.name), quoted(&s.about)));
    if !s.mthp.is_empty() {
        out.push_str("mthp:\n");
        for m in &s.mthp {
            let pages = m.pages.map(|n| n.to_string()).unwrap_or_else(|| "all".into());
            let mode = |m: MthpMode| m.wire().replace('_', "-");
            let line =
                Fields::new().word("pages", pages).maybe("anon", m.anon.map(mode)).maybe("shmem", m.shmem.map(mode));
            out.push_str(&format!("  - {}\n", line.done()));
        }
    }
    out.push_str("steps:\n");
    for st in &s.steps {
        out.push_str(&format!("  - {}\n", step(st)));
    }
    out
}

/// A hugetlb map's size in PMDs of the page size it is written for (`pmd`, `2*pmd`),
/// so that a finding from a 16k campaign still fits the pool where it is read at 4k.
fn huge_pages(m: &super::Mmap) -> String {
    let pmd = super::count::pmd_pages(super::count::page_size());
    match m.pages / pmd {
        1 if m.backing.hugetlb() && m.pages.is_multiple_of(pmd) => "pmd".into(),
        k if m.backing.hugetlb() && m.pages.is_multiple_of(pmd) && k > 1 => format!("{k}*pmd"),
        _ => m.pages.to_string(),
    }
}
