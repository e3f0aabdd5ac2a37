//! Trouble stays where it happened: a kernel that cannot boot errors its own scenarios
//! and no other kernel's, and a WARN in one scenario fails that scenario alone.

use super::Pools;
use libtest_mimic::Trial;
use rmapcheck::check::outcome::Status;
use rmapcheck::image::kernel::Kernel;
use rmapcheck::image::prepare;
use std::process::Command;

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    vec![boot_failure(key, pools), planted_warn(key, pools)]
}

/// The byte that makes rmapcheck.ko WARN (its `plant_warn` parameter) when a walked page
/// starts with it; no committed scenario writes it.
const WARN_BYTE: u8 = 0xee;

fn planted_warn(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::planted_warn_fails_one_scenario::{key}"), move || {
        pools().get(&key)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let warns = dir.path().join("b_warns.yaml");
        let text = format!(
            "name: b_warns\nabout: walks a page that starts with the planted byte\nsteps:\n  \
             - mmap: {{ name: a, pages: 1, backing: anon, share: private }}\n  \
             - write: {{ map: a, page: 0, value: {WARN_BYTE} }}\n  \
             - findpage: {{ map: a, page: 0 }}\n"
        );
        std::fs::write(&warns, text).map_err(|e| e.to_string())?;
        let scenarios = rmapcheck::project_root().join("scenarios");
        let results = dir.path().join("results.json");
        let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
            .args(["run", "--kernel", &key, "--module-param", &format!("plant_warn={WARN_BYTE}")])
            .arg("--results")
            .arg(&results)
            .arg(scenarios.join("seed_mmap_fork.yaml"))
            .arg(&warns)
            .arg(scenarios.join("cow_child_writes.yaml"))
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let outcomes = rmapcheck::report::results::read(&results).map_err(|e| format!("{e:#}\n{stderr}"))?;
        let status: Vec<(&str, Status)> = outcomes.iter().map(|o| (o.scenario.as_str(), o.status)).collect();
        let want = [("seed_mmap_fork", Status::Pass), ("b_warns", Status::Fail), ("cow_child_writes", Status::Pass)];
        if status != want {
            return Err(format!("statuses {status:?}, want {want:?}\n{stderr}").into());
        }
        let warned = &outcomes[1];
        let Some(warning) = warned.splats.iter().find(|s| s.line.starts_with("WARNING: ")) else {
            return Err(format!("the failing scenario does not carry the WARNING: {:?}", warned.problems).into());
        };
        // Its stack comes along: the module's frame that warned, then the syscall path.
        if !warning.trace.iter().any(|f| f.contains("rmc_findpage+")) || warning.trace.len() < 4 {
            return Err(format!("the WARNING's stack is missing or short: {:?}", warning.trace).into());
        }
        if out.status.code() != Some(1) {
            return Err(format!("exit {:?}, want 1\n{stderr}", out.status.code()).into());
        }
        Ok(())
    })
}

/// A user's kernel that cannot boot errors its own scenarios and no other kernel's: the
/// first with its boot's failure, the second at once with "an earlier boot failed".
/// Where the kernel's tree cannot even build a guest for a user's Image (a headers tree
/// without the modules the kernel needs, as Debian's are), both error with that
/// preparation error instead, exactly; the test prepares the same kernel first to know
/// which.
fn boot_failure(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::boot_failure_isolated::{key}"), move || {
        let pool = pools().get(&key)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // An Image larger than the guest's RAM (sparse, so it costs no disk): QEMU
        // refuses it within a second, so the boot fails without waiting out a deadline.
        let image = dir.path().join("Image");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(520 << 20).map_err(|e| e.to_string())?;
        let build = &pool.prepared.kernel.build_dir;
        let custom = Kernel::custom(&image, build, None).map_err(|e| format!("{e:#}"))?;
        let unbootable = custom.key.clone();
        let unprepared = prepare::prepare_kernel(custom, &()).err().map(|e| format!("{e:#}"));
        let results = dir.path().join("results.json");
        let scenarios = rmapcheck::project_root().join("scenarios");
        let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
            .args(["run", "--kernel", &key, "--kernel-image"])
            .arg(&image)
            .arg("--kernel-build")
            .arg(build)
            .arg("--results")
            .arg(&results)
            .arg(scenarios.join("seed_mmap_fork.yaml"))
            .arg(scenarios.join("cow_child_writes.yaml"))
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let outcomes = rmapcheck::report::results::read(&results).map_err(|e| format!("{e:#}\n{stderr}"))?;
        let (good, bad): (Vec<_>, Vec<_>) = outcomes.iter().partition(|o| o.kernel == key);
        if good.len() != 2 || good.iter().any(|o| o.status != Status::Pass) {
            return Err(format!("{key} did not pass both scenarios: {good:?}\n{stderr}").into());
        }
        if bad.len() != 2 || bad.iter().any(|o| o.status != Status::Error || o.kernel != unbootable) {
            return Err(format!("{unbootable} did not error both scenarios: {bad:?}\n{stderr}").into());
        }
        let why: Vec<String> = bad.iter().map(|o| o.problems[0].message()).collect();
        if let Some(e) = unprepared {
            let want = format!("kernel {unbootable} is not ready: {e}");
            if why != [want.clone(), want.clone()] {
                return Err(format!("want both errors to be '{want}', got {why:?}").into());
            }
        } else {
            // The first scenario's boot fails; the second does not wait for another.
            let booted = "guest fault (boot): boot failed: ";
            let earlier = format!("{booted}an earlier boot of {unbootable} failed: ");
            if !why[0].starts_with(booted) || why[0].starts_with(&earlier) {
                return Err(format!("the first scenario did not fail on its own boot: {}", why[0]).into());
            }
            if !why[1].starts_with(&earlier) {
                return Err(format!("the second scenario did not fail on the earlier boot: {}", why[1]).into());
            }
        }
        // A kernel that cannot be prepared or booted is the environment's failure.
        if out.status.code() != Some(3) {
            return Err(format!("exit {:?}, want 3\n{stderr}", out.status.code()).into());
        }
        Ok(())
    })
}
