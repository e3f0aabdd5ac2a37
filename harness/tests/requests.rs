//! Every request the runner sends for the steps of each shipped scenario, at 4 and 16 KiB
//! pages, against tests/fixtures/requests/<scenario>.txt: the wire text must not change.
//! Every step is taken to succeed. `RMAPCHECK_WRITE_REQUESTS=1` writes the files.

use rmapcheck::check::model;
use rmapcheck::scenario::{self, span, Backing, Share, Step};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The runner's requests for `steps`, as it renders them today (copied from runner.rs).
fn rendered(steps: &[Step]) -> Vec<String> {
    let mut sizes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let size = |sizes: &BTreeMap<(String, String), u64>, p: &str, m: &str| {
        sizes.get(&(p.to_string(), m.to_string())).copied().unwrap_or(0)
    };
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let (op, args): (&str, String) = match step {
            Step::Mmap(m) => {
                let backing = match m.backing {
                    Backing::Anon => "anon",
                    Backing::DevZero => "devzero",
                    Backing::Memfd => "memfd",
                    Backing::File => "file",
                };
                let share = if m.share == Share::Shared { "shared" } else { "private" };
                let mut huge = m.huge.map(|h| format!(" huge={}", h as u8)).unwrap_or_default();
                if m.locked {
                    huge.push_str(" locked=1");
                }
                sizes.insert((m.proc.clone(), m.name.clone()), m.pages);
                (
                    "mmap",
                    format!("proc={} name={} pages={} backing={backing} share={share}{huge}", m.proc, m.name, m.pages),
                )
            }
            Step::Munmap(r) => {
                let (page, count) = match r.page {
                    Some(p) => (p, r.pages.unwrap_or(1)),
                    None => (0, r.pages.unwrap_or(size(&sizes, &r.proc, &r.map))),
                };
                ("munmap", format!("proc={} name={} page={page} count={count}", r.proc, r.map))
            }
            Step::Mprotect(x) => {
                let count = x.pages.unwrap_or(size(&sizes, &x.proc, &x.map).saturating_sub(x.page));
                let prot = format!("{:?}", x.prot).to_lowercase();
                ("mprotect", format!("proc={} name={} page={} count={count} prot={prot}", x.proc, x.map, x.page))
            }
            Step::Mremap(x) => {
                let mut args = format!("proc={} name={} pages={}", x.proc, x.map, x.pages);
                if x.move_ || x.dontunmap {
                    args.push_str(" move=1");
                }
                if x.dontunmap {
                    args.push_str(" dontunmap=1");
                }
                sizes.insert((x.proc.clone(), x.map.clone()), x.pages);
                ("mremap", args)
            }
            Step::Madvise(x) => {
                let count = x.pages.unwrap_or(size(&sizes, &x.proc, &x.map).saturating_sub(x.page));
                (
                    "madvise",
                    format!("proc={} name={} page={} count={count} advice={}", x.proc, x.map, x.page, x.advice.wire()),
                )
            }
            Step::Write(a) | Step::Read(a) => {
                let op = step.op();
                let mut args = format!("proc={} name={} page={} count={}", a.proc, a.map, a.page, a.pages);
                if op == "write" {
                    args.push_str(&format!(" value={}", model::write_value(a, n)));
                    if a.value.is_none() {
                        args.push_str(" tag=1");
                    }
                }
                (op, args)
            }
            Step::Poke(r) => ("poke", format!("proc={} name={} page={}", r.proc, r.map, r.page)),
            Step::Fork(f) => {
                let inherited: Vec<_> =
                    sizes.iter().filter(|((p, _), _)| *p == f.proc).map(|((_, m), s)| (m.clone(), *s)).collect();
                for (m, s) in inherited {
                    sizes.insert((f.child.clone(), m), s);
                }
                ("fork", format!("proc={} child={}", f.proc, f.child))
            }
            Step::Exit(p) => ("exit", format!("proc={}", p.proc)),
            Step::Findpage(r) => ("findpage", format!("proc={} name={} page={}", r.proc, r.map, r.page)),
            Step::Findtask(p) => ("findtask", format!("proc={}", p.proc)),
            Step::Check(_) => continue,
            Step::Ksm(k) => ("ksm", format!("timeout_ms={}", k.timeout_ms.unwrap_or(2000))),
            Step::Split(r) => {
                let (page, count) = span(r.page, r.pages, size(&sizes, &r.proc, &r.map));
                ("split", format!("proc={} name={} page={page} count={count}", r.proc, r.map))
            }
            Step::Migrate(x) => {
                let (page, count) = span(x.page, x.pages, size(&sizes, &x.proc, &x.map));
                let mut args = format!("proc={} name={} page={page} count={count}", x.proc, x.map);
                if let Some(node) = x.node {
                    args.push_str(&format!(" node={node}"));
                }
                ("migrate", args)
            }
            Step::Compact(_) => ("compact", String::new()),
            Step::Mlock(x) => {
                let (page, count) = span(x.page, x.pages, size(&sizes, &x.proc, &x.map));
                (
                    "mlock",
                    format!("proc={} name={} page={page} count={count} onfault={}", x.proc, x.map, x.onfault as u8),
                )
            }
            Step::Munlock(r) => {
                let (page, count) = span(r.page, r.pages, size(&sizes, &r.proc, &r.map));
                ("munlock", format!("proc={} name={} page={page} count={count}", r.proc, r.map))
            }
            Step::Mlockall(x) => (
                "mlockall",
                format!(
                    "proc={} current={} future={} onfault={}",
                    x.proc, x.current as u8, x.future as u8, x.onfault as u8
                ),
            ),
            Step::Munlockall(p) => ("munlockall", format!("proc={}", p.proc)),
        };
        out.push(format!("{n} {op} {args}"));
    }
    out
}

#[test]
fn every_shipped_scenario_sends_the_requests_it_always_sent() {
    let root = rmapcheck::project_root();
    let fixtures = root.join("harness/tests/fixtures/requests");
    let write = std::env::var_os("RMAPCHECK_WRITE_REQUESTS").is_some();
    let files = scenario::discover(&[root.join("scenarios")]).unwrap();
    assert!(files.len() >= 50, "only {} scenarios", files.len());
    let mut differ = Vec::new();
    for file in files {
        let loaded = scenario::load(&file).unwrap();
        let mut text = String::new();
        for page_size in [4096, 16384] {
            let s = loaded.scenario.for_page_size(page_size).unwrap();
            text.push_str(&format!("# {} KiB pages\n", page_size / 1024));
            for line in rendered(&s.steps) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let want: PathBuf = fixtures.join(format!("{}.txt", loaded.scenario.name));
        if write {
            std::fs::write(&want, &text).unwrap();
        } else if std::fs::read_to_string(&want).ok().as_deref() != Some(text.as_str()) {
            differ.push(loaded.scenario.name.clone());
        }
    }
    assert!(differ.is_empty(), "requests changed for {differ:?}");
}
