//! The agent's ops: every op the host may send, the keys each takes, and the limits of
//! the agent's tables. This is the one source of truth on the host's side;
//! tests/protocol_drift.rs holds guest/agent/ops.c, guest/agent/agent.h and
//! docs/PROTOCOL.md to it.

use std::fmt;

/// One op of the line protocol (docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Ping,
    Reset,
    Mmap,
    Munmap,
    Mprotect,
    Mremap,
    Madvise,
    Write,
    Read,
    Fork,
    Exit,
    Findpage,
    Findpages,
    Findtask,
    Pagemap,
    Poke,
    Folio,
    Kpage,
    Ksm,
    Sysinfo,
    Cov,
    Mthp,
    Split,
    Migrate,
    Compact,
    Reclaim,
    Mlock,
    Munlock,
    Mlockall,
    Munlockall,
    Mtest,
    Seed,
    Modparam,
    Storm,
    Race,
    Tainted,
    Panic,
    Hang,
    Crash,
    Wtest,
    Exec,
    Poweroff,
    Pin,
    Unpin,
    Remote,
    Truncate,
    Punch,
    Msync,
    Fsync,
    Sync,
    DropCaches,
    Uffd,
}

/// An op's name on the wire and the keys it takes, in ops.c's order.
pub struct Spec {
    pub op: Op,
    pub name: &'static str,
    pub keys: &'static [&'static str],
}

