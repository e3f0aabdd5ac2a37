//! VM checks of restoring a saved guest (vmstate): a restored guest must be as good as a cold one, and a
//! broken state file must fail fast with a reason (the pool then boots cold).

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::expect;
use rmapcheck::check::outcome::Status;
use rmapcheck::run::runner;
use rmapcheck::vm::guest::{Fault, Guest};
use rmapcheck::vm::{qemu, vmstate};
use rmapcheck::{report, scenario};
use std::path::PathBuf;
use std::time::Instant;

fn failed(f: Fault) -> Failed {
    Failed::from(f.to_string())
}

fn workdir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("restore-{}", std::process::id())).join(name)
}

/// The seed scenario's snapshot text on `g`; it must pass.
fn seed_text(g: &mut Guest, seed: &scenario::Loaded) -> Result<String, Failed> {
    let o = runner::run(g, seed).map_err(failed)?;
    let text = report::snapshot(&o);
    if o.status != Status::Pass {
        return Err(format!("seed scenario {:?} on a guest:\n{text}", o.status).into());
    }
    Ok(text)
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let k1 = key.to_string();
    let k2 = key.to_string();
    vec![
        Trial::test(format!("vm::restore_matches_cold::{k1}"), move || {
            let key = k1;
            let pool = pools().get(&key)?;
            let seed = scenario::load(&rmapcheck::project_root().join("scenarios/seed_mmap_fork.yaml"))
                .map_err(|e| Failed::from(e.to_string()))?;
            let template = qemu::Config::new(&pool.prepared.kernel.image, &pool.prepared.initrd, &workdir("cold"));
            let mut cold = Guest::start(&key, &template).map_err(failed)?;
            let want = seed_text(&mut cold, &seed)?;
            let saved = vmstate::ensure(&key, &template).map_err(|e| Failed::from(format!("{e:#}")))?;
            if saved.info != cold.info {
                return Err(format!("READY differs: saved {:?}, cold {:?}", saved.info, cold.info).into());
            }
            cold.shutdown();
            // Two guests from one state file: each must match the cold result, also on a
            // second run in the same guest (reset after restore works).
            for i in 0..2 {
                let mut g = vmstate::restore(&saved, &template, &workdir(&format!("restored{i}"))).map_err(failed)?;
                for run in 0..2 {
                    let got = seed_text(&mut g, &seed)?;
                    if got != want {
                        return Err(format!(
                            "restored guest {i}, run {run} differs from a cold boot:\n{}",
                            expect::diff(&want, &got)
                        )
                        .into());
                    }
                }
                let splats = g.splats_since(0);
                if !splats.is_empty() {
                    return Err(format!("restored guest {i} splatted: {splats:?}").into());
                }
                g.shutdown();
            }
            Ok(())
        }),
        Trial::test(format!("vm::restore_bad_state_fails_fast::{k2}"), move || {
            let key = k2;
            let pool = pools().get(&key)?;
            let template = qemu::Config::new(&pool.prepared.kernel.image, &pool.prepared.initrd, &workdir("bad"));
            let good = vmstate::ensure(&key, &template).map_err(|e| Failed::from(format!("{e:#}")))?;
            // A copy cut short: QEMU must refuse it, and restore must say so, long before
            // the boot deadline.
            let dir = workdir("bad-state");
            std::fs::create_dir_all(&dir).map_err(|e| Failed::from(e.to_string()))?;
            let bytes = std::fs::read(good.state()).map_err(|e| Failed::from(e.to_string()))?;
            std::fs::write(dir.join("state"), &bytes[..bytes.len() / 3]).map_err(|e| Failed::from(e.to_string()))?;
            std::fs::copy(good.console(), dir.join("console.log")).map_err(|e| Failed::from(e.to_string()))?;
            let bad = vmstate::Saved { dir: dir.clone(), ..good };
            let started = Instant::now();
            match vmstate::restore(&bad, &template, &workdir("bad-guest")) {
                Ok(_) => Err("a truncated state file restored".into()),
                Err(Fault::Boot { why, .. }) if started.elapsed().as_secs() < 20 => {
                    if why.contains("qemu exited") {
                        Ok(())
                    } else {
                        Err(format!("the fault does not name QEMU's exit: {why}").into())
                    }
                }
                Err(f) => Err(format!("wrong or slow fault after {:?}: {f}", started.elapsed()).into()),
            }
        }),
    ]
}
