use super::*;
use std::path::Path;

fn scenario(file: &str) -> Scenario {
    scenario::load(&crate::project_root().join("scenarios").join(file)).unwrap().scenario
}

fn about() -> About {
    About { page_size: 4096, ..About::default() }
}

/// Compile with the host gcc as a reviewer would, warnings as errors.
fn compiles(name: &str, text: &str) {
    if !crate::exec::have("gcc") {
        eprintln!("no host gcc: {name} not compiled");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(format!("{name}.c"));
    std::fs::write(&src, text).unwrap();
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
        .arg(dir.path().join(name))
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_fork_scenario_becomes_a_program_with_its_steps_and_predictions() {
    let text = c_source(&scenario("seed_mmap_fork.yaml"), &about()).unwrap();
    assert!(text.starts_with("// SPDX-License-Identifier: GPL-2.0\n/*\n * seed_mmap_fork: "));
    assert!(text.contains("static const char *const proc_name[NPROCS] = { \"p0\", \"c1\" };"), "{text}");
    assert!(text.contains("static const char *const map_name[NMAPS] = { \"shm\", \"stack\" };"));
    assert!(text.contains(
        "\t{ OP_MMAP, 0, 0, B_DEVZERO, 0, 4, F_SHARED, \"mmap: { name: \\\"shm\\\", pages: 4, backing: dev-zero, share: shared }\" },"
    ));
    assert!(text.contains("\t{ OP_FORK, 0, -1, 1, 0, 0, 0, \"fork: { child: \\\"c1\\\" }\" },"));
    // Step 6: c1 writes shm[0] with the step's byte (6 + 1) and the page's index.
    assert!(text.contains("\t{ OP_WRITE, 1, 0, 0x07, 0, 1, F_TAG, "));
    // At the findpage of shm[0] (step 8, index 7): p0 and c1 share shm[0] (group 1)
    // and it holds c1's byte; only p0's slot is judged; shm[1] is predicted empty.
    assert!(text.contains("\t{ 7, 0, 0, S_JUDGE | S_TAGGED, 0x07, 1, 0, 0 },"));
    assert!(text.contains("\t{ 7, 1, 0, S_TAGGED, 0x07, 1, 0, 0 },"));
    assert!(text.contains("\t{ 7, 0, 0, 0, 0x00, 0, 1, 0 },"));
    // stack[2] was copied on c1's write: p0 keeps step 4's byte in another frame.
    assert!(text.contains("\t{ 8, 1, 1, S_TAGGED, 0x08, 2, 2, 2 },"));
    assert!(text.contains("\t{ 8, 0, 1, S_JUDGE | S_TAGGED, 0x05, 3, 2, 2 },"));
    assert!(text.contains("#define slots_616 slots_old"));
    compiles("seed_mmap_fork", &text);
}

#[test]
fn counts_relative_to_the_pmd_resolve_for_the_page_size() {
    let s = scenario("pagemap_pmd_thp_exclusive_per_page.yaml");
    let text = c_source(&s, &about()).unwrap();
    assert!(text.contains("#define BUILT_PAGE_SIZE 4096"));
    assert!(text.contains("{ OP_MMAP, 0, 0, B_DEVZERO, 0, 520, F_SHARED | F_HUGE,"), "{text}");
    assert!(text.contains("known kernel bug (docs/FINDINGS.md \"pagemap-pmd-exclusive\")"));
    let big = c_source(&s, &About { page_size: 16384, ..About::default() }).unwrap();
    assert!(big.contains("{ OP_MMAP, 0, 0, B_DEVZERO, 0, 2056, F_SHARED | F_HUGE,"));
    compiles("pagemap_pmd", &text);
}

#[test]
fn every_step_kind_compiles() {
    let yaml = "name: t\nabout: every op\nmthp:\n  - { pages: 16, anon: always }\nsteps:\n\
        - mmap: { name: a, pages: 8, backing: anon, share: private }\n\
        - mmap: { name: f, pages: 4, backing: file, share: shared, locked: true }\n\
        - mmap: { name: m, pages: 4, backing: memfd, share: private, huge: false }\n\
        - write: { map: a, page: 0, pages: 8, value: 7 }\n\
        - madvise: { map: a, page: 0, advice: mergeable }\n\
        - fork: { child: c1 }\n\
        - ksm: {}\n\
        - mprotect: { map: a, page: 2, pages: 1, prot: none }\n\
        - mremap: { proc: c1, map: a, pages: 10, move: true }\n\
        - read: { map: f, page: 1 }\n\
        - poke: { map: a, page: 0 }\n\
        - split: { map: a }\n\
        - migrate: { map: a, page: 1 }\n\
        - compact: {}\n\
        - mlock: { map: m, onfault: true }\n\
        - munlock: { map: m }\n\
        - mlockall: { proc: c1, future: true }\n\
        - munlockall: { proc: c1 }\n\
        - findtask: { proc: c1 }\n\
        - munmap: { map: f }\n\
        - exit: { proc: c1 }\n\
        - check: all\n";
    let s = scenario::parse(Path::new("t.yaml"), yaml).unwrap();
    let text = c_source(&s, &About { o1: true, ..about() }).unwrap();
    assert!(text.contains("{ 16, NULL, \"always\" }") || text.contains("{ 64, \"always\", NULL }"), "{text}");
    assert!(text.contains("#define O1_CHECK 1"));
    compiles("every_op", &text);
}

/// A placed mmap goes where the runner puts it: `at: { after: a }` right after a's 8
/// pages (MAP_FIXED_NOREPLACE), `align: pmd-8` 8 pages before a PMD boundary.
#[test]
fn a_placed_mmap_carries_its_placement() {
    let text = c_source(&scenario("place_after_faulted_neighbour_fork.yaml"), &about()).unwrap();
    assert!(
        text.contains("\t{ OP_MMAP, 0, 1, B_ANON, 0, 8, F_AT, \"mmap: { name: \\\"b\\\", pages: 8, backing: anon, share: private, at: { after: \\\"a\\\" } }\", 0, 8 },"),
        "{text}"
    );
    compiles("place_after", &text);
    let yaml = "name: t\nabout: aligned\nsteps:\n\
        - mmap: { name: t, pages: 4, backing: anon, share: private, align: pmd-8 }\n\
        - mmap: { name: u, pages: 2, backing: anon, share: private, at: { before: t, gap: 1 } }\n\
        - check: all\n";
    let s = scenario::parse(Path::new("t.yaml"), yaml).unwrap();
    let text = c_source(&s, &about()).unwrap();
    assert!(text.contains("{ OP_MMAP, 0, 0, B_ANON, 0, 4, F_ALIGN, "), "{text}");
    assert!(text.contains("align: pmd-8 }\", -1, -8 },"), "{text}");
    assert!(text.contains("{ OP_MMAP, 0, 1, B_ANON, 0, 2, F_AT, "), "{text}");
    assert!(text.contains("gap: 1 } }\", 0, -3 },"), "{text}");
    compiles("place_align", &text);
}

/// The row of step `n` (from 1) of the generated program's step table.
fn step_row(text: &str, n: usize) -> &str {
    let table = text.split_once("static const struct step steps[NSTEPS] = {\n").unwrap().1;
    table.lines().nth(n - 1).unwrap()
}

/// A range moved `after:` a map becomes the map named `as:` (a2, map 1) at a's 12
/// pages and a gap of 4; moved `back`, map a2 rejoins a at the page it left
/// (MREMAP_FIXED over the hole, F_INTO: no map of its own).
#[test]
fn a_range_moved_away_and_back_carries_its_places() {
    let text = c_source(&scenario("place_range_away_and_back.yaml"), &about()).unwrap();
    assert!(text.contains("static const char *const map_name[NMAPS] = { \"a\", \"a2\" };"), "{text}");
    // op, proc, map, arg (the map it becomes), page, new size, flags, text,
    // place_map, place, pages moved.
    let away = step_row(&text, 3);
    assert!(away.starts_with("\t{ OP_MREMAP, 0, 0, 1, 4, 4, F_TO, "), "{away}");
    assert!(away.ends_with("gap: 4 } }\", 0, 16, 4 },"), "{away}");
    let back = step_row(&text, 7);
    assert!(back.starts_with("\t{ OP_MREMAP, 0, 1, 0, 0, 4, F_TO | F_OVER | F_INTO, "), "{back}");
    assert!(back.ends_with("\", 0, 4, 0 },"), "{back}");
    // a2's page 1 (a's page 5) is checked at step 6 as map 1: p0's slot of a2[1].
    assert!(text.contains("\t{ 5, 0, 1, S_JUDGE | S_TAGGED, 0x06, "), "{text}");
    compiles("place_away_and_back", &text);
}

/// `over:` replaces pages 3..6 of b (map 1) with a's range, which becomes a2 (map 2);
/// DONTUNMAP moves a range to a fresh place (place_map -1) and leaves a mapped.
#[test]
fn a_range_moved_over_a_neighbour_or_with_dontunmap_carries_its_place() {
    let text = c_source(&scenario("place_mremap_over_neighbour.yaml"), &about()).unwrap();
    assert!(text.contains("map_name[NMAPS] = { \"a\", \"b\", \"a2\" };"), "{text}");
    let over = step_row(&text, 6);
    assert!(over.starts_with("\t{ OP_MREMAP, 0, 0, 2, 2, 3, F_TO | F_OVER, "), "{over}");
    assert!(over.ends_with("page: 3 } }\", 1, 3, 3 },"), "{over}");
    compiles("place_over", &text);
    let text = c_source(&scenario("place_dontunmap_range.yaml"), &about()).unwrap();
    let away = step_row(&text, 3);
    assert!(away.starts_with("\t{ OP_MREMAP, 0, 0, 1, 4, 2, F_MOVE | F_DONTUNMAP, "), "{away}");
    assert!(away.ends_with("dontunmap: true }\", -1, 0, 2 },"), "{away}");
    compiles("place_dontunmap", &text);
}

/// `before:` puts a range that grows to `new_pages` right before a map: its new size
/// and a gap back from b's start; a whole map moved `after:` keeps its name.
#[test]
fn a_range_moved_before_a_map_or_a_whole_map_moved_after_one_carries_its_place() {
    let yaml = "name: t\nabout: before\nsteps:\n\
        - mmap: { name: a, pages: 8, backing: anon, share: private }\n\
        - mmap: { name: b, pages: 2, backing: anon, share: private }\n\
        - write: { map: a, page: 0, pages: 8 }\n\
        - mremap: { map: a, page: 1, pages: 2, new_pages: 3, as: a2, to: { before: b, gap: 1 } }\n\
        - write: { map: a2, page: 2 }\n\
        - mremap: { map: b, pages: 2, to: { after: a2, gap: 4 } }\n\
        - check: all\n";
    let s = scenario::parse(Path::new("t.yaml"), yaml).unwrap();
    let text = c_source(&s, &about()).unwrap();
    let before = step_row(&text, 4);
    assert!(before.starts_with("\t{ OP_MREMAP, 0, 0, 2, 1, 3, F_TO, "), "{before}");
    assert!(before.ends_with("gap: 1 } }\", 1, -4, 2 },"), "{before}");
    let after = step_row(&text, 6);
    assert!(after.starts_with("\t{ OP_MREMAP, 0, 1, 1, 0, 2, F_TO, "), "{after}");
    assert!(after.ends_with("gap: 4 } }\", 2, 7, 0 },"), "{after}");
    // a2's new third page is written at step 5 and checked in its 3 pages.
    assert!(text.contains("\t{ 6, 0, 2, S_JUDGE | S_TAGGED, 0x06, "), "{text}");
    compiles("place_before", &text);
}
