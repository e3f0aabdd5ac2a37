//! The agent request a step becomes: [`Request::from_step`] resolves what a step leaves
//! out (a range's count from the map's size in the [`World`], a write's value from the
//! step's number), and [`Wire`] renders it as the protocol's `op key=value ...` text,
//! the one place that writes step requests.

use super::*;
use crate::ops::Op;

/// A range of pages of one process's map, as the agent takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pages {
    pub proc: String,
    pub name: String,
    pub page: u64,
    pub count: u64,
}

/// One step's request, with every argument resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Mmap {
        proc: String,
        name: String,
        pages: u64,
        backing: Backing,
        share: Share,
        huge: Option<bool>,
        locked: bool,
        /// `at`: pages from the start of the map named first (MAP_FIXED_NOREPLACE).
        at: Option<(String, i64)>,
        /// Pages past a PMD boundary the map starts at (negative: before one).
        align: Option<i64>,
    },
    Munmap(Pages),
    Mprotect(Pages, Prot),
    /// `move_`: MREMAP_MAYMOVE|MREMAP_FIXED to a fresh address (DONTUNMAP implies it).
    Mremap {
        proc: String,
        name: String,
        pages: u64,
        move_: bool,
        dontunmap: bool,
        /// `(page, count)`: only this range of the map moves.
        range: Option<(u64, u64)>,
        /// Where it goes (MREMAP_FIXED): pages from the start of a named map.
        to: Option<Target>,
        /// The name of the map a moved range becomes.
        as_: Option<String>,
    },
    Madvise(Pages, Advice),
    /// `tag`: the page's index over the first 8 bytes (a write without a `value`).
    Write {
        pages: Pages,
        value: u8,
        tag: bool,
    },
    Read(Pages),
    Fork {
        proc: String,
        child: String,
    },
    Exit {
        proc: String,
    },
    Findpage {
        proc: String,
        name: String,
        page: u64,
    },
    Findtask {
        proc: String,
    },
    Poke {
        proc: String,
        name: String,
        page: u64,
    },
    Ksm {
        timeout_ms: u64,
    },
    Split(Pages),
    Migrate(Pages, Option<u32>),
    Compact,
    /// `pages`: how many pages memory.reclaim is asked for.
    Reclaim {
        pages: u64,
    },
    Mlock(Pages, bool),
    Munlock(Pages),
    Mlockall {
        proc: String,
        current: bool,
        future: bool,
        onfault: bool,
    },
    Munlockall {
        proc: String,
    },
    Pin(Pages, PinKind),
    Unpin {
        proc: String,
        kind: PinKind,
    },
    /// `value` and `tag` as for a write (writev); ptrace pokes `word` plus the page's
    /// index in its map at each page's start (`Remote::poke_word`).
    Remote {
        pages: Pages,
        kind: RemoteKind,
        value: u8,
        tag: bool,
        word: u64,
    },
    /// ftruncate of the file under `name` to `pages` pages.
    Truncate {
        proc: String,
        name: String,
        pages: u64,
    },
    Punch(Pages),
    /// `bool`: MS_ASYNC.
    Msync(Pages, bool),
    /// UFFDIO_REGISTER of a whole map.
    UffdRegister {
        proc: String,
        name: String,
        mode: UffdMode,
    },
    /// UFFDIO_COPY, with a write's `value` and `tag`.
    UffdCopy {
        pages: Pages,
        value: u8,
        tag: bool,
    },
    UffdZeropage(Pages),
    /// UFFDIO_MOVE to page `at` of map `to`.
    UffdMove {
        pages: Pages,
        to: String,
        at: u64,
    },
    UffdWp(Pages, bool),
    Fsync {
        proc: String,
        name: String,
        page: u64,
    },
    Sync,
    DropCaches,
}

/// Where an `mremap` puts what it moves: `offset` pages from the start of map `map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub map: String,
    pub offset: i64,
    /// Replace what is mapped there (else the range must be free).
    pub over: bool,
    /// The pages rejoin `map` (a move back) instead of making a map of their own.
    pub into: bool,
}

