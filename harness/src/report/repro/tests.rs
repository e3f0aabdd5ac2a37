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
        - pin: { map: a, page: 3, pages: 2, kind: vmsplice }\n\
        - unpin: { kind: vmsplice }\n\
        - remote: { map: a, page: 5, kind: readv }\n\
        - punch: { map: f, page: 1 }\n\
        - truncate: { map: m, pages: 2 }\n\
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

/// An io_uring pin held across a fork: the rows pin and unpin with the agent's calls,
/// and the model's predictions embedded at the findpage after the fork (step 5, index
/// 4) say what copy_present_page() does: the two pinned pages are copied for c1
/// (groups 1 and 5 apart), the unpinned a[2] stays shared (group 3 in both).
#[test]
fn a_pin_scenario_pins_and_predicts_the_copies_at_fork() {
    let text = c_source(&scenario("pin_uring_fork_copies.yaml"), &about()).unwrap();
    assert!(step_row(&text, 3).starts_with("\t{ OP_PIN, 0, 0, PIN_URING, 0, 2, 0, "), "{text}");
    assert!(step_row(&text, 11).starts_with("\t{ OP_UNPIN, 0, -1, PIN_URING, 0, 0, 0, "));
    assert!(text.contains("\t{ 4, 1, 0, S_TAGGED, 0x03, 1, 0, 0 },"));
    assert!(text.contains("\t{ 4, 0, 0, S_JUDGE | S_TAGGED, 0x03, 5, 0, 0 },"));
    assert!(text.contains("\t{ 4, 1, 0, S_TAGGED, 0x03, 3, 2, 2 },"));
    assert!(text.contains("\t{ 4, 0, 0, S_TAGGED, 0x03, 3, 2, 2 },"));
    // After unpin, c2 forked at step 12 shares p0's copy of a[0] again.
    assert!(text.contains("\t{ 12, 2, 0, S_TAGGED, 0x09, 5, 0, 0 },"));
    for call in ["SYS_io_uring_setup", "IORING_REGISTER_BUFFERS", "IORING_UNREGISTER_BUFFERS", "vmsplice("] {
        assert!(text.contains(call), "{call}");
    }
    assert!(!text.contains("must get SIGBUS"), "no access past an end here");
    compiles("pin_uring", &text);
    let text = c_source(&scenario("pin_vmsplice_fork_write.yaml"), &about()).unwrap();
    assert!(step_row(&text, 3).starts_with("\t{ OP_PIN, 0, 0, PIN_VMSPLICE, 0, 2, 0, "), "{text}");
    compiles("pin_vmsplice", &text);
}

/// Remote accesses carry what they write: writev its byte (tagged like a write without
/// a value), ptrace the step's poke word.
#[test]
fn remote_steps_carry_their_bytes_and_words() {
    let text = c_source(&scenario("pin_writev_cow_child.yaml"), &about()).unwrap();
    let tagged = step_row(&text, 6);
    assert!(tagged.starts_with("\t{ OP_REMOTE, 1, 0, R_WRITEV, 0, 1, F_TAG, "), "{tagged}");
    assert!(tagged.ends_with("\", -1, 0, 0, 0x7 },"), "{tagged}");
    assert!(step_row(&text, 7).ends_with("value: 90 }\", -1, 0, 0, 0x5a },"));
    let text = c_source(&scenario("pin_ptrace_poke_readonly_private.yaml"), &about()).unwrap();
    let poke = step_row(&text, 8);
    assert!(poke.starts_with("\t{ OP_REMOTE, 0, 0, R_PTRACE, 0, 1, 0, "), "{poke}");
    assert!(poke.ends_with(&format!(", -1, 0, 0, 0x{:x} }},", scenario::Remote::poke_word(0, 8))), "{poke}");
    for call in ["process_vm_writev(", "process_vm_readv(", "PTRACE_POKEDATA"] {
        assert!(text.contains(call), "{call}");
    }
    compiles("pin_ptrace", &text);
}

/// Truncation and hole punching through the map's own file, and the SIGBUS the model
/// expects past the end as a step's result: c2's read of m[6] after the shrink to 4
/// pages (index 8), p0's write of m[2..6] stopping at m[4] (index 9).
#[test]
fn a_truncation_scenario_expects_sigbus_where_the_model_does() {
    let text = c_source(&scenario("trunc_memfd_shrink_grow_fork.yaml"), &about()).unwrap();
    assert!(step_row(&text, 7).starts_with("\t{ OP_TRUNCATE, 1, 0, 0, 0, 4, 0, "), "{text}");
    assert!(step_row(&text, 11).starts_with("\t{ OP_TRUNCATE, 0, 0, 0, 0, 8, 0, "));
    assert!(text.contains(
        "static const struct sigbus sigbus_old[] = {\n\t{ 8, 6, SB_EXPECT },\n\t{ 9, 4, SB_EXPECT },\n\t{ 0xffff, 0, 0 },"
    ));
    assert!(text.contains("#define sigbus_616 sigbus_old"));
    assert!(text.contains(" * A read or write past a file's end must get SIGBUS"));
    for call in ["ftruncate(fd", "FALLOC_FL_PUNCH_HOLE", "siglongjmp(fault_jmp"] {
        assert!(text.contains(call), "{call}");
    }
    compiles("trunc_memfd", &text);
    let text = c_source(&scenario("trunc_file_punch_shared.yaml"), &about()).unwrap();
    assert!(step_row(&text, 7).starts_with("\t{ OP_PUNCH, 2, 0, 0, 2, 2, 0, "), "{text}");
    assert!(text.contains("sigbus_old[] = {\n\t{ 10, 3, SB_EXPECT },"));
    compiles("trunc_punch", &text);
}