const fn spec(op: Op, name: &'static str, keys: &'static [&'static str]) -> Spec {
    Spec { op, name, keys }
}

/// Every op, in the order of the agent's table.
pub const OPS: &[Spec] = &[
    spec(Op::Ping, "ping", &[]),
    spec(Op::Reset, "reset", &[]),
    spec(Op::Mmap, "mmap", &["proc", "name", "pages", "backing", "share", "huge", "at", "at_map", "locked", "align"]),
    spec(Op::Munmap, "munmap", &["proc", "name", "page", "count"]),
    spec(Op::Mprotect, "mprotect", &["proc", "name", "page", "count", "prot"]),
    spec(
        Op::Mremap,
        "mremap",
        &["proc", "name", "pages", "move", "dontunmap", "page", "count", "to", "to_map", "over", "into", "as"],
    ),
    spec(Op::Madvise, "madvise", &["proc", "name", "page", "count", "advice"]),
    spec(Op::Write, "write", &["proc", "name", "page", "count", "value", "offset", "bytes", "tag"]),
    spec(Op::Read, "read", &["proc", "name", "page", "count"]),
    spec(Op::Fork, "fork", &["proc", "child"]),
    spec(Op::Exit, "exit", &["proc"]),
    spec(Op::Findpage, "findpage", &["proc", "name", "page"]),
    spec(Op::Findpages, "findpages", &["base", "slots"]),
    spec(Op::Findtask, "findtask", &["proc"]),
    spec(Op::Pagemap, "pagemap", &["data"]),
    spec(Op::Poke, "poke", &["proc", "name", "page", "value"]),
    spec(Op::Folio, "folio", &["pfn", "nr", "pmd"]),
    spec(Op::Kpage, "kpage", &["pfn"]),
    spec(Op::Ksm, "ksm", &["timeout_ms"]),
    spec(Op::Sysinfo, "sysinfo", &[]),
    spec(Op::Cov, "cov", &["enable"]),
    spec(Op::Mthp, "mthp", &["size_kb", "anon", "shmem"]),
    spec(Op::Split, "split", &["proc", "name", "page", "count"]),
    spec(Op::Migrate, "migrate", &["proc", "name", "page", "count", "node"]),
    spec(Op::Compact, "compact", &[]),
    spec(Op::Reclaim, "reclaim", &["pages"]),
    spec(Op::Mlock, "mlock", &["proc", "name", "page", "count", "onfault"]),
    spec(Op::Munlock, "munlock", &["proc", "name", "page", "count"]),
    spec(Op::Mlockall, "mlockall", &["proc", "current", "future", "onfault"]),
    spec(Op::Munlockall, "munlockall", &["proc"]),
    spec(Op::Mtest, "mtest", &["hex", "fill", "byte"]),
    spec(Op::Seed, "seed", &["hex"]),
    spec(Op::Modparam, "modparam", &["param", "value"]),
    spec(Op::Storm, "storm", &["threads", "writes", "churn", "seed"]),
    spec(Op::Race, "race", &["rounds"]),
    spec(Op::Tainted, "tainted", &[]),
    spec(Op::Panic, "panic", &[]),
    spec(Op::Hang, "hang", &[]),
    spec(Op::Crash, "crash", &[]),
    spec(Op::Wtest, "wtest", &["proc", "what"]),
    spec(Op::Exec, "exec", &["path", "timeout_ms"]),
    spec(Op::Poweroff, "poweroff", &[]),
    spec(Op::Pin, "pin", &["proc", "name", "page", "count", "kind"]),
    spec(Op::Unpin, "unpin", &["proc", "kind"]),
    spec(Op::Remote, "remote", &["proc", "name", "page", "count", "kind", "value", "tag", "word"]),
    spec(Op::Truncate, "truncate", &["proc", "name", "pages"]),
    spec(Op::Punch, "punch", &["proc", "name", "page", "count"]),
    spec(Op::Msync, "msync", &["proc", "name", "page", "count", "async"]),
    spec(Op::Fsync, "fsync", &["proc", "name", "page"]),
    spec(Op::Sync, "sync", &[]),
    spec(Op::DropCaches, "drop_caches", &[]),
    spec(Op::Uffd, "uffd", &["proc", "name", "page", "count", "kind", "mode", "value", "tag", "to", "at", "on"]),
];

/// Keys the controller takes on any op: `then=pagemap` reads the pagemap after it.
pub const ANY_OP_KEYS: &[&str] = &["then"];

impl Op {
    fn spec(self) -> &'static Spec {
        OPS.iter().find(|s| s.op == self).expect("every op is in OPS")
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The keys the op takes (besides [`ANY_OP_KEYS`]).
    pub fn keys(self) -> &'static [&'static str] {
        self.spec().keys
    }

    pub fn takes(self, key: &str) -> bool {
        self.keys().contains(&key) || ANY_OP_KEYS.contains(&key)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The keys an `err` reply adds after `msg` when the request's worker failed
/// (`msg=worker-hung`, `msg=worker-died`; docs/PROTOCOL.md, Worker failures):
/// guest/agent/proctable.c writes each, `check::worker` reads them.
pub const WORKER_FAILURE_KEYS: &[&str] = &["pid", "wchan", "stack", "sysrq", "signal", "status"];

/// The agent's limits: guest/agent/agent.h defines each with this value, and
/// docs/PROTOCOL.md's limits table lists them.
pub const AGENT_LIMITS: &[(&str, u64)] = &[
    ("MAX_LINE", MAX_LINE),
    ("MAX_PROCS", AGENT_MAX_PROCS as u64),
    ("MAX_MAPS", AGENT_MAX_MAPS as u64),
    ("NAME_LEN", NAME_LEN as u64),
    ("MAX_IO_PAGES", MAX_IO_PAGES),
    ("MAX_MAP_PAGES", MAX_MAP_PAGES),
    ("HUGETLB_POOL", HUGETLB_POOL),
];

/// A protocol line, without its newline.
pub const MAX_LINE: u64 = 65536;
/// Workload processes alive at once (exited ones free their slot).
pub const AGENT_MAX_PROCS: usize = 128;
/// Named maps per process.
pub const AGENT_MAX_MAPS: usize = 64;
/// Labels and map names, with their NUL: at most 31 characters.
pub const NAME_LEN: usize = 32;
/// Pages one `write` or `read` takes.
pub const MAX_IO_PAGES: u64 = 4096;
/// Pages one `mmap` or `mremap` makes.
pub const MAX_MAP_PAGES: u64 = 65536;
/// Huge pages of the default size the agent reserves at boot (nr_hugepages).
pub const HUGETLB_POOL: u64 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_one_entry_and_a_unique_name() {
        let mut names: Vec<&str> = OPS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OPS.len());
        for s in OPS {
            assert_eq!(s.op.name(), s.name);
            assert_eq!(OPS.iter().filter(|t| t.op == s.op).count(), 1, "{} twice", s.name);
        }
    }
}
