//! Cache integrity against the real mirror: a corrupted .deb in the cache is detected
//! and fetched again, and a package whose sha256 differs from the lock is refused.
//! Needs the network (the Debian mirror the host's apt uses); boots nothing. Offline it
//! is ignored with the reason, except under CI, where an unreachable mirror fails it.
//! (libtest-mimic, not libtest: only it can ignore a test once it has started.)

use libtest_mimic::{Arguments, Completion, Trial};
use rmapcheck::image::{
    apt,
    kernels::{self, Manifest},
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let cache = tempfile::tempdir().unwrap();
    unsafe_env(cache.path());
    let dir = cache.path().to_path_buf();
    let trial = Trial::ignorable_test("corrupt_debs_are_refetched_and_wrong_checksums_refused", move || {
        // An assertion's panic fails the trial with its message.
        std::panic::catch_unwind(|| corrupt_debs_are_refetched_and_wrong_checksums_refused(&dir)).map_err(|p| {
            let text = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            text.unwrap_or_else(|| "the test panicked".into()).into()
        })
    });
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

fn corrupt_debs_are_refetched_and_wrong_checksums_refused(cache: &Path) -> Completion {
    let manifest = Manifest::load().unwrap();
    let key = &manifest.default;
    let archive = manifest.entry(key).unwrap().archive;
    if !apt::mirror_reachable(archive, Duration::from_secs(5)).unwrap() {
        // CI has the network: there an unreachable mirror fails the test.
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(!ci, "CI is set and the host's apt mirror is unreachable");
        return Completion::ignored_with("the host's apt mirror is unreachable (offline?), and this test needs it");
    }
    // What the mirror serves today, not the lock's pin, which the mirror may have dropped.
    let locked = kernels::resolve(manifest.entry(key).unwrap()).unwrap();
    // The smallest package of the kernel keeps the test quick.
    let pkg = locked.packages.iter().find(|p| p.name.starts_with("linux-kbuild")).expect("a kbuild package");
    let apt = kernels::apt_for(manifest.entry(key).unwrap()).unwrap();
    apt.update(apt::Freshness::Any).unwrap();
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).unwrap();

    let deb = kernels::fetch_deb(&apt, pkg, &debs).unwrap();
    assert_eq!(rmapcheck::cache::sha256_file(&deb).unwrap(), pkg.sha256);

    // Truncate it, as an interrupted download would: the next fetch notices and redoes it.
    std::fs::write(&deb, b"half a deb").unwrap();
    let again = kernels::fetch_deb(&apt, pkg, &debs).unwrap();
    assert_eq!(rmapcheck::cache::sha256_file(&again).unwrap(), pkg.sha256);

    let mut wrong = pkg.clone();
    wrong.sha256 = "0".repeat(64);
    let err = kernels::fetch_deb(&apt, &wrong, &debs).unwrap_err().to_string();
    assert!(err.contains("does not match the lock"), "{err}");
    Completion::Completed
}

fn unsafe_env(dir: &Path) {
    // SAFETY: main sets the variable before it starts any thread, so nothing reads the
    // environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RMAPCHECK_CACHE", dir)
    };
}
