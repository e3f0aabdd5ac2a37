//! The `cargo test` entry for everything that needs a guest: one trial per scenario and
//! kernel (`<scenario>::<kernel>`), plus VM checks of the module (`vm::<check>::<kernel>`).
//!
//! Listing reads files only; guests boot on first use and are pooled per kernel.

use libtest_mimic::{Arguments, Failed, Trial};
use rmapcheck::image::kernels::{self, Manifest};
use rmapcheck::image::prepare;
use rmapcheck::run::pool::Pool;
use rmapcheck::signal;
use rmapcheck::{report, scenario};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

#[path = "scenarios/faults.rs"]
mod faults;
#[path = "scenarios/signals.rs"]
mod signals;
#[path = "scenarios/vm_checks.rs"]
mod vm_checks;
#[path = "scenarios/vm_restore.rs"]
mod vm_restore;
#[path = "scenarios/worker_faults.rs"]
mod worker_faults;

#[path = "scenarios/fuzz_selftest.rs"]
mod fuzz_selftest;

#[path = "scenarios/boot_walk.rs"]
mod boot_walk;

#[path = "scenarios/isolation.rs"]
mod isolation;

#[path = "scenarios/debugger.rs"]
mod debugger;

#[path = "scenarios/kcov.rs"]
mod kcov;

#[path = "scenarios/findings.rs"]
mod findings;

#[path = "scenarios/stack.rs"]
mod stack;

#[path = "scenarios/bisect.rs"]
mod bisect;

#[path = "scenarios/mutants.rs"]
mod mutants;

/// The kernels to test: `RMAPCHECK_KERNELS` (comma-separated), else the manifest's
/// `default` tag.
fn kernel_keys(manifest: &Manifest) -> Vec<String> {
    match std::env::var("RMAPCHECK_KERNELS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => manifest.tagged("default"),
    }
}

type PoolSlot = Arc<OnceLock<Result<Arc<Pool<'static>>, String>>>;

/// One pool per kernel, created (and the kernel prepared) on first use.
#[derive(Default)]
struct Pools {
    by_key: Mutex<HashMap<String, PoolSlot>>,
    /// Kernels whose preparation error a trial has shown already.
    reported: Mutex<HashSet<String>>,
}

impl Pools {
    fn get(&self, key: &str) -> Result<Arc<Pool<'static>>, Failed> {
        let slot = self.by_key.lock().unwrap().entry(key.to_string()).or_default().clone();
        slot.get_or_init(|| {
            let manifest = Manifest::load().map_err(|e| format!("{e:#}"))?;
            let prepared = prepare::prepare(&manifest, key, &()).map_err(|e| {
                format!(
                    "kernel {key} is not ready: {e:#}\nset it up with: cargo run -p rmapcheck -- kernels fetch {key}"
                )
            })?;
            let workroot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("guests-{}", std::process::id()));
            // A restore that falls back to cold boots is slower, not wrong: say so.
            let pool = Pool::new(prepared, workroot).with_events(Box::new(|e| {
                if let rmapcheck::run::pool::Event::FellBack { key, why } = e {
                    eprintln!("rmapcheck: {key}: {why}; booting cold");
                }
            }));
            Ok(Arc::new(pool))
        })
        .clone()
        .map_err(|cause| self.failure_once(key, cause))
    }

    /// The whole cause for the first trial of `key` that needs the kernel; a one-line
    /// pointer to it for every other.
    fn failure_once(&self, key: &str, cause: String) -> Failed {
        if self.reported.lock().unwrap().insert(key.to_string()) {
            Failed::from(cause)
        } else {
            Failed::from(format!(
                "kernel {key} is not ready; the cause is shown once, with another failed trial on {key}"
            ))
        }
    }

    fn shutdown(&self) {
        for slot in self.by_key.lock().unwrap().values() {
            if let Some(Ok(pool)) = slot.get() {
                pool.shutdown();
            }
        }
    }
}

