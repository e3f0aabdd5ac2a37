//! Data-driven tests: every file in tests/malformed/ names, on its first line, the
//! `line:col: message` its error must carry.

use super::*;

fn malformed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../harness/tests/malformed")
}

#[test]
fn every_malformed_file_gets_its_positioned_error() {
    let mut files: Vec<_> = std::fs::read_dir(malformed_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 20, "only {} malformed fixtures", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let want = text.lines().next().unwrap().strip_prefix("# error: ").expect("first line names the error");
        let (pos, msg) = want.split_once(": ").unwrap();
        let got = match load(file) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        let prefix = format!("{}:{pos}: ", file.display());
        let hit = got.lines().any(|l| l.starts_with(&prefix) && l.contains(msg));
        if !hit {
            failures.push(format!("{}:\n  want {prefix}..{msg}..\n  got  {got}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_shipped_scenarios_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for f in discover(&[dir]).unwrap() {
        if let Err(e) = load(&f) {
            panic!("{e}");
        }
    }
}

#[test]
fn several_errors_are_reported_at_once() {
    let text = "name: t\nabout: t\nsteps:\n  - write: { map: a, page: 0 }\n  - write: { proc: zz, map: a, page: 0 }\n";
    let errs = parse(Path::new("x.yaml"), text).unwrap_err();
    assert_eq!(errs.0.len(), 2, "{errs}");
}

#[test]
fn committed_schema_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == json_schema(),
        "scenarios/schema.json is stale; run: cargo run -q -- schema > scenarios/schema.json"
    );
}

#[test]
fn pmd_counts_resolve_for_each_page_size() {
    let text = "name: t\nabout: t\nmthp: [{ pages: all, anon: always }]\nsteps:\n  - mmap: { name: h, pages: pmd, backing: anon, share: private, huge: true }\n  - write: { map: h, page: pmd-1 }\n  - findpage: { map: h, page: pmd-1 }\n  - findpage: { map: h, page: 3 }\nexpect:\n  - findpage: h[pmd-1]\n    order: 9\n  - findpage: h[3]\n    order: 0\n";
    let s = parse(Path::new("t.yaml"), text).unwrap();
    let pages = |s: &Scenario| match &s.steps[0] {
        Step::Mmap(m) => m.pages,
        _ => unreachable!(),
    };
    assert_eq!(pages(&s), 512);
    assert_eq!(s.mthp[0].pages, None, "all");
    let big = s.for_page_size(16384).unwrap();
    assert_eq!(pages(&big), 2048);
    assert_eq!(big.expect[0].findpage.as_deref(), Some("h[2047]"));
    assert_eq!(s.expect[0].findpage.as_deref(), Some("h[511]"));
    // Plain counts need no text and stay as written.
    let plain = parse(
        Path::new("t.yaml"),
        "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 3, backing: anon, share: private }\n",
    )
    .unwrap();
    assert!(plain.text.is_none());
    assert_eq!(pages(&plain.for_page_size(16384).unwrap()), 3);
}

/// A hugetlb map is written in PMDs of the page size it was played at, so a 16k
/// campaign's finding reads back as the same huge pages at 4k (where 2048 pages would
/// be four huge pages, more than the pool).
#[test]
fn hugetlb_maps_are_written_in_pmds_and_read_back() {
    let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: h, pages: 2048, backing: hugetlb, share: shared }\n";
    let s = count::with_page_size(16384, || deserialize(text)).0.unwrap();
    let yaml = count::with_page_size(16384, || emit::to_yaml(&s, "")).0;
    assert!(yaml.contains("pages: pmd,"), "{yaml}");
    let again = parse(Path::new("t.yaml"), &yaml).unwrap();
    let Step::Mmap(m) = &again.steps[0] else { panic!() };
    assert_eq!(m.pages, 512, "one huge page at 4k");
    let two = text.replace("2048", "1024");
    let s = count::with_page_size(4096, || deserialize(&two)).0.unwrap();
    assert!(emit::to_yaml(&s, "").contains("pages: 2*pmd,"));
}

/// A 16k campaign's finding names pages past what its map has at 4k: it loads as a
/// scenario for 16k kernels, and a 4k kernel refuses it by name, not half-way through.
#[test]
fn a_scenario_valid_only_with_16k_pages_loads_for_16k_kernels() {
    let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: h, pages: pmd, backing: hugetlb, share: shared }\n  - write: { map: h, page: 1388 }\n";
    let s = parse(Path::new("t.yaml"), text).unwrap();
    assert!(s.for_page_size(16384).is_ok());
    let err = s.for_page_size(4096).unwrap_err();
    assert!(err.contains("out of range") && err.contains("4 KiB"), "{err}");
}
