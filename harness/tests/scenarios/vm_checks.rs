//! VM checks of the module itself, beyond scenarios: hostile input to /proc/mtest.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::dmesg;
use rmapcheck::vm::guest::Guest;
use rmapcheck::vm::qemu;

/// One request to /proc/mtest and what must come back: `Ok(bytes)` or `Err(errno)`.
struct Hostile {
    what: &'static str,
    args: String,
    want: Result<(), i32>,
}

const EINVAL: i32 = 22;
const ESRCH: i32 = 3;
const EFAULT: i32 = 14;
const E2BIG: i32 = 7;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let storm = storm_trial(key, pools);
    let race = race_trial(key, pools);
    let key = key.to_string();
    let hostile = Trial::test(format!("vm::mtest_hostile::{key}"), move || {
        let pool = pools().get(&key)?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let req = |g: &mut Guest, op: &str, args: &str| g.request(op, args).map_err(|f| Failed::from(f.to_string()));
        let mark = g.kmsg_mark();
        req(&mut g, "reset", "")?;
        req(&mut g, "mmap", "proc=p0 name=a pages=2 backing=anon share=private")?;
        req(&mut g, "write", "proc=p0 name=a page=0 value=7")?;
        let pm = req(&mut g, "pagemap", "")?;
        let pid = pm.data.first().and_then(|d| d.get("pid")).cloned().ok_or("no pagemap")?;
        let addr = pm.data.first().and_then(|d| d.get("addr")).cloned().ok_or("no addr")?;
        let unmapped = "0x10000";
        let cases = vec![
            Hostile {
                what: "a good findpage",
                args: format!("hex={}", hex(&format!("findpage {pid} {addr}"))),
                want: Ok(()),
            },
            Hostile { what: "non-numeric pid", args: format!("hex={}", hex("findtaskabc")), want: Err(EINVAL) },
            Hostile {
                what: "a pid that does not exist",
                args: format!("hex={}", hex("findpage 999999 0x1000")),
                want: Err(ESRCH),
            },
            Hostile {
                what: "a kernel address",
                args: format!("hex={}", hex(&format!("findpage {pid} 0xffff000000000000"))),
                want: Err(EFAULT),
            },
            Hostile {
                what: "an unmapped address",
                args: format!("hex={}", hex(&format!("findpage {pid} {unmapped}"))),
                want: Err(EFAULT),
            },
            Hostile { what: "garbage bytes", args: "hex=00ff13377f80c3".into(), want: Err(EINVAL) },
            Hostile { what: "an empty command", args: format!("hex={}", hex("\n")), want: Err(EINVAL) },
            Hostile { what: "1 MiB of bytes", args: "fill=1048576 byte=65".into(), want: Err(E2BIG) },
            Hostile {
                what: "findpage0x without findtask",
                args: format!("hex={}", hex("findpage0x1000")),
                want: Err(ESRCH),
            },
        ];
        let mut wrong = Vec::new();
        for c in &cases {
            let reply = req(&mut g, "mtest", &c.args)?;
            let got = if reply.ok { Ok(()) } else { Err(reply.errno().unwrap_or(-1)) };
            if got != c.want {
                wrong.push(format!("{}: want {:?}, got {:?} ({:?})", c.what, c.want, got, reply.fields));
            }
            // Every case's write reaches the module, which ends every command, good or
            // bad, with one end line carrying the write's answer. The agent forwards
            // kmsg before its reply, so the line is in this reply.
            let ends: Vec<i32> = reply
                .kmsg
                .iter()
                .filter_map(|k| dmesg::parse_module_line(&dmesg::parse_record(k)?.text))
                .filter_map(|l| match l {
                    Ok(dmesg::ModuleLine::End { rc, .. }) => Some(rc),
                    _ => None,
                })
                .collect();
            let want_rc = c.want.err().map_or(0, |e| -e);
            if ends != [want_rc] {
                wrong.push(format!("{}: want one end line with rc={want_rc}, got rc={ends:?}", c.what));
            }
        }
        let splats = g.splats_since(mark);
        if !splats.is_empty() {
            wrong.push(format!("splats: {splats:?}"));
        }
        if wrong.is_empty() {
            pool.give(g);
            Ok(())
        } else {
            Err(wrong.join("\n").into())
        }
    });
    vec![hostile, storm, race]
}

