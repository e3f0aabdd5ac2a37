//! `rmapcheck shell`: a live guest with the module loaded, driven a line at a time.
//! A line is a step in the scenario language, a raw /proc/mtest command, a view, or
//! `save FILE.yaml`. Steps are validated with every step before them, played through
//! the runner's session, and shown as `replay` shows a step. The terminal (line editing,
//! history) is `ui::shell`'s; this is the engine, testable without one.
//!
//! Architecture invariant: a saved session is exactly its steps, so `rmapcheck run`
//! on it sends the guest the same requests and finds the same results.

use crate::check::dmesg;
use crate::check::oracle::{self, Truth};
use crate::check::outcome::Outcome;
use crate::report::replay::step_text;
use crate::run::replay::{view, Seen};
use crate::run::runner::Session;
use crate::scenario::{self, Loaded, Scenario, Step};
use crate::vm::guest::{Fault, Guest};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Steps, one per line, in the scenario language (proc: defaults to p0):
  mmap: { name: a, pages: 4, backing: anon, share: private }
  write: { map: a, page: 0 }        fork: { child: c1 }        findpage: { map: a, page: 0 }
  check: all                        exit: { proc: c1 }         (and munmap, mprotect, mremap, madvise, read, findtask, ksm)
Views and commands:
  maps [PROC]        each process's mappings: pid, address, PFN per page
  truth MAP          MAP in every process: PFN per page and who shares it
  mtest TEXT         write TEXT to /proc/mtest, e.g. mtest findpage <pid> 0x<addr>; shows the module's lines
  steps              the steps so far, as YAML
  save FILE.yaml     write the steps as a scenario that `rmapcheck run` replays
  help               this text
  quit               end the session (so does end of input)";

/// What a line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Text to show.
    Text(String),
    /// A line that could not be used; the session is unchanged.
    Error(String),
    Quit,
}

pub struct Shell<'g> {
    session: Session<'g>,
    seen: Seen,
    steps: Vec<Step>,
}

/// The session's name in saved files and results.
const NAME: &str = "shell";

fn loaded(steps: Vec<Step>, path: &Path) -> Loaded {
    let about = "recorded in rmapcheck shell".to_string();
    Loaded {
        path: path.to_path_buf(),
        scenario: Scenario {
            name: NAME.into(),
            about,
            steps,
            expect: Vec::new(),
            mthp: Vec::new(),
            known_bug: None,
            text: None,
        },
    }
}

impl<'g> Shell<'g> {
    /// Start on `guest`: every workload process is reset, `p0` is fresh.
    pub fn start(guest: &'g mut Guest) -> Result<Shell<'g>, Fault> {
        let session = Session::start(guest, &loaded(Vec::new(), Path::new("(shell)")), &[])?;
        Ok(Shell { session, seen: Seen::default(), steps: Vec::new() })
    }

    /// The steps so far as a scenario named `name`.
    pub fn scenario(&self, name: &str) -> Scenario {
        let mut s = loaded(self.steps.clone(), Path::new("")).scenario;
        s.name = name.to_string();
        s
    }

    /// Handle one line. A guest fault ends the session (`Err`).
    pub fn line(&mut self, line: &str) -> Result<Said, Fault> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        Ok(match word {
            "" => Said::Text(String::new()),
            w if w.starts_with('#') => Said::Text(String::new()),
            "help" | "?" => Said::Text(HELP.to_string()),
            "quit" | "q" => Said::Quit,
            "steps" => Said::Text(scenario::to_yaml(&self.scenario(NAME), "")),
            "save" => self.save(rest),
            "maps" => {
                let truth = self.session.truth()?;
                maps_text(&truth, (!rest.is_empty()).then_some(rest))
            }
            "truth" => {
                let truth = self.session.truth()?;
                truth_text(&truth, rest)
            }
            "mtest" => self.mtest(rest)?,
            _ => self.step(line)?,
        })
    }