impl Target {
    /// Where `place` puts `pages` pages moved by `x`, in `world` (before the step).
    fn of(place: &Place, x: &Mremap, pages: u64, world: &World) -> Option<Target> {
        let at = |map: &str, offset: i64, over: bool, into: bool| Target { map: map.into(), offset, over, into };
        Some(match place.anchor().ok()? {
            Anchor::After(m, gap) => at(m, (world.size(&x.proc, m) + gap) as i64, false, false),
            Anchor::Before(m, gap) => at(m, -((pages + gap) as i64), false, false),
            Anchor::Over(m, page) => at(m, page as i64, true, false),
            Anchor::Back => {
                let (from, page, _) = world.map(&x.proc, &x.map)?.origin()?;
                at(from, page as i64, true, true)
            }
        })
    }
}

/// The `at` of an `mmap`: pages from the start of the map it is placed by.
fn mmap_at(m: &Mmap, world: &World) -> Option<(String, i64)> {
    Some(match m.at.as_ref()?.anchor().ok()? {
        Anchor::After(a, gap) => (a.to_string(), (world.size(&m.proc, a) + gap) as i64),
        Anchor::Before(a, gap) => (a.to_string(), -((m.pages + gap) as i64)),
        Anchor::Over(..) | Anchor::Back => return None,
    })
}

/// How long a `ksm` step runs KSM at most, without a `timeout_ms`.
pub const KSM_TIMEOUT_MS: u64 = 2000;

/// The byte a write step fills its pages with: the scenario's `value`, else one
/// distinct per step, so unrelated pages never hold equal contents.
pub fn write_value(a: &Access, step: usize) -> u8 {
    step_value(a.value, step)
}

/// The byte a write of step `step` puts in each page: `value`, or one unique to the step.
pub fn step_value(value: Option<u8>, step: usize) -> u8 {
    value.unwrap_or((step % 250 + 1) as u8)
}

impl Backing {
    pub fn wire(self) -> &'static str {
        match self {
            Backing::Anon => "anon",
            Backing::DevZero => "devzero",
            Backing::Memfd => "memfd",
            Backing::File => "file",
            Backing::Hugetlb => "hugetlb",
            Backing::Hugetlbfs => "hugetlbfs",
            Backing::Ext4 => "ext4",
        }
    }
}

impl Share {
    pub fn wire(self) -> &'static str {
        match self {
            Share::Private => "private",
            Share::Shared => "shared",
        }
    }
}

impl Prot {
    /// Its name on the wire and in YAML.
    pub fn wire(self) -> &'static str {
        match self {
            Prot::None => "none",
            Prot::R => "r",
            Prot::Rw => "rw",
            Prot::Rx => "rx",
            Prot::Rwx => "rwx",
        }
    }
}

