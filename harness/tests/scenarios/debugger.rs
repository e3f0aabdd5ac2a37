//! The debugging commands, end to end through the binary:
//! - `vm::debugger_replay::<kernel>`: `replay --step` on a shrunk fuzz
//!   reproducer (planted bug) stops at the failing step and highlights it in JSON, text
//!   and HTML;
//! - `vm::debugger_shell::<kernel>`: a `shell` session driven through stdin is
//!   saved, and `rmapcheck run` on the saved file gives the same results;
//! - `vm::debugger_gdb::<kernel>` (one kernel): `shell --gdb` prints a gdb command that
//!   attaches; gdb-multiarch reads a register and detaches, and the guest goes on.

use libtest_mimic::{Failed, Trial};
use rmapcheck::image::kernels::{EntryKind, Manifest};
use rmapcheck::report;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
}

/// Start `cmd` with its output captured, and stdin piped when `input`, else empty.
fn spawn(cmd: &mut Command, input: bool) -> Result<Child, Failed> {
    cmd.stdin(if input { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string().into())
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay").join(name)
}

fn tmpdir() -> Result<tempfile::TempDir, Failed> {
    tempfile::Builder::new()
        .prefix("debugger-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .map_err(|e| e.to_string().into())
}

/// Wait for `child` up to `limit`, killing it (by its own handle) after that.
fn wait(mut child: Child, limit: Duration) -> Result<Output, Failed> {
    let deadline = Instant::now() + limit;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("rmapcheck took longer than {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().map_err(|e| e.to_string().into())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const LIMIT: Duration = Duration::from_secs(300);

pub fn trials(key: &str, first: bool) -> Vec<Trial> {
    let mut out = Vec::new();
    let k = key.to_string();
    out.push(Trial::test(format!("vm::debugger_replay::{key}"), move || replay(&k)));
    let k = key.to_string();
    out.push(Trial::test(format!("vm::debugger_shell::{key}"), move || shell_session(&k)));
    if first {
        let k = key.to_string();
        out.push(Trial::test(format!("vm::debugger_gdb::{key}"), move || gdb_attach(&k)));
    }
    out
}

fn replay(key: &str) -> Result<(), Failed> {
    let tmp = tmpdir()?;
    let html = tmp.path().join("replay.html");
    let file = fixture("misreport_o1.yaml");
    let run = |format: &str| {
        let child = spawn(
            bin()
                .args(["replay", "--step", "--kernel", key, "--module-param", "misreport=1", "--progress", "plain"])
                .args(["--format", format, "--html"])
                .arg(&html)
                .arg(&file),
            false,
        )?;
        wait(child, LIMIT)
    };
    let out = run("json")?;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))?;
    if out.status.code() != Some(1) {
        return Err(format!("replay exited {:?}, want 1 (a failure): {}", out.status, text(&out.stderr)).into());
    }
    // The planted bug hides the newest fork's mapping: step 4 forks c4 and the walk of
    // the touched page misses it, before the file's own `check: all` at step 5.
    if json["first_failure"] != 4 || json["first_disagreement"] != 4 || json["played"] != 4 {
        return Err(format!("want the failure at step 4 and a stop there: {json:#}").into());
    }
    let step4 = &json["steps"][3];
    let problems = step4["problems"].to_string();
    if !problems.contains("O1") || !problems.contains("the walk missed c4") {
        return Err(format!("step 4 should show O1 missing c4: {step4:#}").into());
    }
    if json["steps"][2]["problems"].as_array().is_none_or(|p| !p.is_empty()) {
        return Err(format!("step 3 should be clean: {:#}", json["steps"][2]).into());
    }
    let page = std::fs::read_to_string(&html).map_err(|e| format!("{}: {e}", html.display()))?;
    for want in ["href=\"#first-disagreement\"", "id=\"first-disagreement\"><h2>step 4 of 5", "<svg class=\"findpage\""]
    {
        if !page.contains(want) {
            return Err(format!("the HTML lacks {want}").into());
        }
    }
    if page.contains("<script") {
        return Err("the HTML has a script".into());
    }
    let out = run("text")?;
    let t = text(&out.stdout);
    if !t.contains(">> step 4/5: fork: { proc: \"c3\", child: \"c4\" }  FAIL")
        || !t.contains("stopped after step 4 of 5")
    {
        return Err(format!("the text does not highlight step 4:\n{t}").into());
    }
    Ok(())
}

/// The lines a person would type, with one mistake that must be refused and a view.
const SESSION: &[&str] = &[
    "mmap: { name: a, pages: 3, backing: anon, share: private }",
    "mmap: { name: shm, pages: 2, backing: dev-zero, share: shared }",
    "write: { map: a, page: 0, pages: 2 }",
    "write: { map: shm, page: 1 }",
    "fork: { child: c1 }",
    "write: { proc: c1, map: a, page: 1 }",
    "write: { proc: c1, map: nosuch, page: 0 }",
    "maps c1",
    "truth a",
    "findpage: { map: a, page: 0 }",
    "findpage: { proc: c1, map: a, page: 1 }",
    "findpage: { map: shm, page: 1 }",
    "check: all",
];

fn shell_session(key: &str) -> Result<(), Failed> {
    let tmp = tmpdir()?;
    let saved = tmp.path().join("session.yaml");
    let (shell_results, run_results) = (tmp.path().join("shell.json"), tmp.path().join("run.json"));
    let mut child =
        spawn(bin().args(["shell", "--kernel", key, "--progress", "plain", "--results"]).arg(&shell_results), true)?;
    {
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut input = SESSION.join("\n");
        input.push_str(&format!("\nsave {}\nquit\n", saved.display()));
        stdin.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = wait(child, LIMIT)?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // The bad line is refused with its line and column, and the session goes on.
    if !stderr.contains("line 7: col ") || !stderr.contains("unknown mapping 'nosuch'") {
        return Err(format!("the bad line was not refused with its place:\n{stderr}").into());
    }
    if out.status.code() != Some(2) {
        return Err(format!("a session with a refused line exits 2, got {:?}\n{stderr}", out.status).into());
    }
    for want in ["c1 (pid ", "c1 a[1]: pfn 0x", "findpage p0 a[0]: anon order=0 mapcount=2", "saved 10 steps to"] {
        if !stdout.contains(want) {
            return Err(format!("the session output lacks '{want}':\n{stdout}").into());
        }
    }
    let child = spawn(
        bin().args(["run", "--kernel", key, "--progress", "plain", "--results"]).arg(&run_results).arg(&saved),
        false,
    )?;
    let out = wait(child, LIMIT)?;
    if !out.status.success() {
        return Err(format!("run on the saved session failed: {}{}", text(&out.stdout), text(&out.stderr)).into());
    }
    let read = |p: &Path| report::results::read(p).map_err(|e| Failed::from(format!("{e:#}")));
    let (shell, run) = (read(&shell_results)?, read(&run_results)?);
    let (a, b) = (report::snapshot(&shell[0]), report::snapshot(&run[0]));
    if a != b || !a.contains("findpage c1 a[1]") {
        return Err(format!("the shell and the replay differ:\n{}", rmapcheck::check::expect::diff(&a, &b)).into());
    }
    Ok(())
}

fn gdb_attach(key: &str) -> Result<(), Failed> {
    if Command::new("gdb-multiarch").arg("--version").output().is_err() {
        return Err("gdb-multiarch is missing; run scripts/setup".into());
    }
    let mut child = spawn(bin().args(["shell", "--gdb", "--kernel", key, "--progress", "plain"]), true)?;
    // Read stderr until the guest is up, keeping the gdb line; the rest is drained by a
    // thread so the child never blocks on a full pipe.
    let mut stderr = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let mut seen = String::new();
    let mut command = None;
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).map_err(|e| e.to_string())? == 0 || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the shell ended before its guest was up:\n{seen}").into());
        }
        seen.push_str(&line);
        if line.trim_start().starts_with("gdb-multiarch ") {
            command = Some(line.trim().to_string());
        }
        if line.contains("READY in") {
            break;
        }
    }
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let Some(command) = command else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("no gdb-multiarch line:\n{seen}").into());
    };
    // The printed command, as a person would paste it, in batch mode.
    let gdb = Command::new("timeout")
        .args(["120", "sh", "-c"])
        .arg(format!("{command} -batch -ex 'info registers pc' -ex detach"))
        .output()
        .map_err(|e| e.to_string())?;
    let gdb_out = text(&gdb.stdout) + &text(&gdb.stderr);
    let pc = gdb_out.lines().find(|l| l.starts_with("pc ") && l.contains("0x")).map(str::to_string);
    // The guest goes on after gdb detached: it plays steps.
    {
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let lines = "mmap: { name: a, pages: 1, backing: anon, share: private }\nwrite: { map: a, page: 0 }\nquit\n";
        stdin.write_all(lines.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = wait(child, LIMIT)?;
    let rest = drain.join().unwrap_or_default();
    let Some(pc) = pc else {
        return Err(format!("gdb read no pc with `{command}`:\n{gdb_out}").into());
    };
    let stdout = text(&out.stdout);
    if !out.status.success() || !stdout.contains("walk     anon order=0, mapped by p0") {
        return Err(format!("the guest did not go on after gdb detached:\n{stdout}\n{seen}{rest}").into());
    }
    // The command uses the symbols when there are any, and says so when there are none.
    let missing = seen.contains("symbols are missing");
    if command.contains("vmlinux") == missing {
        return Err(format!("the command and the symbols note disagree:\n{seen}").into());
    }
    // A source-built kernel keeps its vmlinux: it has symbols, always.
    let manifest = Manifest::load().map_err(|e| format!("{e:#}"))?;
    if missing && manifest.entry(key).is_ok_and(|e| e.kind == EntryKind::Source) {
        return Err(format!("{key} is built from source, yet its symbols are missing:\n{seen}").into());
    }
    // With symbols, gdb names the function the pc is in: `pc 0x... <cpu_do_idle+16>`.
    if !missing && !pc.contains('<') {
        return Err(format!("gdb has the vmlinux but named no symbol: {pc}").into());
    }
    Ok(())
}
