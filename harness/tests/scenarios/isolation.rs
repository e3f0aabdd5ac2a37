//! One kernel's trouble stays with that kernel: `rmapcheck run` over a kernel that
//! cannot boot and a healthy one reports the first as errors and the second in full.

use super::Pools;
use libtest_mimic::Trial;
use rmapcheck::check::outcome::Status;
use std::process::Command;

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let key = key.to_string();
    vec![Trial::test(format!("vm::boot_failure_isolated::{key}"), move || {
        let pool = pools().get(&key)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // An Image larger than the guest's RAM (sparse, so it costs no disk): QEMU
        // refuses it within a second, so the boot fails without waiting out a deadline.
        let image = dir.path().join("Image");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(520 << 20).map_err(|e| e.to_string())?;
        let results = dir.path().join("results.json");
        let scenarios = rmapcheck::project_root().join("scenarios");
        let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
            .args(["run", "--kernel", &key, "--kernel-image"])
            .arg(&image)
            .arg("--kernel-build")
            .arg(&pool.prepared.kernel.build_dir)
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
        if bad.len() != 2 || bad.iter().any(|o| o.status != Status::Error) {
            return Err(format!("the unbootable kernel did not error both scenarios: {bad:?}\n{stderr}").into());
        }
        // The second scenario does not wait for another boot to fail.
        let why = &bad[1].problems[0].message;
        let booted_once = why.contains("an earlier boot") || why.contains("not ready");
        if !booted_once {
            return Err(format!("the second scenario tried its own boot: {why}").into());
        }
        // A boot failure is a failure of the run (1); a kernel that could not even be
        // prepared (a headers tree without the modules it needs) is the environment's (3).
        let want = if why.contains("not ready") { 3 } else { 1 };
        if out.status.code() != Some(want) {
            return Err(format!("exit {:?}, want {want}\n{stderr}", out.status.code()).into());
        }
        Ok(())
    })]
}