static POOLS: OnceLock<Pools> = OnceLock::new();

fn pools() -> &'static Pools {
    POOLS.get_or_init(Pools::default)
}

fn scenario_trial(file: PathBuf, name: String, key: String) -> Trial {
    Trial::test(format!("{name}::{key}"), move || {
        let loaded = scenario::load(&file).map_err(|e| Failed::from(e.to_string()))?;
        let pool = pools().get(&key)?;
        let outcome = pool.play(&loaded).outcome;
        let text = report::snapshot(&outcome);
        let snapshots = rmapcheck::project_root().join("snapshots");
        // A snapshot belongs to the key; its header records the pin it was taken on, so
        // a point release that changes it is named beside the one it was taken on.
        let pin = pin_of(&key);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&snapshots);
        settings.set_snapshot_suffix(key.clone());
        settings.set_input_file(&file);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_info(&pin);
        let taken_on = report::snapshots::taken_on(&snapshots, &name, &key).map_err(|e| format!("{e:#}"))?;
        let snap = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(name.clone(), text))
        }));
        // A known kernel bug that showed as known passes; its snapshot holds the failure.
        if !outcome.status.is_ok() {
            return Err(
                format!("{} on {key}: {:?}\n{}", outcome.scenario, outcome.status, report::snapshot(&outcome)).into()
            );
        }
        snap.map_err(|_| {
            let taken_on = taken_on.as_deref().unwrap_or("an unrecorded version");
            Failed::from(format!(
                "snapshot {name}@{key} differs: taken on {taken_on}, now {pin}; review with: cargo insta review"
            ))
        })
    })
}

/// The pin `key` runs on, as a snapshot header records it.
fn pin_of(key: &str) -> String {
    match kernels::Lock::load() {
        Ok(lock) => lock.kernels.get(key).map(kernels::pin_summary).unwrap_or_else(|| "an unlocked kernel".into()),
        Err(e) => format!("an unreadable lock ({e:#})"),
    }
}

fn main() -> ExitCode {
    // No loop here checks a stop flag: kill every guest at the first signal.
    signal::install(std::time::Duration::ZERO, |m| eprintln!("rmapcheck: {m}"));
    let args = Arguments::from_args();
    let manifest = match Manifest::load() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let keys = kernel_keys(&manifest);
    let dir = rmapcheck::project_root().join("scenarios");
    let files = scenario::discover(&[dir]).expect("scenarios/ is readable");
    let mut trials = Vec::new();
    for file in files {
        // Listing must stay cheap: the name is the file stem; the file is parsed when
        // the trial runs.
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        for key in &keys {
            trials.push(scenario_trial(file.clone(), name.clone(), key.clone()));
        }
    }
    for (i, key) in keys.iter().enumerate() {
        trials.extend(debugger::trials(key, i == 0));
        trials.extend(vm_checks::trials(key, pools));
        trials.extend(faults::trials(key, pools));
        trials.extend(worker_faults::trials(key, pools));
        trials.extend(signals::trials(key, pools));
        trials.extend(fuzz_selftest::trials(key, pools));
        trials.extend(vm_restore::trials(key, pools));
        trials.extend(isolation::trials(key, pools));
        trials.push(boot_walk::trial(key, pools));
        trials.extend(findings::trials(key, pools));
        // Only a kernel built from source keeps its vmlinux and System.map.
        if manifest.entry(key).is_ok_and(|e| e.kind == rmapcheck::image::kernels::EntryKind::Source) {
            trials.push(stack::trial(key, pools));
        }
    }
    trials.push(kcov::trial(&keys, pools));
    trials.push(kcov::remote_trial(&keys, pools));
    if keys.iter().any(|k| k == bisect::KEY) {
        trials.push(bisect::trial(pools));
    }
    if keys.iter().any(|k| k == rmapcheck::mutants::BASE) {
        trials.push(mutants::trial(pools));
        trials.push(mutants::patches_trial(pools));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    pools().shutdown();
    conclusion.exit_code()
}
