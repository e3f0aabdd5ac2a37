//! The runner on the fake agent: recorded transcripts of real runs on 6.12 (under
//! harness/tests/fixtures/transcripts, made with `RMAPCHECK_RECORD`) say what the
//! runner must send and in which order, so its caches are checked request by request;
//! hand-written scripts cover refusals, faults and taint.

use super::*;
use crate::check::outcome::Status;
use crate::report;
use crate::scenario::{load, parse};
use crate::vm::fake::{err, ok, reply, Answer, FakeAgent};
use crate::vm::guest::Books;
use crate::vm::transcript::Start;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    crate::project_root()
}

/// Play scenario `name` on the fake replaying its 6.12 transcript: the runner must send
/// exactly what it sent to the real guest.
fn replay(name: &str) -> (Outcome, FakeAgent) {
    let path = root().join(format!("harness/tests/fixtures/transcripts/{name}@6.12.jsonl"));
    let mut fake = FakeAgent::replaying_file(&path);
    let loaded = load(&root().join(format!("scenarios/{name}.yaml"))).unwrap();
    let outcome = run(&mut fake, &loaded).unwrap();
    fake.assert_done();
    (outcome, fake)
}

/// The outcome's snapshot text must be what the VM trial's insta snapshot holds.
fn assert_as_on_the_vm(name: &str, outcome: &Outcome) {
    let snap = std::fs::read_to_string(root().join(format!("snapshots/{name}@6.12.snap"))).unwrap();
    let body = snap.splitn(3, "---\n").nth(2).unwrap();
    assert_eq!(report::snapshot(outcome).trim_end(), body.trim_end(), "{name}: the fake run differs from the VM's");
}

/// Positions of the requests whose op is `op`.
fn at(fake: &FakeAgent, op: &str) -> Vec<usize> {
    fake.ops().iter().enumerate().filter(|(_, o)| **o == op).map(|(i, _)| i).collect()
}

#[test]
fn recorded_runs_replay_to_the_vms_outcome() {
    for name in ["seed_mmap_fork", "fork_tree_check_all", "mthp_16_fork_partial_unmap", "ksm_merge_across_processes"] {
        let (outcome, _) = replay(name);
        assert_eq!(outcome.status, Status::Pass, "{name}: {:?}", outcome.problems);
        assert_as_on_the_vm(name, &outcome);
    }
}

#[test]
fn truth_is_read_once_for_a_run_of_findpage_steps() {
    let (_, fake) = replay("seed_mmap_fork");
    let ops = fake.ops();
    // The writes and the fork change memory; the two findpages share one read.
    let pagemap = at(&fake, "pagemap");
    assert_eq!(pagemap.len(), 1, "{ops:?}");
    assert_eq!(&ops[pagemap[0]..pagemap[0] + 3], ["pagemap", "findpage", "findpage"]);
}

#[test]
fn truth_and_folios_are_read_again_after_a_changing_step_only() {
    let (_, fake) = replay("mthp_16_fork_partial_unmap");
    let ops = fake.ops();
    // write, fork, munmap and write each change memory: the next findpage reads truth
    // again, and its walk of the 16-page folio reads the folio again.
    let changing: Vec<usize> =
        ops.iter().enumerate().filter(|(_, o)| ["write", "fork", "munmap"].contains(o)).map(|(i, _)| i).collect();
    for c in changing {
        let next = &ops[c + 1..];
        let reads = next.iter().position(|o| *o == "pagemap");
        let walks = next.iter().position(|o| *o == "findpage");
        assert!(reads.is_some() && reads < walks, "no truth read between {} and the next findpage: {ops:?}", ops[c]);
    }
    // One folio read per folio per stretch without a change: the findpage steps of the
    // same stretch and the `check: all` that follows reuse it.
    let folios = at(&fake, "folio");
    assert_eq!(folios.len(), 4, "{ops:?}");
    let last_folio = *folios.last().unwrap();
    let check = at(&fake, "findpages")[0];
    assert!(last_folio < check && ops[last_folio..check].iter().all(|o| *o != "fork" && *o != "munmap"));
    for pair in folios.windows(2) {
        let between = &ops[pair[0] + 1..pair[1]];
        assert!(
            between.iter().any(|o| ["write", "fork", "munmap"].contains(o)),
            "the folio was read twice with no change between: {ops:?}"
        );
    }
}

