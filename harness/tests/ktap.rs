//! `run --format ktap` read back by the kernel's own KTAP parser (KUnit's
//! tools/testing/kunit/kunit_parser.py), taken from the 6.12-debug source tree that
//! rmapcheck extracts into its cache, as scripts/checkpatch takes checkpatch.pl. Boots
//! nothing. scripts/test fetches that tree before the tests run.

use rmapcheck::check::outcome::Outcome;
use std::path::PathBuf;
use std::process::Command;

fn outcome(scenario: &str, kernel: &str, status: &str, problems: &[&str], notes: &[&str]) -> Outcome {
    let problems: Vec<serde_json::Value> =
        problems.iter().map(|m| serde_json::json!({ "check": "O2", "message": m })).collect();
    serde_json::from_value(serde_json::json!({
        "scenario": scenario, "file": format!("scenarios/{scenario}.yaml"), "kernel": kernel,
        "release": "r", "page_size": 4096, "status": status, "findpages": [], "findtasks": [],
        "forks": [], "checks": [], "problems": problems, "model_mismatches": [], "notes": notes,
        "splats": [], "duration_ms": 1
    }))
    .unwrap()
}

/// The directory of kunit_parser.py in a cached kernel tree (any source key's).
fn kunit_dir() -> PathBuf {
    let source = rmapcheck::cache::root().unwrap().join("source");
    let found = std::fs::read_dir(&source).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.path().join("linux/tools/testing/kunit"))
            .find(|p| p.join("kunit_parser.py").is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "no kernel tree with tools/testing/kunit under {}; get one with: \
             cargo run -p rmapcheck -- kernels fetch 6.12-debug",
            source.display()
        )
    })
}

#[test]
fn the_kernels_own_ktap_parser_reads_run_results() {
    let outcomes = [
        outcome("seed_mmap_fork", "6.12", "pass", &[], &[]),
        outcome("cow_both_write", "7.2", "fail", &["c1 a[0]: the rmap walk missed c1 # not a directive"], &[]),
        outcome(
            "pagemap_pmd_thp_exclusive_per_page",
            "7.2",
            "xfail",
            &["c2 m1[200]: pagemap flags pfn 0x4fcc8 exclusive to one mm (PM_MMAP_EXCLUSIVE)"],
            &["failed as known kernel bug pagemap-pmd-exclusive (docs/FINDINGS.md) on this kernel"],
        ),
        outcome("thp_whole", "6.1", "error", &["the guest did not boot"], &[]),
    ];
    let text = rmapcheck::report::ktap(&outcomes);
    assert!(text.starts_with("KTAP version 1\n1..4\n"), "{text}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
import inspect, kunit_parser
with open(sys.argv[2]) as f:
    lines = f.readlines()
# Newer trees (6.13+) take the printer to print with.
if "printer" in inspect.signature(kunit_parser.parse_run_tests).parameters:
    import kunit_printer
    test = kunit_parser.parse_run_tests(lines, kunit_printer.stdout)
else:
    test = kunit_parser.parse_run_tests(lines)
print("RESULT", test.status.name, test.counts.passed, test.counts.failed, test.counts.errors)
for t in test.subtests:
    print("TEST", t.name, t.status.name, len(t.log))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(kunit_dir()).arg(file.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RESULT") || l.starts_with("TEST")).collect();
    // Two passed (the pass and the expected failure), two failed, and no parse error.
    assert_eq!(lines[0], "RESULT FAILURE 2 2 0", "{stdout}\n{text}");
    let tests: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(' ').collect()).collect();
    let names_and_status: Vec<(&str, &str)> = tests.iter().map(|t| (t[1], t[2])).collect();
    assert_eq!(
        names_and_status,
        [
            ("seed_mmap_fork::6.12", "SUCCESS"),
            ("cow_both_write::7.2", "FAILURE"),
            ("pagemap_pmd_thp_exclusive_per_page::7.2", "SUCCESS"),
            ("thp_whole::6.1", "FAILURE"),
        ],
        "{stdout}\n{text}"
    );
    // A failure carries its problems as diagnostics; a pass carries none.
    assert_eq!(tests[0][3], "0", "{stdout}");
    assert_ne!(tests[1][3], "0", "{stdout}");
}
