//! The campaign on fake guests: each run plays through the real runner and the pool's
//! retirement rule on a fake agent whose kernel WARNs (or hangs) when a process forks
//! a child named c2, so the campaign finds, shrinks, saves and retires as on a VM.

use super::*;
use crate::image::kernel::Kernel;
use crate::run::pool::{play_on, Played};
use crate::run::runner::errored;
use crate::vm::fake::{ok, reply, Answer, FakeAgent};
use crate::vm::guest::Info;

const WARN: &str = "4,900,1000;WARNING: CPU: 0 PID: 1 at mm/rmap.c:1234 folio_add_anon_rmap_ptes+0x1c/0x2c0";
/// Its finding title.
const TITLE: &str = "O3: WARNING: CPU: # PID: # at mm/rmap.c:# folio_add_anon_rmap_ptes";

/// How the fake kernel fails when a process forks c2.
#[derive(Clone, Copy)]
enum Bug {
    Warn,
    Hang,
}

/// Fake guests for the campaign: a new one per run, as after a retirement.
struct FakeGuests<'a> {
    bug: Bug,
    plays: AtomicU64,
    /// Per play: whether the guest hit the bug, and why it was retired, if it was.
    fates: Mutex<Vec<(bool, Option<String>)>>,
    /// No guest boots: every play is a boot failure.
    no_boot: bool,
    /// Set this flag (Ctrl-C) once this many scenarios were played.
    stop_after: Option<(u64, &'a AtomicBool)>,
}

impl<'a> FakeGuests<'a> {
    fn new(bug: Bug) -> FakeGuests<'a> {
        FakeGuests { bug, plays: AtomicU64::new(0), fates: Mutex::default(), no_boot: false, stop_after: None }
    }

    /// Panics unless exactly the guests that hit the bug were retired, each for `why`.
    fn assert_retired_for(&self, why: &str) {
        let fates = self.fates.lock().unwrap();
        assert!(fates.iter().any(|(hit, _)| *hit), "no play hit the bug");
        for (n, (hit, retired)) in fates.iter().enumerate() {
            let expected = hit.then(|| why.to_string());
            assert_eq!(retired, &expected, "play {}: {fates:?}", n + 1);
        }
    }
}

pub(crate) fn info() -> Info {
    Info { key: "6.12".into(), release: "6.12.117+deb12-arm64".into(), page_size: 4096, ..Info::default() }
}

impl Play for FakeGuests<'_> {
    fn play(&self, loaded: &Loaded) -> Played {
        let n = self.plays.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((_, stop)) = self.stop_after.filter(|(after, _)| n >= *after) {
            stop.store(true, Ordering::SeqCst);
        }
        let console = PathBuf::new();
        if self.no_boot {
            let fault = Fault::Boot { why: "no kernel".into(), console: String::new() };
            return Played { outcome: errored(loaded, &info(), &fault), fault: Some(fault), console };
        }
        let bug = self.bug;
        let mut guest = FakeAgent::answering(info(), move |op, args| match op {
            "fork" if args.contains("child=c2") => match bug {
                Bug::Warn => Answer::Reply(reply(true, "pid=2", &[], &[WARN])),
                Bug::Hang => Answer::Fault(Fault::Hang { detail: "fork".into(), splat: None, console: String::new() }),
            },
            "tainted" => ok("value=0", &[]),
            _ => ok("", &[]),
        });
        let (ran, retire) = play_on(&mut guest, loaded);
        let hit = guest.sent.iter().any(|r| r.starts_with("fork ") && r.contains("child=c2"));
        self.fates.lock().unwrap().push((hit, retire));
        match ran {
            Ok(outcome) => Played { outcome, fault: None, console },
            Err(fault) => Played { outcome: errored(loaded, &info(), &fault), fault: Some(fault), console },
        }
    }

    fn boots(&self) -> u64 {
        self.plays.load(Ordering::SeqCst)
    }
}

pub(crate) fn prepared() -> Prepared {
    let kernel = Kernel {
        key: "6.12".into(),
        release: "6.12.117+deb12-arm64".into(),
        page_size: 4096,
        image: PathBuf::from("/nonexistent/Image"),
        build_dir: PathBuf::from("/nonexistent/build"),
        modules_dir: None,
        gcc_major: 12,
        toolchain_suite: None,
        header_debs: Vec::new(),
    };
    Prepared { kernel, initrd: PathBuf::from("/nonexistent/initrd") }
}

/// A campaign over `seeds` (name, steps) only, in a temporary folder.
struct Setup {
    dir: tempfile::TempDir,
    opts: Options,
}

fn setup(seeds: &[(&str, &str)], budget: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seeds");
    std::fs::create_dir_all(&seed_dir).unwrap();
    for (name, steps) in seeds {
        let text = format!("name: {name}\nabout: a seed\nsteps:\n{steps}");
        std::fs::write(seed_dir.join(format!("{name}.yaml")), text).unwrap();
    }
    let opts = Options {
        seed: 1,
        limit: Limit::Runs(seeds.len() as u64),
        jobs: 1,
        out: dir.path().join("out"),
        gen: GenConfig::default(),
        module_params: Vec::new(),
        kernel_args: "--kernel 6.12".into(),
        shrink_budget: budget,
        workroot: dir.path().join("work"),
        gdb: None,
        corpus: vec![seed_dir],
        shard: Shard::default(),
        coverage: false,
        unguided: false,
        known_bugs: Vec::new(),
        stop_at_first_finding: false,
    };
    Setup { dir, opts }
}