#[test]
fn a_step_before_check_all_fetches_the_truth_with_it() {
    let (_, fake) = replay("fork_tree_check_all");
    // The step before each `check: all` asks for pagemap in its own request, and the
    // check uses that read: no separate pagemap request at all.
    assert!(at(&fake, "pagemap").is_empty(), "{:?}", fake.ops());
    let fused: Vec<&String> = fake.sent.iter().filter(|s| s.ends_with(" then=pagemap")).collect();
    assert_eq!(fused.len(), 2, "{fused:?}");
    assert!(fused[0].starts_with("write proc=c3") && fused[1].starts_with("exit proc=c1"));
    for i in at(&fake, "findpages") {
        assert!(fake.sent[i - 1].ends_with(" then=pagemap"));
    }
}

#[test]
fn a_ksm_step_reads_the_truth_to_record_rmap_items() {
    let (outcome, fake) = replay("ksm_merge_across_processes");
    let ops = fake.ops();
    let ksm = at(&fake, "ksm")[0];
    assert_eq!(ops[ksm + 1], "pagemap", "{ops:?}");
    // The walk of the KSM page is judged against those items and passes.
    assert_eq!(outcome.findpages[0].kind, "ksm");
    assert_eq!(outcome.findpages[0].mapped_by, ["c1", "p0"]);
}

#[test]
#[should_panic(expected = "request 12: expected `findpage proc=p0 name=stack page=2`, got `reset `")]
fn the_fake_fails_a_run_that_sends_other_requests() {
    // Without its last findpage the run goes to its teardown where the recording walked.
    let path = root().join("harness/tests/fixtures/transcripts/seed_mmap_fork@6.12.jsonl");
    let mut fake = FakeAgent::replaying_file(&path);
    let mut loaded = load(&root().join("scenarios/seed_mmap_fork.yaml")).unwrap();
    loaded.scenario.steps.pop();
    let _ = run(&mut fake, &loaded);
}

fn info() -> Info {
    Info { key: "6.12".into(), release: "6.12.117+deb12-arm64".into(), page_size: 4096, ..Info::default() }
}

fn scenario(steps: &str) -> Loaded {
    let text = format!("name: t\nabout: t\nsteps:\n{steps}");
    Loaded { path: Path::new("t.yaml").into(), scenario: parse(Path::new("t.yaml"), &text).unwrap() }
}

#[test]
fn a_refused_request_is_a_step_problem_with_its_errno() {
    let loaded =
        scenario("  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - write: { map: a, page: 0 }\n");
    let mut fake = FakeAgent::new(info())
        .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", ok("addr=0x1000", &[]))
        .expect("write", "proc=p0 name=a page=0 count=1 value=3 tag=1", err(14, "bad_address"))
        .expect("reset", "", ok("", &[]))
        .expect("tainted", "", ok("value=0", &[]));
    let outcome = run(&mut fake, &loaded).unwrap();
    assert_eq!(outcome.status, Status::Fail);
    let problems: Vec<String> = outcome.problems.iter().map(|p| p.message()).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("step 2 (write): failed with errno 14 (bad_address)"), "{problems:?}");
}

#[test]
fn a_guest_that_is_not_fresh_is_reset_first_and_a_fault_ends_the_run() {
    let loaded = scenario("  - mmap: { name: a, pages: 1, backing: anon, share: private }\n");
    let hang = Fault::Hang { detail: "no answer to 'mmap'".into(), splat: None, console: String::new() };
    // A guest another user left as it was: the runner resets its workload first.
    let start = Start { info: info(), next_id: 1, books: Books::default(), coverage: false };
    let mut fake = FakeAgent::starting(start)
        .expect("tainted", "", ok("value=12288", &[]))
        .expect("reset", "", ok("", &[]))
        .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", Answer::Fault(hang));
    let fault = run(&mut fake, &loaded).unwrap_err();
    assert_eq!(fault.cause(), "hang");
}

#[test]
fn new_taint_and_a_forwarded_splat_fail_the_run_under_o3() {
    let loaded = scenario("  - mmap: { name: a, pages: 1, backing: anon, share: private }\n");
    let warn = "4,900,1000;WARNING: CPU: 0 PID: 1 at mm/rmap.c:1234 folio_add_anon_rmap_ptes+0x1c/0x2c0";
    let mut fake = FakeAgent::new(info())
        .expect(
            "mmap",
            "proc=p0 name=a pages=1 backing=anon share=private",
            Answer::Reply(reply(true, "addr=0x1000", &[], &[warn])),
        )
        .expect("reset", "", ok("", &[]))
        .expect("tainted", "", ok("value=512", &[]));
    let outcome = run(&mut fake, &loaded).unwrap();
    assert_eq!(outcome.status, Status::Fail);
    assert!(outcome.tainted);
    assert_eq!(outcome.splats.len(), 1);
    let text: Vec<String> = outcome.problems.iter().map(|p| p.message()).collect();
    assert!(text.iter().any(|p| p.contains("kernel splat: WARNING")), "{text:?}");
    assert!(text.iter().any(|p| p.contains("newly tainted: W")), "{text:?}");
}