    fn save(&self, file: &str) -> Said {
        if file.is_empty() {
            return Said::Error("save FILE.yaml: name the file".into());
        }
        if self.steps.is_empty() {
            return Said::Error("nothing to save: no step has been played".into());
        }
        let path = PathBuf::from(file);
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name: String =
            stem.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect();
        let name = if name.is_empty() { NAME.to_string() } else { name };
        let yaml = scenario::to_yaml(&self.scenario(&name), "recorded in rmapcheck shell; replay: rmapcheck run FILE");
        match crate::cache::write_atomic(&path, yaml.as_bytes()) {
            Ok(()) => Said::Text(format!("saved {} steps to {}", self.steps.len(), path.display())),
            Err(e) => Said::Error(format!("cannot write {}: {e:#}", path.display())),
        }
    }

    /// A raw write to /proc/mtest, with the kernel log lines it brought.
    fn mtest(&mut self, text: &str) -> Result<Said, Fault> {
        if text.is_empty() {
            return Ok(Said::Error("mtest TEXT: e.g. mtest findpage <pid> 0x<addr>".into()));
        }
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        let reply = self.session.guest().request("mtest", &format!("hex={hex}"))?;
        let mut out = String::new();
        for r in reply.kmsg.iter().filter_map(|k| dmesg::parse_record(k)) {
            let _ = writeln!(out, "{}", r.text);
        }
        let _ = match (reply.ok, reply.errno()) {
            (true, _) => write!(out, "ok ({})", reply.get("ret").unwrap_or("?")),
            (false, errno) => write!(out, "error: errno {}", errno.unwrap_or(0)),
        };
        Ok(Said::Text(out))
    }

    /// Parse `line` as one more step, validate it after the steps so far, and play it.
    fn step(&mut self, line: &str) -> Result<Said, Fault> {
        let step = match parse_step(&self.steps, line) {
            Ok(s) => s,
            Err(e) => return Ok(Said::Error(e)),
        };
        self.session.step(&step)?;
        self.steps.push(step.clone());
        let v = view(&mut self.session, self.steps.len(), &step, &mut self.seen)?;
        let mut text = step_text(&v, None, false);
        // What the step itself recorded (a findpage's walk, a check's coverage).
        if let (Step::Findpage(_), Some(f)) = (&step, self.session.outcome().findpages.last()) {
            let _ =
                writeln!(text, "   findpage {} {}: {} order={} mapcount={}", f.proc, f.at, f.kind, f.order, f.mapcount);
            for vma in &f.vmas {
                let _ = writeln!(text, "     {vma}");
            }
        }
        if let (Step::Check(_), Some(c)) = (&step, self.session.outcome().checks.last()) {
            let _ = writeln!(text, "   {c}");
        }
        Ok(Said::Text(text.trim_end().to_string()))
    }

    /// End the session: teardown, splats, taint; the outcome `rmapcheck run` would give
    /// the saved steps.
    pub fn finish(self) -> Result<Outcome, Fault> {
        let mut o = self.session.finish(&[], None)?;
        o.file = String::new();
        Ok(o)
    }
}

