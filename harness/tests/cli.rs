//! The CLI's exit codes without a VM: 0 for success, 2 for bad input (one clear line on
//! stderr with its causes, no guest started), 3 for a broken environment, 4 for a
//! harness bug (a panic or an unexpected error). None of these boots a VM; 1 (a failing
//! scenario) and 3 for a kernel that does not boot are checked with guests, in
//! `vm::planted_warn_fails_one_scenario` and `vm::boot_failure_isolated`, and 128 + N
//! after a signal in `tests/signals.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rmapcheck(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
        .args(args)
        .env("RMAPCHECK_CACHE", cache)
        .output()
        .expect("the binary runs")
}

fn malformed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

/// The cache dir has no `runs/` entry, so no guest was started.
fn assert_no_guest(cache: &Path) {
    assert!(!cache.join("runs").exists(), "a guest was started");
}

#[test]
fn every_malformed_scenario_exits_2_with_file_line_col_and_boots_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(malformed_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 20);
    for file in files {
        let out = rmapcheck(&["run", file.to_str().unwrap()], cache.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        let first = stderr.lines().next().unwrap_or("");
        let want = format!("rmapcheck: {}:", file.display());
        assert!(first.starts_with(&want), "{}: stderr was {stderr}", file.display());
        let pos = &first[want.len()..];
        let mut parts = pos.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<usize>().is_ok() && parts.next().unwrap().parse::<usize>().is_ok(),
            "no line:col in {first}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_no_guest(cache.path());
}

#[test]
fn unknown_kernel_missing_file_and_bad_flags_exit_2() {
    let cache = tempfile::tempdir().unwrap();
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed_mmap_fork.yaml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", seed.to_str().unwrap(), "--kernel", "2.6.11"], "unknown kernel '2.6.11'"),
        (vec!["run", "/nonexistent/x.yaml"], "/nonexistent/x.yaml: cannot read"),
        (vec!["run", "--format", "xml"], "invalid value 'xml'"),
        (vec!["kernels", "fetch", "9.9"], "unknown kernel '9.9'"),
        (vec!["diff", "no_such_scenario"], "no snapshots for scenario 'no_such_scenario'"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["report"], "nothing to report"),
        (vec!["replay", "/nonexistent/x.yaml"], "/nonexistent/x.yaml: cannot read"),
        (vec!["replay", seed.to_str().unwrap(), "--kernel", "6.12", "--kernel", "7.2"], "name one kernel"),
        (vec!["shell", "--kernel", "2.6.11"], "unknown kernel '2.6.11'"),
        (vec!["fuzz", "--gdb", "--jobs", "2", "--runs", "1"], "--gdb debugs one guest: use it with --jobs 1"),
        (vec!["sweep", "--shard", "3/2"], "'3/2' is not a shard I/N"),
        (vec!["sweep", "--depth", "9"], "9 is not in 1..=4"),
        (vec!["sweep", "--kernel", "2.6.11"], "unknown kernel '2.6.11'"),
        // Bad input keeps its chain: the cause follows the context.
        (
            vec!["report", "--from", "/nonexistent/results.json"],
            "reading results /nonexistent/results.json: No such file or directory",
        ),
    ];
    for (args, want) in cases {
        let out = rmapcheck(&args, cache.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: want '{want}' in {stderr}");
    }
    assert_no_guest(cache.path());
}

#[test]
fn an_unreadable_directory_exits_2() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    // World-traversable, so that the unprivileged user below reaches `locked`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = dir.path().join("cache");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("a.yaml"), "x").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmapcheck"));
    cmd.args(["check", locked.to_str().unwrap()]).env("RMAPCHECK_CACHE", &cache);
    // root reads a 000 directory; as nobody, it cannot, whoever runs the test.
    // (The directory just made is the test's own: its owner is who runs the test.)
    if dir.path().metadata().unwrap().uid() == 0 {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let out = cmd.output().expect("the binary runs");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!("rmapcheck: {}: cannot list directory", locked.display());
    assert!(stderr.starts_with(&want), "want '{want}' in {stderr}");
}

/// The unprivileged user (nobody) that root runs a permission check as.
const NOBODY: u32 = 65534;

#[test]
fn success_exits_0_and_help_lists_every_exit_code() {
    let cache = tempfile::tempdir().unwrap();
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for args in [vec!["check", scenarios.to_str().unwrap()], vec!["schema"]] {
        let out = rmapcheck(&args, cache.path());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let help = String::from_utf8_lossy(&rmapcheck(&["--help"], cache.path()).stdout).into_owned();
    for code in [
        "0  success",
        "1  a scenario failed",
        "2  bad usage",
        "3  the environment",
        "4  a harness bug",
        "128+N  stopped",
    ] {
        assert!(help.contains(code), "--help lacks '{code}':\n{help}");
    }
}

#[test]
fn a_cache_that_cannot_be_created_exits_3() {
    // A path under a regular file can never be a directory. The lock has the key, so
    // nothing is resolved over the network before the cache is needed.
    let lock = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/kernels.lock"));
    assert!(lock.unwrap().contains("[kernels.\"6.12\"]"));
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = rmapcheck(&["kernels", "fetch", "6.12"], &file.path().join("cache"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("creating cache dir"), "{stderr}");
}

#[test]
fn a_missing_tool_exits_3() {
    // A user's kernel build needs no download; with an empty PATH the cross gcc that
    // builds the agent is missing.
    let cache = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(build.path().join("include/config")).unwrap();
    std::fs::write(build.path().join("include/config/kernel.release"), "6.12.0-test\n").unwrap();
    let config = "CONFIG_ARM64_4K_PAGES=y\nCONFIG_CC_VERSION_TEXT=\"aarch64-linux-gnu-gcc-12 (Debian) 12.2.0\"\n";
    std::fs::write(build.path().join(".config"), config).unwrap();
    let image = build.path().join("Image");
    std::fs::write(&image, "not a kernel").unwrap();
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed_mmap_fork.yaml");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
        .args(["run", seed.to_str().unwrap(), "--kernel-image", image.to_str().unwrap(), "--kernel-build"])
        .arg(build.path())
        .env("RMAPCHECK_CACHE", cache.path())
        .env("PATH", empty.path())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("aarch64-linux-gnu-gcc is missing"), "{stderr}");
    assert_no_guest(cache.path());
}

#[test]
fn a_harness_bug_exits_4_with_its_message() {
    // A panic, and an error no layer expected (its chain shown whole).
    let cases = [
        ("RMAPCHECK_TEST_PANIC", "a deliberate harness bug"),
        ("RMAPCHECK_TEST_ERROR", "a deliberate unexpected error: RMAPCHECK_TEST_ERROR is set"),
    ];
    for (var, want) in cases {
        let cache = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
            .args(["check", "scenarios"])
            .env("RMAPCHECK_CACHE", cache.path())
            .env(var, "1")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{var}: {stderr}");
        assert!(stderr.contains(want), "{var}: {stderr}");
        assert!(stderr.contains("this is a bug in rmapcheck"), "{var}: {stderr}");
    }
}

#[test]
fn repro_c_writes_a_program_from_a_finding_and_boots_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = root.join("scenarios/seed_mmap_fork.yaml");
    let yaml = yaml.to_str().unwrap();
    let out = rmapcheck(&["repro", yaml, "--c"], cache.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("// SPDX-License-Identifier: GPL-2.0\n"), "{text}");
    assert!(text.contains("int main(void)") && text.contains("#define NSTEPS 9"));
    // A finding folder: its shrunk.yaml, title and kernel go into the header.
    let finding = cache.path().join("finding");
    std::fs::create_dir(&finding).unwrap();
    std::fs::copy(root.join("scenarios/seed_mmap_fork.yaml"), finding.join("shrunk.yaml")).unwrap();
    std::fs::write(finding.join("title.txt"), "O1: the walk missed SLOT\n").unwrap();
    std::fs::write(finding.join("summary.txt"), "O1: x | kernel 6.12 (6.12.117+deb12-arm64) | run 3\n").unwrap();
    let c = cache.path().join("repro.c");
    let out = rmapcheck(&["repro", finding.to_str().unwrap(), "--c", "-o", c.to_str().unwrap()], cache.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&c).unwrap();
    assert!(text.contains(" * What it shows: O1: the walk missed SLOT\n"), "{text}");
    assert!(text.contains(" * Found by rmapcheck on kernel 6.12 (6.12.117+deb12-arm64).\n"));
    assert!(text.contains("#define O1_CHECK 1"));
    let out = rmapcheck(&["repro", yaml], cache.path());
    assert_eq!(out.status.code(), Some(2), "no --c: bad input");
    assert_no_guest(cache.path());
}