impl Request {
    /// The request step number `n` makes in `world` (the world before the step), or
    /// `None` for `check`, which is a pagemap read and walks, not one request.
    pub fn from_step(step: &Step, world: &World, n: usize) -> Option<Request> {
        let pages = |proc: &str, name: &str| {
            let (page, count) = step.pages_in(world.size(proc, name)).expect("a step over a map's pages");
            Pages { proc: proc.to_string(), name: name.to_string(), page, count }
        };
        Some(match step {
            Step::Mmap(m) => Request::Mmap {
                proc: m.proc.clone(),
                name: m.name.clone(),
                pages: m.pages,
                backing: m.backing,
                share: m.share,
                huge: m.huge,
                locked: m.locked,
                at: mmap_at(m, world),
                align: m.align.map(|a| a.0),
            },
            Step::Munmap(r) => Request::Munmap(pages(&r.proc, &r.map)),
            Step::Mprotect(x) => Request::Mprotect(pages(&x.proc, &x.map), x.prot),
            Step::Mremap(x) => Request::Mremap {
                proc: x.proc.clone(),
                name: x.map.clone(),
                pages: x.new_size(),
                move_: (x.move_ || x.dontunmap) && x.to.is_none(),
                dontunmap: x.dontunmap,
                range: x.page.map(|p| (p, x.pages)),
                to: x.to.as_ref().and_then(|t| Target::of(t, x, x.new_size(), world)),
                as_: x.as_.clone(),
            },
            Step::Madvise(x) => Request::Madvise(pages(&x.proc, &x.map), x.advice),
            // A given value fills whole pages (KSM scenarios want equal pages).
            Step::Write(a) => {
                Request::Write { pages: pages(&a.proc, &a.map), value: write_value(a, n), tag: a.value.is_none() }
            }
            Step::Read(a) => Request::Read(pages(&a.proc, &a.map)),
            Step::Fork(f) => Request::Fork { proc: f.proc.clone(), child: f.child.clone() },
            Step::Exit(p) => Request::Exit { proc: p.proc.clone() },
            Step::Findpage(r) => Request::Findpage { proc: r.proc.clone(), name: r.map.clone(), page: r.page },
            Step::Findtask(p) => Request::Findtask { proc: p.proc.clone() },
            Step::Poke(r) => Request::Poke { proc: r.proc.clone(), name: r.map.clone(), page: r.page },
            Step::Check(_) => return None,
            Step::Ksm(k) => Request::Ksm { timeout_ms: k.timeout_ms.unwrap_or(KSM_TIMEOUT_MS) },
            Step::Split(r) => Request::Split(pages(&r.proc, &r.map)),
            Step::Migrate(x) => Request::Migrate(pages(&x.proc, &x.map), x.node),
            Step::Compact(_) => Request::Compact,
            Step::Reclaim(r) => Request::Reclaim { pages: r.pages.unwrap_or(MAX_RECLAIM_PAGES) },
            Step::Mlock(x) => Request::Mlock(pages(&x.proc, &x.map), x.onfault),
            Step::Munlock(r) => Request::Munlock(pages(&r.proc, &r.map)),
            Step::Mlockall(x) => {
                Request::Mlockall { proc: x.proc.clone(), current: x.current, future: x.future, onfault: x.onfault }
            }
            Step::Munlockall(p) => Request::Munlockall { proc: p.proc.clone() },
            Step::Pin(x) => Request::Pin(pages(&x.proc, &x.map), x.kind),
            Step::Unpin(x) => Request::Unpin { proc: x.proc.clone(), kind: x.kind },
            Step::Remote(x) => Request::Remote {
                pages: pages(&x.proc, &x.map),
                kind: x.kind,
                value: step_value(x.value, n),
                tag: x.value.is_none(),
                word: Remote::poke_word(0, n),
            },
            Step::Truncate(x) => Request::Truncate { proc: x.proc.clone(), name: x.map.clone(), pages: x.pages },
            Step::Punch(r) => Request::Punch(pages(&r.proc, &r.map)),
            Step::Msync(x) => Request::Msync(pages(&x.proc, &x.map), x.async_),
            Step::Uffd(x) => Request::UffdRegister { proc: x.proc.clone(), name: x.map.clone(), mode: x.mode },
            Step::UffdCopy(a) => {
                Request::UffdCopy { pages: pages(&a.proc, &a.map), value: write_value(a, n), tag: a.value.is_none() }
            }
            Step::UffdZeropage(x) => Request::UffdZeropage(pages(&x.proc, &x.map)),
            Step::UffdMove(x) => {
                Request::UffdMove { pages: pages(&x.proc, &x.map), to: x.to.map.clone(), at: x.to.page }
            }
            Step::UffdWp(x) => Request::UffdWp(pages(&x.proc, &x.map), x.on),
            Step::Fsync(x) => Request::Fsync { proc: x.proc.clone(), name: x.map.clone(), page: x.page.unwrap_or(0) },
            Step::Sync(_) => Request::Sync,
            Step::DropCaches(_) => Request::DropCaches,
        })
    }

    /// The range of pages the request names, if it names one.
    pub fn pages(&self) -> Option<&Pages> {
        match self {
            Request::Munmap(p)
            | Request::Mprotect(p, _)
            | Request::Madvise(p, _)
            | Request::Write { pages: p, .. }
            | Request::Read(p)
            | Request::Split(p)
            | Request::Migrate(p, _)
            | Request::Mlock(p, _)
            | Request::Munlock(p)
            | Request::Pin(p, _)
            | Request::Remote { pages: p, .. } => Some(p),
            Request::Punch(p) => Some(p),
            Request::Msync(p, _) => Some(p),
            Request::UffdCopy { pages: p, .. } | Request::UffdZeropage(p) | Request::UffdMove { pages: p, .. } => {
                Some(p)
            }
            Request::UffdWp(p, _) => Some(p),
            _ => None,
        }
    }

