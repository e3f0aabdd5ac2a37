use super::*;
use crate::check::problem::Problem;

/// /proc/PID/stack of a 6.12 worker that touched a userfaultfd-registered page nobody
/// serves (vm::worker_hang; the agent sends these frames comma-joined, without `[<0>] `).
const STACK_6_12: &str = "\
[<0>] handle_userfault+0x454/0x760
[<0>] do_anonymous_page+0x6e0/0x990
[<0>] __handle_mm_fault+0x550/0xbc0
[<0>] handle_mm_fault+0x16c/0x2a0
[<0>] do_page_fault+0x134/0x550
[<0>] do_translation_fault+0x60/0x80
[<0>] do_mem_abort+0x4c/0xa8
[<0>] el0_da+0x44/0xe8
[<0>] el0t_64_sync_handler+0x98/0xe0
[<0>] el0t_64_sync+0x190/0x198
";

/// The agent's refusal of that request, as it came.
const HUNG_6_12: &str = "errno=110 msg=worker-hung pid=125 stack=handle_userfault+0x454/0x760,\
do_anonymous_page+0x6e0/0x990,__handle_mm_fault+0x550/0xbc0,handle_mm_fault+0x16c/0x2a0,\
do_page_fault+0x134/0x550,do_translation_fault+0x60/0x80,do_mem_abort+0x4c/0xa8,el0_da+0x44/0xe8,\
el0t_64_sync_handler+0x98/0xe0,el0t_64_sync+0x190/0x198 wchan=handle_userfault";

fn fields(text: &str) -> Fields {
    crate::wire::parse_fields(text)
}

#[test]
fn a_frame_is_its_function_without_offset_or_address() {
    assert_eq!(frame_function("[<0>] handle_userfault+0x454/0x760"), Some("handle_userfault"));
    assert_eq!(frame_function(" do_anonymous_page+0x6e0/0x990"), Some("do_anonymous_page"));
    assert_eq!(frame_function("[<ffff800080123456>] folio_lock.isra.0+0x1c/0x40"), Some("folio_lock.isra.0"));
    assert_eq!(frame_function("Call trace:"), None);
    assert_eq!(frame_function("task:init            state:S stack:0     pid:125"), None);
}

#[test]
fn a_stack_keeps_every_frame_but_the_schedulers_innermost_first() {
    let with_sleep =
        format!("[<0>] __switch_to+0xe4/0x150\n[<0>] __schedule+0x2a0/0x7c0\n[<0>] schedule+0x3c/0x100\n{STACK_6_12}");
    let frames = stack_functions(with_sleep.lines());
    assert_eq!(frames[..3], ["handle_userfault", "do_anonymous_page", "__handle_mm_fault"]);
    assert_eq!(frames.len(), 10);
    assert_eq!(frames, stack_functions(STACK_6_12.lines()));
}

#[test]
fn a_hang_is_titled_by_its_three_innermost_frames_the_same_in_every_run() {
    let kind = problem(7, "write", &fields(HUNG_6_12), &[]).unwrap();
    assert_eq!(kind.title(), "write hung in handle_userfault ← do_anonymous_page ← __handle_mm_fault");
    let message = Problem::new(kind).message();
    assert!(
        message.starts_with("step 7 (write) hung in handle_userfault ← do_anonymous_page ← __handle_mm_fault (stack: ")
    );
    // Another run has other offsets and another pid: the same title.
    let other = HUNG_6_12.replace("0x454/0x760", "0x458/0x770").replace("pid=125", "pid=301");
    assert_eq!(
        problem(3, "write", &fields(&other), &[]).unwrap().title(),
        "write hung in handle_userfault ← do_anonymous_page ← __handle_mm_fault"
    );
}

/// A sysrq-t dump on 6.12-debug (no CONFIG_STACKTRACE) with the hung worker, pid 30,
/// between other tasks (vm::worker_hang), as the kernel log records' text.
const SYSRQ_6_12_DEBUG: &[&str] = &[
    "task:khugepaged      state:S stack:0     pid:28    tgid:28    ppid:2      flags:0x00000008",
    "Call trace:",
    " __switch_to+0x88/0xb0",
    " __schedule+0x37c/0x458",
    " schedule+0x2c/0x48",
    " schedule_timeout+0x88/0xf8",
    " khugepaged+0x1a4/0x6d8",
    "task:init            state:S stack:0     pid:30    tgid:30    ppid:1      flags:0x00000004",
    "Call trace:",
    " __switch_to+0x88/0xb0",
    " __schedule+0x37c/0x458",
    " schedule+0x2c/0x48",
    " handle_userfault+0x2d8/0x544",
    " do_pte_missing+0x290/0x98c",
    " __handle_mm_fault+0x2f0/0x4a4",
    " handle_mm_fault+0x170/0x18c",
    " do_page_fault+0x218/0x348",
    " do_translation_fault+0x34/0x4c",
    " do_mem_abort+0x3c/0x88",
    " el0_da+0x20/0x4c",
    " el0t_64_sync_handler+0x68/0x128",
    " el0t_64_sync+0x14c/0x150",
    "task:kworker/u4:2    state:I stack:0     pid:31    tgid:31    ppid:2      flags:0x00000008",
    "Call trace:",
    " __switch_to+0x88/0xb0",
];

