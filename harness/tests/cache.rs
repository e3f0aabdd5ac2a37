//! Cache integrity against the real mirror: a corrupted .deb in the cache is detected
//! and fetched again, and a package whose sha256 differs from the lock is refused.
//! Needs the network (the Debian mirror the host's apt uses); boots nothing. Offline it
//! skips with a note, except under CI, where an unreachable mirror fails it.

use rmapcheck::image::{
    apt,
    kernels::{self, Manifest},
};
use std::time::Duration;

#[test]
fn corrupt_debs_are_refetched_and_wrong_checksums_refused() {
    let cache = tempfile::tempdir().unwrap();
    unsafe_env(cache.path());
    let manifest = Manifest::load().unwrap();
    let key = &manifest.default;
    let archive = manifest.entry(key).unwrap().archive;
    if !apt::mirror_reachable(archive, Duration::from_secs(5)).unwrap() {
        // CI has the network: there an unreachable mirror fails the test.
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(!ci, "CI is set and the host's apt mirror is unreachable");
        eprintln!("SKIPPED: the host's apt mirror is unreachable (offline?), and this test needs it");
        return;
    }
    // What the mirror serves today, not the lock's pin, which the mirror may have dropped.
    let locked = kernels::resolve(manifest.entry(key).unwrap()).unwrap();
    // The smallest package of the kernel keeps the test quick.
    let pkg = locked.packages.iter().find(|p| p.name.starts_with("linux-kbuild")).expect("a kbuild package");
    let apt = kernels::apt_for(manifest.entry(key).unwrap()).unwrap();
    apt.update(apt::Freshness::Any).unwrap();
    let debs = cache.path().join("debs");
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
}

fn unsafe_env(dir: &std::path::Path) {
    // SAFETY: this binary has one test, and it sets the variable before it starts any
    // thread, so nothing reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RMAPCHECK_CACHE", dir)
    };
}