/// A seed that forks c2 (the bug) among steps the shrinker can cut.
const FORKS_C2: &str = "  - mmap: { name: a, pages: 4, backing: anon, share: private }
  - write: { map: a, page: 0, pages: 4 }
  - fork: { child: c1 }
  - mmap: { name: b, pages: 2, backing: memfd, share: shared }
  - write: { proc: c1, map: a, page: 1 }
  - write: { map: b, page: 0 }
  - fork: { child: c2 }
  - write: { proc: c2, map: a, page: 2 }
  - exit: { proc: c1 }
";

const CLEAN: &str = "  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - write: { map: a, page: 0 }\n";

fn campaign(s: &Setup, guests: &FakeGuests, stop: &AtomicBool) -> Result<Summary> {
    std::fs::create_dir_all(&s.opts.workroot)?;
    std::fs::create_dir_all(&s.opts.out)?;
    run_on(&prepared(), &s.opts, stop, &|_| {}, guests)
}

#[test]
fn a_failure_is_shrunk_within_its_budget_saved_and_its_guests_retired() {
    let s = setup(&[("a", FORKS_C2)], 4);
    let guests = FakeGuests::new(Bug::Warn);
    let summary = campaign(&s, &guests, &AtomicBool::new(false)).unwrap();
    assert!(!summary.stopped);
    let [found] = &summary.found[..] else { panic!("{:?}", summary.found) };
    assert_eq!(found.title, TITLE);
    // The run, the confirming re-run, and at most the budget of candidates.
    let plays = guests.plays.load(Ordering::SeqCst);
    assert_eq!(plays, 2 + 4, "{}", found.summary);
    assert!(found.summary.contains("in 4 re-runs"), "{}", found.summary);
    assert!(found.shrunk_steps < found.full_steps);
    let folder = found.folder.as_ref().expect("saved");
    let shrunk = std::fs::read_to_string(folder.join("shrunk.yaml")).unwrap();
    assert!(shrunk.contains("fork: { child: \"c2\" }"), "{shrunk}");
    // Every guest that ran a failing candidate WARNed, and was retired for it.
    guests.assert_retired_for(&format!("kernel splat: {}", TITLE.trim_start_matches("O3: ")));
    drop(s.dir);
}

#[test]
fn a_big_budget_shrinks_to_the_fork_that_warns() {
    let s = setup(&[("a", FORKS_C2)], 200);
    let guests = FakeGuests::new(Bug::Warn);
    let summary = campaign(&s, &guests, &AtomicBool::new(false)).unwrap();
    let found = &summary.found[0];
    let shrunk = std::fs::read_to_string(found.folder.as_ref().unwrap().join("shrunk.yaml")).unwrap();
    let steps: Vec<&str> = shrunk.lines().filter(|l| l.trim_start().starts_with("- ")).collect();
    assert_eq!(steps.len(), 1, "{shrunk}");
    assert!(steps[0].contains("fork") && steps[0].contains("c2"), "{shrunk}");
}

#[test]
fn a_guest_that_hangs_is_retired_and_its_failure_titled_by_the_fault() {
    let s = setup(&[("a", FORKS_C2), ("b", CLEAN)], 2);
    let guests = FakeGuests::new(Bug::Hang);
    let summary = campaign(&s, &guests, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.last.runs, 2);
    let titles: Vec<&str> = summary.found.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["guest hang"]);
    // Every guest that hung was retired; the others (the clean seed's, and candidates
    // without the fork) went back to the pool.
    guests.assert_retired_for("guest fault (hang)");
}

#[test]
fn a_guest_that_cannot_boot_ends_the_campaign_with_an_error() {
    let s = setup(&[("a", CLEAN), ("b", CLEAN)], 2);
    let mut guests = FakeGuests::new(Bug::Warn);
    guests.no_boot = true;
    let stop = AtomicBool::new(false);
    let err = campaign(&s, &guests, &stop).unwrap_err();
    assert!(format!("{err:#}").contains("no kernel"), "{err:#}");
    assert_eq!(guests.plays.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stop_mid_campaign_ends_it_and_keeps_what_was_found() {
    // Seed a fails and is shrunk (2 plays and a budget of 2); seed b is played, and a
    // stop arrives during its run; seed c never runs.
    let s = setup(&[("a", FORKS_C2), ("b", CLEAN), ("c", CLEAN)], 2);
    let stop = AtomicBool::new(false);
    let mut guests = FakeGuests::new(Bug::Warn);
    guests.stop_after = Some((5, &stop));
    let summary = campaign(&s, &guests, &stop).unwrap();
    assert!(summary.stopped);
    assert_eq!(guests.plays.load(Ordering::SeqCst), 5);
    // The run cut short by the stop proves nothing and is not counted.
    assert_eq!(summary.last.runs, 1);
    let [found] = &summary.found[..] else { panic!("{:?}", summary.found) };
    assert!(found.folder.as_ref().is_some_and(|f| f.join("shrunk.yaml").is_file()));
}

#[test]
fn a_stop_while_shrinking_winds_the_shrinker_down_and_saves_what_it_has() {
    let s = setup(&[("a", FORKS_C2), ("b", CLEAN)], 50);
    let stop = AtomicBool::new(false);
    let mut guests = FakeGuests::new(Bug::Warn);
    guests.stop_after = Some((4, &stop));
    let summary = campaign(&s, &guests, &stop).unwrap();
    assert!(summary.stopped);
    // The stop came at the 4th play: the shrinker asks for no more.
    assert_eq!(guests.plays.load(Ordering::SeqCst), 4);
    let [found] = &summary.found[..] else { panic!("{:?}", summary.found) };
    assert!(found.folder.is_some(), "{found:?}");
    assert!(found.summary.contains("shrunk"), "{}", found.summary);
}
