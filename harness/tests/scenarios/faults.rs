//! Fault injection: a kernel panic, a hung agent, a crashed agent, and QEMU killed from
//! outside. Each must be reported with the right cause within its deadline, keep the
//! console log, leave no process behind, and leave the pool able to run the next
//! scenario.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::run::pool::Pool;
use rmapcheck::vm::guest::{Fault, Guest};
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still show its stat.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Inject with `inject`, then expect a fault of `cause` from a ping within `deadline`.
fn expect_fault(
    pool: &Pool,
    inject: impl FnOnce(&mut Guest) -> Result<(), Failed>,
    deadline: Duration,
    cause: &str,
    console_has: Option<&str>,
) -> Result<(), Failed> {
    let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
    let pid = g.pid();
    let log = g.console_log();
    inject(&mut g)?;
    let started = Instant::now();
    let fault = match g.request_within("ping", "", deadline) {
        Ok(r) => return Err(format!("the guest still answered: {r:?}").into()),
        Err(f) => f,
    };
    let took = started.elapsed();
    if fault.cause() != cause {
        return Err(format!("cause {} (want {cause}): {fault}", fault.cause()).into());
    }
    // Detection may take the deadline plus the short wait for QEMU to exit.
    if took > deadline + Duration::from_secs(2) {
        return Err(format!("took {took:?} to notice, deadline {deadline:?}").into());
    }
    drop(g);
    if alive(pid) {
        return Err(format!("qemu {pid} is still running after its guard was dropped").into());
    }
    let console = std::fs::read_to_string(&log).map_err(|e| format!("console log {}: {e}", log.display()))?;
    match console_has {
        Some(want) if !console.contains(want) => {
            return Err(format!("console log lacks '{want}':\n{console}").into());
        }
        // A hang or a kill leaves nothing on the console; the fault must name the
        // request that went unanswered.
        None if !fault.to_string().contains("'ping'") => {
            return Err(format!("the fault does not name the unanswered request: {fault}").into());
        }
        _ => {}
    }
    if let Fault::Died { console, .. } | Fault::Hang { console, .. } = &fault {
        if console.is_empty() && cause != "died" {
            return Err("the fault carries no console tail".into());
        }
    }
    // The next scenario runs on a fresh guest.
    let seed = rmapcheck::scenario::load(&rmapcheck::project_root().join("scenarios/seed_mmap_fork.yaml"))
        .map_err(|e| Failed::from(e.to_string()))?;
    let outcome = pool.play(&seed).outcome;
    if outcome.status != rmapcheck::check::outcome::Status::Pass {
        return Err(format!("the next scenario failed: {:?}", outcome.problems).into());
    }
    Ok(())
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let k = key.to_string();
    let send = |op: &'static str| move |g: &mut Guest| g.send_only(op).map_err(|f| Failed::from(f.to_string()));
    vec![
        {
            let k = k.clone();
            Trial::test(format!("vm::fault_panic::{k}"), move || {
                let pool = pools().get(&k)?;
                expect_fault(&pool, send("panic"), Duration::from_secs(20), "panic", Some("Kernel panic"))
            })
        },
        {
            let k = k.clone();
            Trial::test(format!("vm::fault_agent_crash::{k}"), move || {
                let pool = pools().get(&k)?;
                expect_fault(&pool, send("crash"), Duration::from_secs(20), "panic", Some("Attempted to kill init"))
            })
        },
        {
            let k = k.clone();
            Trial::test(format!("vm::fault_hang::{k}"), move || {
                let pool = pools().get(&k)?;
                expect_fault(&pool, send("hang"), Duration::from_secs(2), "hang", None)
            })
        },
        Trial::test(format!("vm::fault_qemu_sigkill::{k}"), move || {
            let pool = pools().get(&k)?;
            let kill = |g: &mut Guest| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(g.pid() as i32), nix::sys::signal::Signal::SIGKILL)
                    .map_err(|e| Failed::from(e.to_string()))
            };
            expect_fault(&pool, kill, Duration::from_secs(20), "died", None)
        }),
    ]
}