/// The refusal of a request whose worker hung, as the agent words it on 6.12.
fn hung(stack: &str) -> Answer {
    Answer::Reply(reply(
        false,
        &format!("errno=110 msg=worker-hung pid=61 wchan=handle_userfault stack={stack}"),
        &[],
        &[],
    ))
}

#[test]
fn a_hung_worker_is_one_problem_titled_by_its_stack_and_the_run_stops() {
    let loaded = scenario(
        "  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - write: { map: a, page: 0 }\n  - write: { map: a, page: 0 }\n",
    );
    let stack = "handle_userfault+0x4a8/0x5f0,do_anonymous_page+0x39c/0x6f0,__handle_mm_fault+0x7e8/0xf20,\
                 handle_mm_fault+0xe8/0x2a0,do_page_fault+0x13c/0x5a0";
    let mut fake = FakeAgent::new(info())
        .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", ok("addr=0x1000", &[]))
        .expect("write", "proc=p0 name=a page=0 count=1 value=3 tag=1", hung(stack))
        // No third step: the teardown comes next.
        .expect("reset", "", ok("", &[]))
        .expect("tainted", "", ok("value=0", &[]));
    let outcome = run(&mut fake, &loaded).unwrap();
    assert_eq!(outcome.status, Status::Fail);
    let titles: Vec<String> = outcome.problems.iter().map(|p| p.title()).collect();
    assert_eq!(titles, ["Step: write hung in handle_userfault ← do_anonymous_page ← __handle_mm_fault"]);
    assert!(outcome.problems[0].message().starts_with("step 2 (write) hung in handle_userfault ← "));
    assert!(outcome.notes.iter().any(|n| n == "step 2: the run stops here, as its worker hung"), "{:?}", outcome.notes);
}

#[test]
fn a_worker_that_dies_is_one_problem_and_its_later_steps_are_skipped() {
    let loaded = scenario(
        "  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - fork: { child: c1 }\n  - write: { proc: c1, map: a, page: 0 }\n  - write: { map: a, page: 0 }\n  - compact: {}\n",
    );
    let segv = "6,300,1000;init[61]: unhandled exception: DABT (lower EL), ESR 0x0000000092000046, level 2 translation fault in init[b65c,400000+ad000]";
    let died = Answer::Reply(reply(false, "errno=3 msg=worker-died pid=61 signal=11", &[], &[segv]));
    let mut fake = FakeAgent::new(info())
        .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", ok("addr=0x1000", &[]))
        .expect("fork", "proc=p0 child=c1", died)
        // Steps 3 and 4 name the child p0 never made and p0; step 5 names no process.
        .expect("compact", "", ok("", &[]))
        .expect("reset", "", ok("", &[]))
        .expect("tainted", "", ok("value=0", &[]));
    let outcome = run(&mut fake, &loaded).unwrap();
    let titles: Vec<String> = outcome.problems.iter().map(|p| p.title()).collect();
    let how =
        "SIGSEGV (init[#]: unhandled exception: DABT (lower EL), ESR #, level # translation fault in init[#,#+#])";
    assert_eq!(titles, [format!("Step: fork: the worker died of {how}")]);
    assert!(outcome.notes.iter().any(|n| n == "steps 3, 4 skipped: a process they name died"), "{:?}", outcome.notes);
}

#[test]
fn a_place_the_kernel_filled_stops_the_run_with_a_note_not_a_failure() {
    let loaded = scenario(
        "  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - mmap: { name: b, pages: 4, backing: anon, share: private, at: { after: a, gap: 1 } }\n  - write: { map: b, page: 0 }\n",
    );
    let taken = Answer::Reply(reply(false, "errno=17 msg=taken", &[], &[]));
    let mut fake = FakeAgent::new(info())
        .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", ok("addr=0x1000", &[]))
        .expect("mmap", "proc=p0 name=b pages=4 backing=anon share=private at=2 at_map=a", taken)
        // No write: the run stops at the taken place.
        .expect("reset", "", ok("", &[]))
        .expect("tainted", "", ok("value=0", &[]));
    let outcome = run(&mut fake, &loaded).unwrap();
    fake.assert_done();
    assert_eq!(outcome.status, Status::Pass, "{:?}", outcome.problems);
    let note =
        "step 2: mmap to its place: the range is taken by a mapping the kernel placed (EEXIST); the run stops here";
    assert!(outcome.notes.iter().any(|n| n == note), "{:?}", outcome.notes);
}
