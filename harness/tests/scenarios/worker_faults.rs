//! A worker that hangs in the kernel and one that dies, made on demand (`wtest`): the
//! agent must answer in time with where the worker waits or how it died, the host must
//! title them exactly, and the guest must still reset. Such a guest is not given back.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::dmesg;
use rmapcheck::check::worker;
use rmapcheck::vm::guest::Guest;
use rmapcheck::vm::protocol::Reply;
use std::time::Instant;

fn ask(g: &mut Guest, op: &str, args: &str) -> Result<Reply, Failed> {
    g.request(op, args).map_err(|f| Failed::from(format!("{op}: {f}")))
}

/// `wtest what=<what>` on p0: the title of the problem its refusal makes.
fn title_of(g: &mut Guest, what: &str) -> Result<String, Failed> {
    let reply = ask(g, "wtest", &format!("proc=p0 what={what}"))?;
    let log: Vec<String> = reply.kmsg.iter().filter_map(|k| dmesg::parse_record(k)).map(|r| r.text).collect();
    let kind = worker::problem(1, "wtest", &reply.fields, &log)
        .ok_or_else(|| format!("wtest {what}: not a worker failure: {:?}", reply.fields))?;
    Ok(kind.title())
}

/// After the failure the guest still resets and answers.
fn resets(g: &mut Guest) -> Result<(), Failed> {
    let reset = ask(g, "reset", "")?;
    if !reset.ok {
        return Err(format!("reset after the failure: {:?}", reset.fields).into());
    }
    Ok(())
}

/// `title` is exactly what `exact` says for kernel `key`, or on other kernels starts with
/// `prefix`.
fn check_title(key: &str, title: &str, exact: &[(&str, &str)], prefix: &str) -> Result<(), Failed> {
    match exact.iter().find(|(k, _)| *k == key) {
        Some((_, want)) if title != *want => Err(format!("title {title:?}, want {want:?}").into()),
        None if !title.starts_with(prefix) => Err(format!("title {title:?}, want one that starts {prefix:?}").into()),
        _ => Ok(()),
    }
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let k = key.to_string();
    vec![
        {
            let k = k.clone();
            Trial::test(format!("vm::worker_hang::{k}"), move || {
                let pool = pools().get(&k)?;
                let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
                let started = Instant::now();
                let title = title_of(&mut g, "hang")?;
                let took = started.elapsed();
                // Which frames the compiler kept differs by kernel; the wait does not.
                let exact = [
                    ("6.12", "wtest hung in handle_userfault ← do_anonymous_page ← __handle_mm_fault"),
                    // No CONFIG_STACKTRACE: the frames come from a sysrq-t dump.
                    ("6.12-debug", "wtest hung in handle_userfault ← do_pte_missing ← __handle_mm_fault"),
                ];
                check_title(&k, &title, &exact, "wtest hung in handle_userfault")?;
                // A hung worker answers nothing more, at once.
                let again = ask(&mut g, "mmap", "proc=p0 name=a pages=1 backing=anon share=private")?;
                if again.get("msg") != Some("worker-hung") || started.elapsed() > took * 2 {
                    return Err(format!("a later request to the hung worker: {:?}", again.fields).into());
                }
                resets(&mut g)
            })
        },
        Trial::test(format!("vm::worker_death::{k}"), move || {
            let pool = pools().get(&k)?;
            let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
            let title = title_of(&mut g, "die")?;
            // The kernel's words for the fault are checked exactly where they were captured.
            let segv = "wtest: the worker died of SIGSEGV (init[#]: unhandled exception: DABT (lower EL), ESR #, \
                        level # translation fault in init[#,#+#])";
            check_title(&k, &title, &[("6.12", segv), ("6.12-debug", segv)], "wtest: the worker died of SIGSEGV (")?;
            resets(&mut g)?;
            pool.give(g);
            Ok(())
        }),
    ]
}