/// `line` as the step after `before`, checked by the scenario validator with them. An
/// error names the column in the line.
pub fn parse_step(before: &[Step], line: &str) -> Result<Step, String> {
    let line = line.strip_prefix("- ").unwrap_or(line);
    if line.contains('\n') {
        return Err("one step per line".into());
    }
    let mut text = String::from("name: shell\nabout: shell\nsteps:\n");
    for s in before {
        let _ = writeln!(text, "  - {}", scenario::step_yaml(s));
    }
    const INDENT: usize = 4;
    let _ = writeln!(text, "  - {line}");
    let this_line = before.len() + 4;
    match scenario::parse(Path::new("line"), &text) {
        Ok(mut s) => s.steps.pop().ok_or_else(|| "not a step".to_string()),
        Err(errors) => Err(errors
            .0
            .iter()
            .map(|e| {
                if e.pos.line == this_line {
                    format!("col {}: {}", e.pos.col.saturating_sub(INDENT).max(1), e.msg)
                } else {
                    e.msg.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// `maps [PROC]`: each process's named mappings, with pid and address for raw commands.
pub fn maps_text(truth: &Truth, proc: Option<&str>) -> Said {
    let mut s = String::new();
    for p in truth.procs.iter().filter(|p| proc.is_none_or(|want| p.label == want)) {
        let _ = writeln!(s, "{} (pid {})", p.label, p.pid);
        for m in &p.maps {
            let pfns: Vec<String> = m.pfns.iter().map(|f| f.map_or("-".into(), |f| format!("0x{f:x}"))).collect();
            let _ = writeln!(s, "  {} at 0x{:x}: {}", m.name, m.addr, pfns.join(" "));
        }
    }
    match (s.is_empty(), proc) {
        (true, Some(p)) => Said::Error(format!("no live process '{p}' with named mappings")),
        (true, None) => Said::Text("no named mappings".into()),
        _ => Said::Text(s.trim_end().to_string()),
    }
}

/// `truth MAP`: that mapping in every process, page by page, with who shares each page.
pub fn truth_text(truth: &Truth, map: &str) -> Said {
    if map.is_empty() {
        return Said::Error("truth MAP: name a mapping".into());
    }
    let mut s = String::new();
    for p in &truth.procs {
        for m in p.maps.iter().filter(|m| m.name == map) {
            for (i, pfn) in m.pfns.iter().enumerate() {
                let _ = match pfn {
                    Some(f) => {
                        let others: Vec<String> = truth
                            .holders(*f)
                            .iter()
                            .filter(|h| !(h.0 == p.label && h.1 == m.name && h.2 == i as u64))
                            .map(oracle::slot_text)
                            .collect();
                        let with = if others.is_empty() {
                            String::new()
                        } else {
                            format!(", shared with {}", others.join(", "))
                        };
                        writeln!(s, "{} {map}[{i}]: pfn 0x{f:x}{with}", p.label)
                    }
                    None => writeln!(s, "{} {map}[{i}]: not present", p.label),
                };
            }
        }
    }
    if s.is_empty() {
        Said::Error(format!("no live process has a mapping '{map}'"))
    } else {
        Said::Text(s.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::oracle::{MapPages, ProcPages};

    #[test]
    fn a_line_is_validated_with_the_steps_before_it() {
        let mmap = parse_step(&[], "mmap: { name: a, pages: 2, backing: anon, share: private }").unwrap();
        let before = vec![mmap];
        assert!(matches!(parse_step(&before, "write: { map: a, page: 1 }"), Ok(Step::Write(_))));
        assert!(matches!(parse_step(&before, "- fork: { child: c1 }"), Ok(Step::Fork(_))));
        let e = parse_step(&before, "write: { map: b, page: 0 }").unwrap_err();
        assert!(e.starts_with("col ") && e.contains("unknown mapping 'b'"), "{e}");
        let e = parse_step(&before, "write: { map: a, page: 5 }").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        assert!(parse_step(&before, "frobnicate: {}").unwrap_err().contains("unknown variant"));
        assert!(parse_step(&[], "write: { map: a, page: 0 }").is_err(), "no mapping a yet");
    }

    fn truth() -> Truth {
        let map = |pfns: &[Option<u64>]| MapPages { name: "a".into(), addr: 0x1000, pfns: pfns.to_vec() };
        Truth {
            procs: vec![
                ProcPages { label: "p0".into(), pid: 10, maps: vec![map(&[Some(5), None])] },
                ProcPages { label: "c1".into(), pid: 11, maps: vec![map(&[Some(5), Some(7)])] },
            ],
            page_size: 4096,
            swapped: Default::default(),
            exclusive: Default::default(),
            tails: Default::default(),
            large: Default::default(),
            vmas: Default::default(),
        }
    }

    #[test]
    fn views_show_pids_addresses_and_sharing() {
        let Said::Text(m) = maps_text(&truth(), Some("c1")) else { panic!() };
        assert_eq!(m, "c1 (pid 11)\n  a at 0x1000: 0x5 0x7");
        assert!(matches!(maps_text(&truth(), Some("c9")), Said::Error(_)));
        let Said::Text(t) = truth_text(&truth(), "a") else { panic!() };
        assert_eq!(
            t,
            "p0 a[0]: pfn 0x5, shared with c1 a[0]\np0 a[1]: not present\nc1 a[0]: pfn 0x5, shared with p0 a[0]\nc1 a[1]: pfn 0x7"
        );
        assert!(matches!(truth_text(&truth(), "zz"), Said::Error(_)));
    }
}