    pub fn op(&self) -> Op {
        match self {
            Request::Mmap { .. } => Op::Mmap,
            Request::Munmap(_) => Op::Munmap,
            Request::Mprotect(..) => Op::Mprotect,
            Request::Mremap { .. } => Op::Mremap,
            Request::Madvise(..) => Op::Madvise,
            Request::Write { .. } => Op::Write,
            Request::Read(_) => Op::Read,
            Request::Fork { .. } => Op::Fork,
            Request::Exit { .. } => Op::Exit,
            Request::Findpage { .. } => Op::Findpage,
            Request::Findtask { .. } => Op::Findtask,
            Request::Poke { .. } => Op::Poke,
            Request::Ksm { .. } => Op::Ksm,
            Request::Split(_) => Op::Split,
            Request::Migrate(..) => Op::Migrate,
            Request::Compact => Op::Compact,
            Request::Reclaim { .. } => Op::Reclaim,
            Request::Mlock(..) => Op::Mlock,
            Request::Munlock(_) => Op::Munlock,
            Request::Mlockall { .. } => Op::Mlockall,
            Request::Munlockall { .. } => Op::Munlockall,
            Request::Pin(..) => Op::Pin,
            Request::Unpin { .. } => Op::Unpin,
            Request::Remote { .. } => Op::Remote,
            Request::Truncate { .. } => Op::Truncate,
            Request::Punch(_) => Op::Punch,
            Request::Msync(..) => Op::Msync,
            Request::Fsync { .. } => Op::Fsync,
            Request::Sync => Op::Sync,
            Request::DropCaches => Op::DropCaches,
            Request::UffdRegister { .. }
            | Request::UffdCopy { .. }
            | Request::UffdZeropage(_)
            | Request::UffdMove { .. }
            | Request::UffdWp(..) => Op::Uffd,
        }
    }