#[test]
fn without_a_stack_the_sysrq_dump_then_wchan_say_where() {
    let dump = SYSRQ_6_12_DEBUG.iter().copied();
    assert_eq!(sysrq_stack(dump.clone(), 30)[..3], ["handle_userfault", "do_pte_missing", "__handle_mm_fault"]);
    assert_eq!(sysrq_stack(dump.clone(), 30).len(), 10);
    // 6.1 pads the pid after the colon; a ppid of the same number is not the task.
    let old = ["task:init            state:S stack:    0 pid:  125 ppid:     1 flags:0x00000000", " pipe_read+0x1/0x2"];
    assert_eq!(sysrq_stack(old, 125), ["pipe_read"]);
    assert!(sysrq_stack(dump.clone(), 2).is_empty());
    assert!(sysrq_stack(dump, 999).is_empty());

    let log: Vec<String> = SYSRQ_6_12_DEBUG.iter().map(|l| l.to_string()).collect();
    let by_dump =
        problem(2, "write", &fields("errno=110 msg=worker-hung pid=30 sysrq=t wchan=handle_userfault"), &log).unwrap();
    assert_eq!(by_dump.title(), "write hung in handle_userfault ← do_pte_missing ← __handle_mm_fault");
    let by_wchan =
        problem(2, "write", &fields("errno=110 msg=worker-hung pid=125 wchan=handle_userfault"), &[]).unwrap();
    assert_eq!(by_wchan.title(), "write hung in handle_userfault");
    let blind = problem(2, "write", &fields("errno=35 msg=worker-hung"), &[]).unwrap();
    assert_eq!(blind.title(), "write hung (no kernel stack)");
}

#[test]
fn a_death_is_titled_by_its_signal_and_the_kernels_line() {
    let log = vec![
        // vm::worker_death on 6.12: the exception-trace line, then the registers.
        "init[125]: unhandled exception: DABT (lower EL), ESR 0x0000000092000046, level 2 translation fault in init[b65c,400000+ad000]"
            .to_string(),
        "CPU: 0 UID: 0 PID: 125 Comm: init Tainted: G           OE      6.12.117+deb12-arm64 #1  Debian 6.12.117-1~deb12u1"
            .to_string(),
        "pc : 000000000040b65c".to_string(),
    ];
    let kind = problem(4, "fork", &fields("errno=3 msg=worker-died pid=125 signal=11"), &log).unwrap();
    assert_eq!(
        kind.title(),
        "fork: the worker died of SIGSEGV (init[#]: unhandled exception: DABT (lower EL), ESR #, level # translation fault in init[#,#+#])"
    );
    assert_eq!(
        Problem::new(kind).message(),
        "step 4 (fork): the worker died of SIGSEGV (init[#]: unhandled exception: DABT (lower EL), ESR #, level # translation fault in init[#,#+#])"
    );
    // The same fault at a pc whose low bits are hex letters alone.
    let letters = vec![log[0].replace("b65c", "bcdc").replace("ad000", "ade00")];
    let kind = problem(4, "fork", &fields("errno=3 msg=worker-died pid=125 signal=11"), &letters).unwrap();
    assert!(kind.title().ends_with("translation fault in init[#,#+#])"), "{}", kind.title());
    let oom = vec!["Out of memory: Killed process 125 (init) total-vm:2048kB, anon-rss:1024kB".to_string()];
    let kind = problem(4, "write", &fields("errno=3 msg=worker-died pid=125 signal=9"), &oom).unwrap();
    assert_eq!(
        kind.title(),
        "write: the worker died of SIGKILL (Out of memory: Killed process # (init) total-vm:#kB, anon-rss:#kB)"
    );
    let exited = problem(4, "write", &fields("errno=3 msg=worker-died pid=125 status=1"), &[]).unwrap();
    assert_eq!(exited.title(), "write: the worker died of exit status 1");
}

#[test]
fn other_refusals_are_not_worker_failures() {
    assert_eq!(problem(1, "write", &fields("errno=14 msg=bad_address"), &[]), None);
    assert_eq!(signal_name(6), "SIGABRT");
    assert_eq!(signal_name(31), "signal 31");
}