/// Threads write hostile commands to /proc/mtest while churn processes mmap, write,
/// fork, munmap, mremap and exit under them: every write gets a byte count or an
/// expected errno, and the kernel gains no taint and logs no splat.
pub fn storm_trial(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::mtest_storm::{key}"), move || {
        let pool = pools().get(&key)?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let mark = g.kmsg_mark();
        let (threads, writes) = (4u64, 300u64);
        let reply = g
            .request_within(
                "storm",
                &format!("threads={threads} writes={writes} churn=2 seed=7"),
                rmapcheck::vm::guest::scaled(std::time::Duration::from_secs(120)),
            )
            .map_err(|f| Failed::from(f.to_string()))?;
        eprintln!("storm on {key}: {:?}", reply.fields);
        let num = |k: &str| reply.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
        let mut wrong = Vec::new();
        if !reply.ok {
            wrong.push(format!("storm failed: {:?}", reply.fields));
        }
        if num("writes") != threads * writes {
            wrong.push(format!("{} writes, want {}", num("writes"), threads * writes));
        }
        if num("unexpected") != 0 {
            wrong.push(format!(
                "{} writes got an unexpected answer (first errno {})",
                num("unexpected"),
                reply.get("first_bad").unwrap_or("?")
            ));
        }
        let errnos: u64 = reply
            .fields
            .iter()
            .filter(|(k, _)| k.starts_with('e') && k[1..].parse::<u32>().is_ok())
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum();
        if num("ok") + errnos != threads * writes {
            wrong.push(format!("ok {} + errors {errnos} != {}", num("ok"), threads * writes));
        }
        untouched_and_alive(&mut g, mark, &reply, "storm", wrong)?;
        pool.give(g);
        Ok(())
    })
}

/// Rounds of the walk-against-exit race: the KASAN kernel gets the full proof (10,000),
/// the others a cheaper sample. `RMAPCHECK_RACE_ROUNDS` overrides both.
fn race_rounds(key: &str) -> u64 {
    let default = if key.contains("kasan") { 10_000 } else { 1_000 };
    std::env::var("RMAPCHECK_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The vCPUs of the race's guest: with one, the child's unmap or exit waits for the walk
/// to finish (or the walk for it), and the two never run at the same time.
const RACE_CPUS: u32 = 2;

/// The last mapper of a page unmaps it or exits while the module walks it, round after
/// round, on a guest of its own with [`RACE_CPUS`] vCPUs: the two must really overlap
/// (the agent counts the rounds whose walk ran while the unmap or exit was in flight),
/// and the walk keeps the anon_vma alive, so no round may splat (on the KASAN kernel, a
/// use-after-free would), taint, or get an errno other than "gone".
pub fn race_trial(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::walk_races_last_mapper::{key}"), move || {
        let pool = pools().get(&key)?;
        let workdir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("race-{}", std::process::id()))
            .join(&key);
        let mut config = qemu::Config::new(&pool.prepared.kernel.image, &pool.prepared.initrd, &workdir);
        config.cpus = RACE_CPUS;
        let mut g = Guest::start(&key, &config).map_err(|f| Failed::from(f.to_string()))?;
        let mark = g.kmsg_mark();
        let rounds = race_rounds(&key);
        let started = std::time::Instant::now();
        let reply = g
            .request_within(
                "race",
                &format!("rounds={rounds}"),
                rmapcheck::vm::guest::scaled(std::time::Duration::from_secs(600)),
            )
            .map_err(|f| Failed::from(f.to_string()))?;
        eprintln!("race on {key} in {:.1} s: {:?}", started.elapsed().as_secs_f64(), reply.fields);
        let num = |k: &str| reply.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
        let mut wrong = Vec::new();
        if !reply.ok || num("rounds") != rounds {
            wrong.push(format!("{} of {rounds} rounds ran: {:?}", num("rounds"), reply.fields));
        }
        if num("unexpected") != 0 {
            wrong.push(format!("{} walks got an unexpected errno (first {})", num("unexpected"), num("first_bad")));
        }
        if num("walked").checked_add(num("gone")) != Some(rounds) {
            wrong.push(format!("walked {} + gone {} != {rounds} rounds", num("walked"), num("gone")));
        }
        if num("overlaps") == 0 || num("overlaps") > rounds {
            wrong.push(format!(
                "{} of {rounds} walks overlapped the unmap or exit: the race was not run",
                reply.get("overlaps").unwrap_or("none")
            ));
        }
        let result = untouched_and_alive(&mut g, mark, &reply, "race", wrong);
        // A guest with more vCPUs than the pool's is not the pool's to reuse.
        g.shutdown();
        result
    })
}

/// The end of a load test: no new taint and no splat since `mark`, and the guest still
/// answers; else `wrong` (with those) fails the test.
fn untouched_and_alive(
    g: &mut Guest,
    mark: u64,
    reply: &rmapcheck::vm::protocol::Reply,
    what: &str,
    mut wrong: Vec<String>,
) -> Result<(), Failed> {
    if reply.get("tainted_before") != reply.get("tainted_after") {
        wrong.push(format!("taint went from {:?} to {:?}", reply.get("tainted_before"), reply.get("tainted_after")));
    }
    let splats = g.splats_since(mark);
    if !splats.is_empty() {
        wrong.push(format!("splats: {splats:?}"));
    }
    g.request("ping", "").map_err(|f| Failed::from(format!("the guest stopped answering after the {what}: {f}")))?;
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n").into())
    }
}