    /// The request as the wire has it.
    pub fn wire(&self) -> Wire {
        let w = Wire::new(self.op());
        let flag = |on: bool| on as u8;
        match self {
            Request::Mmap { proc, name, pages, backing, share, huge, locked, at, align } => {
                let w = w.arg("proc", proc).arg("name", name).arg("pages", pages);
                let mut w = w.arg("backing", backing.wire()).arg("share", share.wire());
                if let Some(h) = huge {
                    w = w.arg("huge", flag(*h));
                }
                if let Some((map, offset)) = at {
                    w = w.arg("at", offset).arg("at_map", map);
                }
                if *locked {
                    w = w.arg("locked", 1);
                }
                match align {
                    Some(a) => w.arg("align", a),
                    None => w,
                }
            }
            Request::Munmap(p) | Request::Read(p) | Request::Split(p) | Request::Munlock(p) | Request::Punch(p) => {
                w.pages(p)
            }
            Request::Mprotect(p, prot) => w.pages(p).arg("prot", prot.wire()),
            Request::Mremap { proc, name, pages, move_, dontunmap, range, to, as_ } => {
                let mut w = w.arg("proc", proc).arg("name", name).arg("pages", pages);
                if *move_ {
                    w = w.arg("move", 1);
                }
                if *dontunmap {
                    w = w.arg("dontunmap", 1);
                }
                if let Some((page, count)) = range {
                    w = w.arg("page", page).arg("count", count);
                }
                if let Some(t) = to {
                    w = w.arg("to", t.offset).arg("to_map", &t.map);
                    if t.over {
                        w = w.arg("over", 1);
                    }
                    if t.into {
                        w = w.arg("into", 1);
                    }
                }
                match as_ {
                    Some(a) => w.arg("as", a),
                    None => w,
                }
            }
            Request::Madvise(p, advice) => w.pages(p).arg("advice", advice.wire()),
            Request::Write { pages, value, tag } => {
                let w = w.pages(pages).arg("value", value);
                if *tag {
                    w.arg("tag", 1)
                } else {
                    w
                }
            }
            Request::Fork { proc, child } => w.arg("proc", proc).arg("child", child),
            Request::Exit { proc } | Request::Findtask { proc } | Request::Munlockall { proc } => w.arg("proc", proc),
            Request::Pin(p, kind) => w.pages(p).arg("kind", kind.wire()),
            Request::Unpin { proc, kind } => w.arg("proc", proc).arg("kind", kind.wire()),
            Request::Remote { pages, kind, value, tag, word } => match kind {
                RemoteKind::Readv => w.pages(pages).arg("kind", kind.wire()),
                RemoteKind::Writev => {
                    w.pages(pages).arg("kind", kind.wire()).arg("value", value).arg("tag", flag(*tag))
                }
                RemoteKind::Ptrace => w.pages(pages).arg("kind", kind.wire()).arg("word", format!("0x{word:x}")),
            },
            Request::Findpage { proc, name, page } | Request::Poke { proc, name, page } => {
                w.arg("proc", proc).arg("name", name).arg("page", page)
            }
            Request::Ksm { timeout_ms } => w.arg("timeout_ms", timeout_ms),
            Request::Migrate(p, node) => match node {
                Some(node) => w.pages(p).arg("node", node),
                None => w.pages(p),
            },
            Request::Compact => w,
            Request::Reclaim { pages } => w.arg("pages", pages),
            Request::Mlock(p, onfault) => w.pages(p).arg("onfault", flag(*onfault)),
            Request::Mlockall { proc, current, future, onfault } => w
                .arg("proc", proc)
                .arg("current", flag(*current))
                .arg("future", flag(*future))
                .arg("onfault", flag(*onfault)),
            Request::Truncate { proc, name, pages } => w.arg("proc", proc).arg("name", name).arg("pages", pages),
            Request::Msync(p, async_) => w.pages(p).arg("async", flag(*async_)),
            Request::Fsync { proc, name, page } => w.arg("proc", proc).arg("name", name).arg("page", page),
            Request::Sync | Request::DropCaches => w,
            Request::UffdRegister { proc, name, mode } => {
                w.arg("proc", proc).arg("name", name).arg("kind", "register").arg("mode", mode.wire())
            }
            Request::UffdCopy { pages, value, tag } => {
                w.pages(pages).arg("kind", "copy").arg("value", value).arg("tag", flag(*tag))
            }
            Request::UffdZeropage(p) => w.pages(p).arg("kind", "zeropage"),
            Request::UffdMove { pages, to, at } => w.pages(pages).arg("kind", "move").arg("to", to).arg("at", at),
            Request::UffdWp(p, on) => w.pages(p).arg("kind", "wp").arg("on", flag(*on)),
        }
    }
}

/// An op and its `key=value` arguments, in the order they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub op: Op,
    args: Vec<(&'static str, String)>,
}

impl Wire {
    pub fn new(op: Op) -> Wire {
        Wire { op, args: Vec::new() }
    }

    /// One more argument; the op must take the key (ops.rs).
    pub fn arg(mut self, key: &'static str, value: impl std::fmt::Display) -> Wire {
        debug_assert!(self.op.takes(key), "{} takes no {key}", self.op);
        self.args.push((key, value.to_string()));
        self
    }

    fn pages(self, p: &Pages) -> Wire {
        self.arg("proc", &p.proc).arg("name", &p.name).arg("page", p.page).arg("count", p.count)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.args.iter().map(|(k, _)| *k)
    }

    /// The arguments as the request line carries them: `key=value` words.
    pub fn args(&self) -> String {
        let words: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        words.join(" ")
    }
}

/// `findpages`: the walks of `slots` (process, map, page) in one request; slot `i`'s
/// walk is request id `base + i`, which the sender reserved.
pub fn findpages<'a>(base: u64, slots: impl IntoIterator<Item = &'a (String, String, u64)>) -> Wire {
    let list: Vec<String> = slots.into_iter().map(|(p, m, i)| format!("{p}:{m}:{i}")).collect();
    Wire::new(Op::Findpages).arg("base", base).arg("slots", list.join(","))
}

impl std::fmt::Display for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.args() {
            a if a.is_empty() => write!(f, "{}", self.op),
            a => write!(f, "{} {a}", self.op),
        }
    }
}