/// userfaultfd as the agent plays it: the whole map registered for missing faults,
/// UFFDIO_COPY with its byte, and the reads the model expects to get SIGBUS from
/// UFFD_FEATURE_SIGBUS: p0's read of m[4] (step 5, index 4) and of m[6] (index 9),
/// not c1's (no registration after fork).
#[test]
fn a_uffd_copy_scenario_registers_copies_and_expects_its_sigbus() {
    let text = c_source(&scenario("uffd_copy_fork_cow.yaml"), &about()).unwrap();
    assert!(step_row(&text, 2).starts_with("\t{ OP_UFFD_REGISTER, 0, 0, UFFD_MISSING, 0, 0, 0, "), "{text}");
    assert!(step_row(&text, 3).starts_with("\t{ OP_UFFD_COPY, 0, 0, 0x11, 0, 4, 0, "));
    assert!(text
        .contains("sigbus_old[] = {\n\t{ 4, 4, SB_EXPECT | SB_UFFD },\n\t{ 9, 6, SB_EXPECT | SB_UFFD },\n\t{ 0xffff"));
    assert!(text.contains("uffd_old[] = {\n\t{ 2, UR_CERTAIN, 0, 4 },\n\t{ 0xffff"), "{text}");
    assert!(text.contains(" * UFFD_FEATURE_SIGBUS turns each fault"));
    assert!(!text.contains("must get SIGBUS"), "nothing past a file's end");
    for call in ["SYS_userfaultfd", "UFFDIO_API", "UFFD_FEATURE_SIGBUS", "UFFDIO_REGISTER_MODE_MISSING", "UFFDIO_COPY"]
    {
        assert!(text.contains(call), "{call}");
    }
    compiles("uffd_copy", &text);
}

/// A move carries its destination (map dst, page 1) and the model's result: all 3
/// pages, then ENOENT from a source hole; a move of a shared page, EBUSY.
#[test]
fn a_uffd_move_carries_its_destination_and_predicted_errno() {
    let text = c_source(&scenario("uffd_move_findpage.yaml"), &about()).unwrap();
    let mv = step_row(&text, 6);
    assert!(mv.starts_with("\t{ OP_UFFD_MOVE, 0, 0, 0, 0, 3, 0, "), "{mv}");
    assert!(mv.ends_with("\", 1, 1 },"), "{mv}");
    assert!(text.contains("\t{ 5, UR_CERTAIN, 0, 3 },"), "{text}");
    assert!(text.contains("\t{ 9, UR_CERTAIN, ENOENT, 0 },"), "{text}");
    assert!(text.contains("UFFDIO_MOVE") && text.contains("UFFD_FEATURE_MOVE"));
    compiles("uffd_move", &text);
    let text = c_source(&scenario("uffd_move_shared_busy.yaml"), &about()).unwrap();
    assert!(text.contains("\t{ 5, UR_CERTAIN, EBUSY, 0 },"), "{text}");
    compiles("uffd_move_busy", &text);
}

/// Write-protect: registered for wp, protected and released by range; the write to
/// protected m[1] (step 6, index 5) gets SIGBUS, and EEXIST stops a copy over a page.
#[test]
fn uffd_wp_and_zeropage_steps_carry_their_calls() {
    let text = c_source(&scenario("uffd_wp_write_sigbus.yaml"), &about()).unwrap();
    assert!(step_row(&text, 3).starts_with("\t{ OP_UFFD_REGISTER, 0, 0, UFFD_WP, 0, 0, 0, "), "{text}");
    assert!(step_row(&text, 4).starts_with("\t{ OP_UFFD_WP, 0, 0, 1, 0, 4, 0, "));
    assert!(step_row(&text, 11).starts_with("\t{ OP_UFFD_WP, 0, 0, 0, 1, 1, 0, "));
    assert!(text.contains("\t{ 5, 1, SB_EXPECT | SB_UFFD },"), "{text}");
    assert!(text.contains("UFFDIO_WRITEPROTECT_MODE_WP"));
    compiles("uffd_wp", &text);
    let text = c_source(&scenario("uffd_zeropage_write.yaml"), &about()).unwrap();
    assert!(step_row(&text, 3).starts_with("\t{ OP_UFFD_ZEROPAGE, 0, 0, 0, 0, 2, 0, "), "{text}");
    assert!(text.contains("\t{ 6, UR_CERTAIN, EEXIST, 0 },"), "{text}");
    assert!(text.contains("UFFDIO_ZEROPAGE"));
    compiles("uffd_zeropage", &text);
}

/// The runtime has no block filesystem: writeback steps are refused, by step.
#[test]
fn writeback_steps_are_refused() {
    let yaml = "name: t\nabout: sync\nsteps:\n\
        - mmap: { name: f, pages: 2, backing: file, share: shared }\n\
        - sync: {}\n";
    let s = scenario::parse(Path::new("t.yaml"), yaml).unwrap();
    let err = c_source(&s, &about()).unwrap_err();
    assert!(err.0.starts_with("step 2 (sync): writeback"), "{err}");
    // Refused even after userfaultfd steps, which it now plays.
    let yaml = "name: t\nabout: uffd then msync\nsteps:\n\
        - mmap: { name: m, pages: 2, backing: anon, share: private }\n\
        - uffd: { map: m, mode: missing }\n\
        - uffd_copy: { map: m, page: 0 }\n\
        - mmap: { name: f, pages: 2, backing: file, share: shared }\n\
        - msync: { map: f }\n";
    let s = scenario::parse(Path::new("t.yaml"), yaml).unwrap();
    let err = c_source(&s, &about()).unwrap_err();
    assert_eq!(err.0, "step 5 (msync): writeback (ext4 maps, msync, fsync, sync, drop_caches) is not in the C runtime");
}
