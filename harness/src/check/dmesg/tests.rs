//! Data-driven tests over captured kernel log lines in tests/fixtures/dmesg/.

use super::*;
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dmesg").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn splat_kinds_of_captured_lines() {
    let mut wrong = Vec::new();
    for line in fixture("splats.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (kind, text) = line.split_once(" | ").unwrap();
        let got = detect_splat(text).map(|s| serde_json::to_value(s.kind).unwrap().as_str().unwrap().to_string());
        let want = (kind != "-").then(|| kind.to_string());
        if got != want {
            wrong.push(format!("{text}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn titles_drop_addresses_and_numbers() {
    let a = normalise_title("BUG: Bad page map in process init  pte:e8000041c00f43 pmd:4174c003");
    let b = normalise_title("BUG: Bad page map in process init  pte:e8000041c11f43 pmd:4174d003");
    assert_eq!(a, b);
    let w1 = normalise_title("WARNING: CPU: 0 PID: 91 at mm/rmap.c:1483 __folio_add_anon_rmap+0x2a4/0x2f0");
    let w2 = normalise_title("WARNING: CPU: 1 PID: 97 at mm/rmap.c:1483 __folio_add_anon_rmap+0x2a8/0x2f0");
    assert_eq!(w1, w2);
    assert!(w1.contains("__folio_add_anon_rmap"), "{w1}");
}

#[test]
fn kmsg_records_and_console_stamps() {
    let r = parse_record("6,812,1234567,-;rmapcheck: req=3 end rc=0 mapped=1 visited=0").unwrap();
    assert_eq!((r.level, r.seq, r.usec), (6, 812, 1234567));
    assert!(r.text.starts_with("rmapcheck: req=3"));
    assert_eq!(parse_record("14,5,6;x").unwrap().level, 6);
    assert!(parse_record("garbage").is_none());
    assert_eq!(strip_console_stamp("[    1.234567] Kernel panic - not syncing: x"), "Kernel panic - not syncing: x");
    assert_eq!(strip_console_stamp("no stamp"), "no stamp");
}

#[test]
fn module_lines_of_a_captured_walk() {
    let text = fixture("walk.txt");
    let records: Vec<Record> = text.lines().map(|l| parse_record(l).expect("a kmsg record")).collect();
    let lines: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
    let walks: Vec<u64> =
        lines.iter().filter_map(|l| parse_module_line(l)).filter_map(|r| r.ok()).map(|m| m.req()).collect();
    assert!(!walks.is_empty(), "walk.txt has no module lines");
    for line in &lines {
        if let Some(Err(bad)) = parse_module_line(line) {
            panic!("{bad}");
        }
    }
    // Every request is closed by its end line.
    let mut reqs = walks.clone();
    reqs.dedup();
    for req in reqs {
        let walk = collect_walk(lines.iter().copied(), req);
        assert!(walk.end.is_some(), "req {req} has no end line");
        if let Some(page) = &walk.page {
            if page.kind != "none" && page.kind != "zero" {
                let mapped = walk.vmas.iter().filter(|v| v.state == VmaState::Mapped).count() as u32;
                assert_eq!(walk.end.unwrap().1, mapped, "req {req}: end mapped= disagrees with vma lines");
            }
        }
    }
}

#[test]
fn a_line_with_the_prefix_that_does_not_parse_is_reported() {
    let bad = parse_module_line("rmapcheck: req=4 page pfn=zz order=0").unwrap().unwrap_err();
    assert!(bad.why.contains("pfn"), "{bad}");
    assert!(parse_module_line("virtio: something").is_none());
}
