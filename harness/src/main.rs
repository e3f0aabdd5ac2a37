//! The `rmapcheck` command line: wires the library together, nothing more.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rmapcheck::check::outcome::{Outcome, Status};
use rmapcheck::error::{code, Error};
use rmapcheck::image::kernel::Kernel;
use rmapcheck::image::kernels::{self, Manifest};
use rmapcheck::image::prepare;
use rmapcheck::image::prepare::{Prepared, Target};
use rmapcheck::report::{html, results};
use rmapcheck::run::bench;
use rmapcheck::run::pool::{Hold, Pool};
use rmapcheck::signal;
use rmapcheck::ui::{self, Event, Reporter};
use rmapcheck::vm::guest::{Fault, Guest, Info};
use rmapcheck::{cache, fuzz, report, scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rmapcheck", version, about = "Test harness and fuzzer for Linux rmap correctness")]
#[command(after_help = rmapcheck::error::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How progress shows on stderr: bars on a terminal (auto), plain lines, or one JSON
    /// object per event.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    progress: ui::Style,
    /// Keep kernel pins strict: a pinned package the mirror no longer serves is an error
    /// (exit 3) instead of moving to the newest match. Also RMAPCHECK_LOCKED=1.
    #[arg(long, global = true)]
    locked: bool,
}

/// The one reporter every command's events go to.
static REPORTER: std::sync::OnceLock<Reporter> = std::sync::OnceLock::new();

fn reporter() -> &'static Reporter {
    REPORTER.get_or_init(Reporter::default)
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files or directories; default: scenarios/) on kernels.
    Run(RunArgs),
    /// Manage the kernel matrix.
    Kernels {
        #[command(subcommand)]
        command: KernelsCommand,
    },
    /// Check scenario files without booting anything.
    Check { paths: Vec<PathBuf> },
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Show a scenario's snapshots from every kernel side by side, marking differences.
    Diff { scenario: String },
    /// Write a static HTML report (index.html) and a Markdown summary from saved results.
    Report(ReportArgs),
    /// Play random scenarios on persistent guests; shrink and save every new failure.
    Fuzz(FuzzArgs),
    /// Run every sequence of up to --depth steps over a finite vocabulary (bounded
    /// exhaustive search); shrink and save every new failure as fuzz does.
    Sweep(SweepArgs),
    /// Measure boot, restore, warm and cold scenario rates, and request costs.
    Bench(BenchArgs),
    /// Replay one scenario a step at a time: what each step changed, and the first step
    /// at which an oracle disagrees (text or JSON on stdout, and an HTML page).
    Replay(ReplayArgs),
    /// An interactive session on a live guest with the module loaded: type steps in the
    /// scenario language, raw module commands and views; `save FILE.yaml` keeps it.
    #[command(after_help = rmapcheck::run::shell::HELP)]
    Shell(ShellArgs),
    /// Plant known rmap bugs in the debug kernel (images/mutants/) and time how fast the
    /// scenario suite and the fuzzer find each.
    Mutants(MutantsArgs),
    /// Find the commit of your kernel tree that introduced a finding: git bisect, each
    /// step an incremental build, a boot and a replay of the finding. Exit 0 when it
    /// names the first bad commit, 1 when it cannot.
    Bisect(BisectArgs),
    /// Standalone C reproducers (docs/FINDINGS.md): write one from a finding
    /// (`repro FINDING --c`), run one on kernels of the matrix (`repro run FILE.c`).
    Repro(ReproArgs),
    /// Fuzz corpora: merge those of several campaigns (shards) into one.
    Corpus {
        #[command(subcommand)]
        command: CorpusCommand,
    },
    /// Kernel coverage of a fuzz campaign (KCOV kernels): per function of mm/rmap.c,
    /// memory.c, huge_memory.c, mremap.c, ksm.c and migrate.c the lines reached, and
    /// the rmap entry points never reached. Reads the corpus's .cov files; boots nothing.
    Coverage(CoverageArgs),
}

#[derive(clap::Args)]
struct BisectArgs {
    /// The finding: a scenario YAML, or a fuzz finding's folder (its shrunk.yaml).
    finding: PathBuf,
    /// The kernel tree, a git repository with no uncommitted changes.
    #[arg(long)]
    tree: PathBuf,
    /// A commit without the bug.
    #[arg(long)]
    good: String,
    /// A commit with it (the finding must fail there).
    #[arg(long)]
    bad: String,
    /// The source key whose config fragments configure a tree that has no .config.
    #[arg(long, default_value = "6.12-debug")]
    config: String,
    /// Builds allowed in all, the bad commit's included.
    #[arg(long, default_value_t = 30)]
    max_builds: usize,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ReproArgs {
    #[command(subcommand)]
    command: Option<ReproCommand>,
    /// A fuzz finding's folder (its shrunk.yaml) or a scenario YAML, to write as a
    /// self-contained C program (libc only; `gcc -static -O2`, arm64 or x86-64) that
    /// plays the same steps and checks what userspace sees.
    finding: Option<PathBuf>,
    /// Write the C program (to stdout, or to --output).
    #[arg(long)]
    c: bool,
    /// Where to write it.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Build it for arm64 and run it in a guest of each --kernel; exit as `repro run`.
    #[arg(long)]
    run: bool,
    /// Kernel keys: the page size to write it for (PMD-relative counts), and where
    /// --run runs it (default: the manifest's default).
    #[arg(long)]
    kernel: Vec<String>,
    /// Seconds the program may run before it is killed (--run).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Subcommand)]
enum ReproCommand {
    /// Build FILE.c as a static arm64 program, boot each kernel with it in the
    /// initramfs and run it there as root. A reproducer exits 0 (PASS) or 1 (FAIL: the
    /// bug showed); anything else means it could not run. Exit: 0 every kernel passed,
    /// 1 it failed on some kernel, 2 it does not compile, 3 a kernel could not run it.
    Run {
        file: PathBuf,
        /// Kernel keys (default: the manifest's default).
        #[arg(long)]
        kernel: Vec<String>,
        /// Seconds the program may run before it is killed.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// Merge corpora (deduplicated by content; with .cov files, only entries that add
    /// coverage stay) and findings folders (one per title) of campaigns A B ... into C.
    Merge {
        /// Campaign outputs (`fuzz --out` folders) or corpus folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The merged folder: C/corpus, C's findings folders, the coverage series.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct CoverageArgs {
    /// A campaign's `fuzz --out` folder (or a merged one, or a corpus folder).
    #[arg(long)]
    from: PathBuf,
    /// The kernel's vmlinux (default: the one of the kernel the campaign ran on, found
    /// in its build tree).
    #[arg(long)]
    vmlinux: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ShellArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// When the session ends, save its results here (the `run --results` format).
    #[arg(long)]
    results: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The scenario, e.g. a fuzz finding's shrunk.yaml.
    file: PathBuf,
    #[command(flatten)]
    kernel: KernelArgs,
    /// Show every step; without it, only the steps at which an oracle disagrees.
    #[arg(long)]
    step: bool,
    /// Play on after the first failing step.
    #[arg(long = "continue")]
    keep_going: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the static HTML page here (default: replay.html in the workdir).
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(clap::Args)]
struct MutantsArgs {
    /// Only these mutants (file stems of the patches; repeatable).
    #[arg(long = "only")]
    only: Vec<String>,
    /// A folder of your own patches to judge instead of images/mutants/ (each a unified
    /// diff; `git format-patch` output works, its Subject: says what it is). Revert a
    /// fix into a patch to ask whether rmapcheck would have caught the bug it fixes.
    #[arg(long)]
    patches: Option<PathBuf>,
    /// The kernel built from source that the patches go into.
    #[arg(long, default_value = rmapcheck::mutants::BASE)]
    kernel: String,
    /// How long the fuzzer may look for each mutant (e.g. 90s, 10m).
    #[arg(long, default_value = "3m", value_parser = fuzz::parse_duration)]
    duration: std::time::Duration,
    /// Fuzz seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where mutants.json and each mutant's reproducers go.
    #[arg(long, default_value = "mutants-out")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Directory to write index.html, summary.md and fuzz reproducers into.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Results files written by `run --results` (repeatable; later ones win).
    #[arg(long = "from", num_args = 1..)]
    from: Vec<PathBuf>,
    /// Fuzz findings directories written by `fuzz --out` (repeatable).
    #[arg(long = "fuzz")]
    fuzz: Vec<PathBuf>,
    /// mutants.json files written by `rmapcheck mutants` (repeatable).
    #[arg(long = "mutants")]
    mutants: Vec<PathBuf>,
    /// A fuzz campaign's folder whose kernel coverage gets a page (coverage.html).
    #[arg(long)]
    coverage: Option<PathBuf>,
    /// The vmlinux for --coverage (default: the campaign kernel's).
    #[arg(long, requires = "coverage")]
    vmlinux: Option<PathBuf>,
}

/// Which kernels to use: manifest keys, or a developer's own build.
#[derive(Clone, clap::Args)]
struct KernelArgs {
    /// Kernel key from images/kernels.toml (repeatable; default: the manifest's default).
    #[arg(long = "kernel")]
    kernels: Vec<String>,
    /// The default matrix (the keys tagged "default").
    #[arg(long)]
    all_kernels: bool,
    /// Your own kernel's Image (with --kernel-build): an ad-hoc matrix entry.
    #[arg(long, requires = "kernel_build")]
    kernel_image: Option<PathBuf>,
    /// The built tree (or headers dir) of --kernel-image, with its .config.
    #[arg(long, requires = "kernel_image")]
    kernel_build: Option<PathBuf>,
    /// Set an rmapcheck.ko parameter on every guest, e.g. misreport=1 (repeatable).
    #[arg(long = "module-param", value_parser = fuzz::parse_param)]
    module_params: Vec<(String, String)>,
    /// Start QEMU with a gdb stub and print the gdb command that attaches to it; on a
    /// failure the guest stays paused until Enter. Guests boot cold, one at a time.
    #[arg(long)]
    gdb: bool,
}

#[derive(clap::Args)]
struct FuzzArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Campaign seed (default: from the clock; it is printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this long (e.g. 90s, 10m, 2h). Without --duration or --runs: until Ctrl-C.
    #[arg(long, value_parser = fuzz::parse_duration, conflicts_with = "runs")]
    duration: Option<std::time::Duration>,
    /// Stop after this many sequences.
    #[arg(long)]
    runs: Option<u64>,
    /// Guests running sequences in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// Where each unique failure gets its folder.
    #[arg(long, default_value = "fuzz-out")]
    out: PathBuf,
    /// Check every live page (O1-O5) after every N steps.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    check_every: u64,
    /// Steps per sequence.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=2000))]
    steps: u64,
    /// One generated run in N plays a motif, a short sequence that reaches what random
    /// steps rarely do (a THP mapped by a PMD and by PTEs, a large folio migrated, a
    /// KSM page of three processes); 0: never.
    #[arg(long, default_value_t = 4)]
    motifs: u32,
    /// Op weights, e.g. fork=10,exit=0 (the rest keep their defaults).
    #[arg(long)]
    weights: Option<fuzz::Weights>,
    /// Give maps with a hugepage hint a whole PMD of pages (a THP: large folios).
    #[arg(long, conflicts_with = "print_run")]
    thp: bool,
    /// Re-runs the shrinker may spend on one failure.
    #[arg(long, default_value_t = 300)]
    shrink_budget: usize,
    /// Print the sequence of this run number (with --seed) as scenario YAML, and exit.
    #[arg(long, requires = "seed")]
    print_run: Option<u64>,
    /// Seed the corpus from this folder: scenario files (e.g. scenarios/) or an earlier
    /// campaign's corpus (repeatable). The corpus of --out is always read: a campaign
    /// resumes from it.
    #[arg(long = "corpus")]
    corpus: Vec<PathBuf>,
    /// Run shard I of N: the run numbers I, I+N, ... of the seed, so N machines with the
    /// same command and seed run disjoint campaigns (merge them with `corpus merge`).
    #[arg(long, default_value = "0/1")]
    shard: fuzz::schedule::Shard,
    /// Collect the KCOV coverage (kernel PCs) of every run. auto: on kernels built with
    /// CONFIG_KCOV (the source-built debug kernels); elsewhere the campaign is unguided and says so.
    #[arg(long, value_enum, default_value = "auto")]
    coverage: fuzz::Coverage,
    /// Generate every run afresh, as without coverage, while still recording coverage
    /// and the corpus: the baseline to measure a guided campaign against.
    #[arg(long)]
    unguided: bool,
}

#[derive(clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Core steps per sequence, at most (every shorter sequence runs too).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=4))]
    depth: u64,
    /// Stop after this long (e.g. 20m); a rerun with the same options resumes.
    #[arg(long, value_parser = fuzz::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Run shard I of N: the sequences whose number is I mod N.
    #[arg(long, default_value = "0/1")]
    shard: fuzz::schedule::Shard,
    /// Guests running sequences in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// Where each unique failure gets its folder, and the progress file lives.
    #[arg(long, default_value = "sweep-out")]
    out: PathBuf,
    /// Re-runs the shrinker may spend on one failure.
    #[arg(long, default_value_t = 300)]
    shrink_budget: usize,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Kernel key (default: the manifest's default).
    #[arg(long)]
    kernel: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The scenario to time.
    #[arg(long, default_value = "scenarios/seed_mmap_fork.yaml")]
    scenario: PathBuf,
    /// Boot + scenario + power-off cycles for the cold baseline.
    #[arg(long, default_value_t = 3)]
    cold_runs: usize,
    /// Scenario runs in the warm guest.
    #[arg(long, default_value_t = 200)]
    warm_runs: usize,
}

#[derive(clap::Args)]
struct RunArgs {
    paths: Vec<PathBuf>,
    #[command(flatten)]
    kernel: KernelArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: RunFormat,
    /// Also write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also save the results (the `--format json` object) here, for `rmapcheck report`.
    #[arg(long)]
    results: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// `run`'s formats: test results also read as KTAP.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RunFormat {
    Text,
    Json,
    /// KTAP version 1 (kselftest's format), for kernel CI.
    Ktap,
}

#[derive(Subcommand)]
enum KernelsCommand {
    /// Fetch (or build) kernels and their modules into the cache (default: the manifest's default).
    Fetch {
        keys: Vec<String>,
        /// Every key of the manifest.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
        /// Download and verify the packages (moving a pin the mirror no longer serves),
        /// and stop there: no extraction and no build.
        #[arg(long)]
        download_only: bool,
    },
    /// List the manifest's kernels and whether each is cached.
    List,
    /// Re-resolve the newest version of each kernel (default: all) and rewrite the lock.
    Update { keys: Vec<String> },
}

/// A note to the user, through the one reporter.
fn note(message: String) {
    reporter().event(Event::Note(message));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    kernels::set_strict_pins(cli.locked);
    let _ = REPORTER.set(Reporter::new(cli.progress));
    signal::install(signal::GRACE, note);
    // Unwinding drops every QEMU guard on the way; the panic message is already out.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let e = Error::from(e);
            eprintln!("rmapcheck: {}", e.message());
            ExitCode::from(e.exit_code())
        }
        Err(_) => {
            eprintln!("rmapcheck: this is a bug in rmapcheck; please report it with the message above");
            ExitCode::from(code::BUG)
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    // For the tests of exit code 4: a harness bug has no deterministic trigger otherwise.
    if std::env::var_os("RMAPCHECK_TEST_PANIC").is_some() {
        panic!("RMAPCHECK_TEST_PANIC is set: a deliberate harness bug");
    }
    if std::env::var_os("RMAPCHECK_TEST_ERROR").is_some() {
        return Err(anyhow::anyhow!("RMAPCHECK_TEST_ERROR is set").context("a deliberate unexpected error"));
    }
    match cli.command {
        Command::Run(args) => run(args),
        Command::Kernels { command } => kernels_cmd(command),
        Command::Check { paths } => {
            load_scenarios(&paths)?;
            Ok(())
        }
        Command::Diff { scenario } => {
            let name = std::path::Path::new(&scenario)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or(scenario);
            let texts = rmapcheck::report::snapshots::load(&rmapcheck::project_root().join("snapshots"), &name)
                .map_err(Error::bad)?;
            print!("{}", rmapcheck::report::snapshots::side_by_side(&texts));
            Ok(())
        }
        Command::Report(args) => report_cmd(args),
        Command::Bench(args) => bench(args),
        Command::Schema => {
            print!("{}", scenario::json_schema());
            Ok(())
        }
        Command::Fuzz(args) => fuzz_cmd(args),
        Command::Sweep(args) => sweep_cmd(args),
        Command::Replay(args) => replay_cmd(args),
        Command::Shell(args) => shell_cmd(args),
        Command::Mutants(args) => mutants_cmd(args),
        Command::Bisect(args) => bisect_cmd(args),
        Command::Repro(ReproArgs { command: Some(ReproCommand::Run { file, kernel, timeout }), .. }) => {
            if !file.is_file() {
                return Err(Error::bad_input(format!("{}: no such file", file.display())).into());
            }
            repro_run(kernel, timeout, &|_| Ok(file.clone()))
        }
        Command::Repro(args) => repro_c(args),
        Command::Corpus { command: CorpusCommand::Merge { inputs, out } } => {
            for d in &inputs {
                if !d.is_dir() {
                    return Err(Error::bad_input(format!("{}: no such folder", d.display())).into());
                }
            }
            let merged = fuzz::merge::merge(&inputs, &out)?;
            print!("{}", merged.text(&out));
            Ok(())
        }
        Command::Coverage(args) => {
            let mapped = rmapcheck::coverage::map(&args.from, args.vmlinux.as_deref()).map_err(Error::bad)?;
            print!("{}", report::coverage::text(&mapped.coverage, &mapped.what));
            println!("(vmlinux: {})", mapped.vmlinux.display());
            Ok(())
        }
    }
}

/// The kernels `args` name (keys, the default matrix, and a developer's own build), in
/// order and without repeats, checked before anything is fetched.
fn targets(args: &KernelArgs, manifest: &Manifest) -> Result<Vec<Target>> {
    let mut keys = args.kernels.clone();
    if args.all_kernels {
        keys.extend(manifest.tagged("default"));
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    manifest.check_keys(&keys).map_err(Error::bad)?;
    let mut targets: Vec<Target> = keys.into_iter().map(Target::Key).collect();
    if let (Some(image), Some(build)) = (&args.kernel_image, &args.kernel_build) {
        targets.push(Target::Custom(Kernel::custom(image, build, None).map_err(Error::bad)?));
    }
    if targets.is_empty() {
        targets.push(Target::Key(manifest.default.clone()));
    }
    Ok(targets)
}

/// The kernels `args` name, prepared, each with the arguments that name it again on a
/// replay command line.
fn prepare_kernels(args: &KernelArgs) -> Result<Vec<(String, Prepared)>> {
    let manifest = load_manifest()?;
    let targets = targets(args, &manifest)?;
    targets
        .iter()
        .map(|t| {
            let replay = match (t, &args.kernel_image, &args.kernel_build) {
                (Target::Custom(_), Some(image), Some(build)) => {
                    format!("--kernel-image {} --kernel-build {}", image.display(), build.display())
                }
                _ => format!("--kernel {}", t.key()),
            };
            Ok((replay, prepare::prepare_target(&manifest, t, reporter()).map_err(Error::environment)?))
        })
        .collect()
}

/// This command's workdir: its log (`rmapcheck.log`, see `RMAPCHECK_LOG`) and one
/// directory per guest, each with its console log and a runnable `qemu.sh`. Made, and
/// the log started, on first use.
fn workdir(command: &str) -> Result<PathBuf> {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir.clone());
    }
    // The cache's own failures (no cache dir, a full disk) are the environment's.
    let dir = cache::subdir("runs").map_err(Error::environment)?.join(format!("{command}-{}", std::process::id()));
    let log = rmapcheck::log::init(&dir).map_err(Error::environment)?;
    reporter().event(Event::Note(format!("guests and log under {} (log: {})", dir.display(), log.display())));
    Ok(DIR.get_or_init(|| dir).clone())
}

/// images/kernels.toml; a broken one is bad input, like a broken scenario.
fn load_manifest() -> Result<Manifest> {
    Ok(Manifest::load().map_err(Error::bad)?)
}

fn fuzz_cmd(args: FuzzArgs) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("rmapcheck: fuzz seed {seed} (the same seed and kernel give the same sequences)");
    let limit = match (args.runs, args.duration) {
        (Some(n), _) => fuzz::Limit::Runs(n),
        (None, Some(d)) => fuzz::Limit::Duration(d),
        (None, None) => fuzz::Limit::Unbounded,
    };
    let gen = fuzz::GenConfig {
        steps: args.steps as usize,
        check_every: args.check_every as usize,
        weights: args.weights.unwrap_or_default(),
        motif_every: args.motifs,
        ..fuzz::GenConfig::default()
    };
    if args.kernel.gdb && args.jobs != 1 {
        return Err(Error::bad_input("--gdb debugs one guest: use it with --jobs 1").into());
    }
    let mut failures = 0;
    let mut kernel = args.kernel.clone();
    if kernel.kernels.is_empty() && !kernel.all_kernels && kernel.kernel_image.is_none() {
        kernel.kernels.push(fuzz::DEFAULT_KERNEL.to_string());
    }
    if let Some(run) = args.print_run {
        // Large maps are sized in PMDs of the (first) kernel's page size.
        let manifest = load_manifest()?;
        let page_size = kernel.kernels.first().and_then(|k| manifest.entry(k).ok()).map(|e| e.page_size);
        let gen = fuzz::GenConfig { page_size: page_size.unwrap_or(gen.page_size), ..gen };
        print!("{}", scenario::to_yaml(&fuzz::generate::generate(&gen, seed, run), ""));
        return Ok(());
    }
    for (kernel_args, prepared) in prepare_kernels(&kernel)? {
        let gdb = if kernel.gdb { Some((gdb_setup(&prepared)?, hold_for_gdb as Hold)) } else { None };
        let mut gen = gen.clone();
        if args.thp {
            gen.huge_pages = rmapcheck::check::oracle::folio::pmd_pages(prepared.kernel.page_size);
        }
        let (coverage, why) = args.coverage.decide(&prepared.kernel);
        eprintln!("rmapcheck: {}: coverage {why}", prepared.kernel.key);
        let opts = fuzz::Options {
            gdb,
            coverage,
            seed,
            limit,
            jobs: args.jobs as usize,
            out: args.out.clone(),
            gen: fuzz::GenConfig { page_size: prepared.kernel.page_size, ..gen.clone() },
            module_params: args.kernel.module_params.clone(),
            kernel_args,
            shrink_budget: args.shrink_budget,
            known_bugs: scenario::known_bugs(&rmapcheck::project_root().join("scenarios")).map_err(Error::bad)?,
            workroot: workdir("fuzz")?.join(&prepared.kernel.key),
            corpus: args.corpus.clone(),
            shard: args.shard,
            unguided: args.unguided,
            stop_at_first_finding: false,
        };
        let summary = fuzz::campaign::run(&prepared, &opts, &|e| reporter().event(Event::Fuzz(e)))?;
        reporter().finish();
        print!("{}", fuzz::summary::summary(&summary));
        failures += summary.found.len();
        if summary.stopped {
            break;
        }
    }
    let out = args.out.display();
    campaign_end(failures, &out, &format!("{failures} findings, the corpus and the coverage series are in {out}"))
}

/// How a campaign ends: interrupted (with what `saved` says is kept), with findings
/// in their folders under `out`, or clean.
fn campaign_end(failures: usize, out: &std::path::Display, saved: &str) -> Result<()> {
    if let Some(signal) = signal::requested() {
        return Err(Error::Interrupted { signal, saved: saved.to_string() }.into());
    }
    if failures > 0 {
        return Err(Error::Findings(format!("{failures} failures found; each has its folder in {out}")).into());
    }
    Ok(())
}

fn sweep_cmd(args: SweepArgs) -> Result<()> {
    if args.kernel.gdb && args.jobs != 1 {
        return Err(Error::bad_input("--gdb debugs one guest: use it with --jobs 1").into());
    }
    let mut kernel = args.kernel.clone();
    if kernel.kernels.is_empty() && !kernel.all_kernels && kernel.kernel_image.is_none() {
        kernel.kernels.push(fuzz::DEFAULT_KERNEL.to_string());
    }
    let mut failures = 0;
    for (kernel_args, prepared) in prepare_kernels(&kernel)? {
        let gdb = if kernel.gdb { Some((gdb_setup(&prepared)?, hold_for_gdb as Hold)) } else { None };
        let campaign = fuzz::Options {
            gdb,
            // Every sequence runs once, in order: coverage would guide nothing.
            coverage: false,
            seed: 0,
            limit: args.duration.map_or(fuzz::Limit::Unbounded, fuzz::Limit::Duration),
            jobs: args.jobs as usize,
            out: args.out.clone(),
            gen: fuzz::GenConfig { page_size: prepared.kernel.page_size, ..fuzz::GenConfig::default() },
            module_params: args.kernel.module_params.clone(),
            kernel_args,
            shrink_budget: args.shrink_budget,
            known_bugs: scenario::known_bugs(&rmapcheck::project_root().join("scenarios")).map_err(Error::bad)?,
            workroot: workdir("sweep")?.join(&prepared.kernel.key),
            corpus: Vec::new(),
            shard: args.shard,
            unguided: false,
            stop_at_first_finding: false,
        };
        let opts = fuzz::sweep::Options { depth: args.depth as usize, campaign };
        let summary = fuzz::sweep::run(&prepared, &opts, &|e| reporter().event(Event::Fuzz(e)))?;
        reporter().finish();
        print!("{}", fuzz::sweep::summary(&summary));
        failures += summary.campaign.found.len();
        if summary.campaign.stopped {
            break;
        }
    }
    let out = args.out.display();
    let saved = format!("{failures} findings and the progress are in {out}; rerun the same command to resume");
    campaign_end(failures, &out, &saved)
}

fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<scenario::Loaded>> {
    let paths = if paths.is_empty() { vec![rmapcheck::project_root().join("scenarios")] } else { paths.to_vec() };
    let files = scenario::discover(&paths).map_err(Error::bad)?;
    if files.is_empty() {
        return Err(Error::bad_input("no scenario files found").into());
    }
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match scenario::load(&f) {
            Ok(l) => loaded.push(l),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Error::bad_input(errors.join("\n")).into());
    }
    Ok(loaded)
}

/// Saved after every scenario, so an interrupted run keeps what it did.
fn save_results(path: Option<&std::path::Path>, outcomes: &[Outcome]) -> Result<()> {
    match path {
        Some(path) => results::write(path, outcomes),
        None => Ok(()),
    }
}

fn run(args: RunArgs) -> Result<()> {
    let loaded = load_scenarios(&args.paths)?;
    let progress = reporter();
    let manifest = load_manifest()?;
    let mut outcomes = Vec::new();
    // A kernel that could not be prepared or booted: the environment's failure.
    let mut setup_failed = false;
    for target in targets(&args.kernel, &manifest)? {
        let key = target.key().to_string();
        // A kernel that cannot be prepared fails its own scenarios; the others go on.
        let prepared = match prepare::prepare_target(&manifest, &target, progress) {
            Ok(p) => p,
            Err(e) => {
                setup_failed = true;
                progress.event(Event::Unprepared { key: key.clone(), why: format!("{e:#}") });
                let info = Info { key: key.clone(), ..Info::default() };
                for l in &loaded {
                    outcomes.push(Outcome::not_run(l, &info, format!("kernel {key} is not ready: {e:#}")));
                }
                save_results(args.results.as_deref(), &outcomes)?;
                continue;
            }
        };
        let workroot = workdir("run")?;
        let gdb = if args.kernel.gdb { Some(gdb_setup(&prepared)?) } else { None };
        let mut pool = Pool::new(prepared, workroot)
            .with_module_params(&args.kernel.module_params)
            .with_events(Box::new(|e| progress.event(Event::Guest(e))));
        if let Some(port) = gdb {
            pool = pool.with_gdb(port, hold_for_gdb);
        }
        progress.event(Event::Started { key: key.clone(), scenarios: loaded.len() });
        for l in &loaded {
            if signal::requested().is_some() {
                break;
            }
            let played = pool.play(l);
            setup_failed |= matches!(played.fault, Some(Fault::Boot { .. }));
            let outcome = played.outcome;
            if signal::requested().is_some() {
                // The signal reached QEMU too (one process group): this result proves nothing.
                break;
            }
            progress.event(Event::Scenario(Box::new(outcome.clone())));
            outcomes.push(outcome);
            save_results(args.results.as_deref(), &outcomes)?;
        }
        progress.finish();
        pool.shutdown();
    }
    match args.format {
        RunFormat::Text => print!("{}", report::text(&outcomes)),
        RunFormat::Json => println!("{}", serde_json::to_string_pretty(&report::json(&outcomes))?),
        RunFormat::Ktap => print!("{}", report::ktap(&outcomes)),
    }
    if let Some(path) = &args.junit {
        cache::write_atomic(path, report::junit(&outcomes)?.as_bytes())?;
    }
    if let Some(signal) = signal::requested() {
        return Err(Error::Interrupted { signal, saved: format!("{} results saved", outcomes.len()) }.into());
    }
    // A failing scenario is the news; a kernel that could not even be prepared or
    // booted is the environment's fault, when nothing failed.
    let failed = outcomes.iter().filter(|o| o.status == Status::Fail).count();
    let not_ok = outcomes.iter().filter(|o| !o.status.is_ok()).count();
    if failed > 0 {
        Err(Error::Findings(format!("{failed} of {} scenario runs failed", outcomes.len())).into())
    } else if setup_failed {
        Err(Error::environment(anyhow::anyhow!("a kernel could not be prepared or booted (see above)")).into())
    } else if not_ok > 0 {
        Err(Error::Findings(format!("{not_ok} of {} scenario runs errored", outcomes.len())).into())
    } else {
        Ok(())
    }
}

fn shell_cmd(args: ShellArgs) -> Result<()> {
    let pool = debug_pool(&args.kernel, "shell")?;
    let mut guest = pool.take()?;
    reporter().finish();
    let history = cache::subdir("shell").ok().map(|d| d.join("history"));
    let session = |guest: &mut Guest| {
        let mut shell = rmapcheck::run::shell::Shell::start(guest)?;
        let lines = ui::shell::run(&mut shell, history.as_deref())?;
        Ok::<_, Fault>((shell.finish()?, lines))
    };
    let (outcome, lines) = match session(&mut guest) {
        Ok(ended) => ended,
        Err(fault) => {
            // A hung guest is what gdb is for; a dead one is only its console now.
            eprintln!("rmapcheck: the session ended: {fault}");
            pool.hold(&guest, &format!("guest fault ({})", fault.cause()));
            return Err(Error::Findings(format!("the session ended on a guest fault ({})", fault.cause())).into());
        }
    };
    print!("{}", report::text(std::slice::from_ref(&outcome)));
    save_results(args.results.as_deref(), std::slice::from_ref(&outcome))?;
    if outcome.status != Status::Pass {
        pool.hold(&guest, "the session failed");
    }
    guest.shutdown();
    if outcome.status != Status::Pass {
        Err(Error::Findings("the session failed".into()).into())
    } else if lines.refused > 0 {
        Err(Error::bad_input(format!("{} lines of the session were refused", lines.refused)).into())
    } else {
        Ok(())
    }
}

/// The pool of a debugging command (replay, shell): one kernel, its module
/// parameters, and the gdb stub when asked for.
fn debug_pool(args: &KernelArgs, command: &str) -> Result<Pool<'static>> {
    if targets(args, &load_manifest()?)?.len() != 1 {
        return Err(Error::bad_input("name one kernel: --kernel KEY or --kernel-image/--kernel-build").into());
    }
    let prepared = prepare_kernels(args)?.remove(0).1;
    let gdb = if args.gdb { Some(gdb_setup(&prepared)?) } else { None };
    let mut pool = Pool::new(prepared, workdir(command)?)
        .with_module_params(&args.module_params)
        .with_events(Box::new(|e| reporter().event(Event::Guest(e))));
    if let Some(port) = gdb {
        pool = pool.with_gdb(port, hold_for_gdb);
    }
    Ok(pool)
}

/// `--gdb`: a free port for the stub, and the command that attaches to it, said now.
fn gdb_setup(prepared: &Prepared) -> Result<u16> {
    rmapcheck::run::gdb::setup(prepared, &load_manifest()?, &note)
}

/// `--gdb`: keep a failed guest paused and alive until the user presses Enter.
fn hold_for_gdb(g: &Guest, why: &str) {
    rmapcheck::run::gdb::hold(g, why, &note)
}

fn replay_cmd(args: ReplayArgs) -> Result<()> {
    let loaded = load_scenarios(std::slice::from_ref(&args.file))?.remove(0);
    let pool = debug_pool(&args.kernel, "replay")?;
    let workroot = workdir("replay")?;
    let mut guest = pool.take()?;
    let opts = rmapcheck::run::replay::Options { keep_going: args.keep_going };
    let (mut r, fault) = rmapcheck::run::replay::replay(&mut guest, &loaded, opts);
    reporter().finish();
    if let Some(f) = &fault {
        eprintln!("rmapcheck: {f}");
    }
    if let Some(n) = r.first_failure {
        pool.hold(&guest, &format!("step {n} failed"));
    }
    let html_path = args.html.clone().unwrap_or_else(|| workroot.join("replay.html"));
    cache::write_atomic(&html_path, html::replay::render(&r).as_bytes())?;
    if !args.step {
        r.steps.retain(|s| s.disagrees());
    }
    match args.format {
        Format::Text => print!("{}", report::replay::text(&r)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
    }
    eprintln!("rmapcheck: replay page: {}", html_path.display());
    guest.shutdown();
    match r.first_failure {
        Some(n) => Err(Error::Findings(format!("step {n} failed")).into()),
        None if r.outcome.status != Status::Pass => Err(Error::Findings("the scenario did not pass".into()).into()),
        None => Ok(()),
    }
}

fn mutants_cmd(args: MutantsArgs) -> Result<()> {
    let manifest = load_manifest()?;
    let entry = manifest.entry(&args.kernel).map_err(Error::bad)?;
    if entry.kind != kernels::EntryKind::Source {
        return Err(
            Error::bad_input(format!("--kernel {}: mutants need a kernel built from source", args.kernel)).into()
        );
    }
    let scenarios = load_scenarios(&[])?;
    let dir = args.patches.unwrap_or_else(|| rmapcheck::image::images_dir().join("mutants"));
    let known = rmapcheck::mutants::load(&dir).map_err(Error::bad)?;
    if known.is_empty() {
        return Err(Error::bad_input(format!("{}: no .patch files", dir.display())).into());
    }
    if let Some(name) = args.only.iter().find(|n| !known.iter().any(|m| &m.name == *n)) {
        return Err(Error::bad_input(format!("no mutant named '{name}' in {}", dir.display())).into());
    }
    let opts = rmapcheck::mutants::Options {
        patches: dir,
        kernel: args.kernel,
        only: args.only,
        fuzz_for: args.duration,
        seed: args.seed,
        out: args.out,
        workroot: workdir("mutants")?,
    };
    std::fs::create_dir_all(&opts.out)?;
    let verdicts =
        rmapcheck::mutants::run(&manifest, &scenarios, &opts, &|e| reporter().event(Event::Mutants(e)), reporter())
            .map_err(Error::environment)?;
    reporter().finish();
    match args.format {
        Format::Text => print!("{}", rmapcheck::mutants::text(&verdicts)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&verdicts)?),
    }
    if let Some(signal) = signal::requested() {
        let saved = format!("{} verdicts saved in {}", verdicts.len(), opts.out.join("mutants.json").display());
        return Err(Error::Interrupted { signal, saved }.into());
    }
    Ok(())
}

fn report_cmd(args: ReportArgs) -> Result<()> {
    if args.from.is_empty() && args.fuzz.is_empty() && args.mutants.is_empty() && args.coverage.is_none() {
        return Err(Error::bad_input(
            "report: nothing to report; pass --from RESULTS (from `run --results`), --fuzz DIR or --coverage DIR",
        )
        .into());
    }
    let coverage = match &args.coverage {
        Some(dir) => {
            let m = rmapcheck::coverage::map(dir, args.vmlinux.as_deref()).map_err(Error::bad)?;
            let source = m.vmlinux.parent().filter(|d| d.join("mm/rmap.c").is_file()).map(|d| d.to_path_buf());
            Some(html::CoveragePage { coverage: m.coverage, curves: m.curves, what: m.what, source })
        }
        None => None,
    };
    let mut sets = Vec::new();
    for path in &args.from {
        sets.push(results::read(path).map_err(Error::bad)?);
    }
    let outcomes = results::merge(sets);
    let mut verdicts = Vec::new();
    for path in &args.mutants {
        verdicts.extend(rmapcheck::report::mutants::read(path).map_err(Error::bad)?);
    }
    let snapshots = rmapcheck::project_root().join("snapshots");
    let written = html::write(&args.out, &outcomes, &snapshots, &args.fuzz, &verdicts, coverage.as_ref())?;
    println!("{}", written.index.display());
    Ok(())
}

fn bisect_cmd(args: BisectArgs) -> Result<()> {
    let manifest = load_manifest()?;
    let entry = manifest.entry(&args.config).map_err(Error::bad)?;
    if entry.kind != kernels::EntryKind::Source {
        return Err(Error::bad_input(format!("--config {}: not a kernel built from source", args.config)).into());
    }
    let file = if args.finding.is_dir() { args.finding.join("shrunk.yaml") } else { args.finding.clone() };
    let finding = load_scenarios(std::slice::from_ref(&file))?.remove(0);
    if !args.tree.join(".git").exists() {
        return Err(Error::bad_input(format!("--tree {}: not a git repository", args.tree.display())).into());
    }
    let opts = rmapcheck::bisect::Options {
        tree: args.tree,
        good: args.good,
        bad: args.bad,
        finding,
        config_key: args.config,
        workroot: workdir("bisect")?,
        max_builds: args.max_builds.max(2),
    };
    let result = rmapcheck::bisect::run(&manifest, &opts, reporter(), &|s| {
        reporter().event(Event::Note(format!("bisect: {} is {:?}: {}", s.commit, s.verdict, s.why)))
    })
    .map_err(Error::environment)?;
    reporter().finish();
    match args.format {
        Format::Text => print!("{}", result.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
    }
    if let Some(signal) = signal::requested() {
        return Err(Error::Interrupted { signal, saved: format!("{} steps tested", result.steps.len()) }.into());
    }
    match result.first_bad {
        Some(_) => Ok(()),
        None => Err(Error::Findings("the bisection named no first bad commit".into()).into()),
    }
}

/// `repro FINDING --c`: the finding as a C program, written or run.
fn repro_c(args: ReproArgs) -> Result<()> {
    use rmapcheck::report::repro;
    let Some(finding) = args.finding else {
        return Err(Error::bad_input("name a finding folder or a scenario YAML (or `repro run FILE.c`)").into());
    };
    if !args.c {
        return Err(Error::bad_input("say which program to write: --c").into());
    }
    let file = if finding.is_dir() { finding.join("shrunk.yaml") } else { finding.clone() };
    let loaded = load_scenarios(std::slice::from_ref(&file))?.remove(0);
    let about = repro::About::of_finding(&finding, &loaded.scenario);
    let write = |page_size: u64, out: &std::path::Path| -> Result<()> {
        let text = repro::c_source(&loaded.scenario, &repro::About { page_size, ..about.clone() })
            .map_err(|e| Error::bad_input(format!("{}: {e}", file.display())))?;
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))
    };
    if args.run {
        return repro_run(args.kernel, args.timeout, &|kernel| {
            let out = match &args.output {
                Some(o) => o.clone(),
                None => workdir("repro")?.join(&kernel.key).join("repro.c"),
            };
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            write(kernel.page_size, &out)?;
            reporter().event(Event::Note(format!("{}: wrote {}", kernel.key, out.display())));
            Ok(out)
        });
    }
    let page_size = match args.kernel.first() {
        Some(key) => {
            let manifest = load_manifest()?;
            manifest.check_keys(std::slice::from_ref(key)).map_err(Error::bad)?;
            kernels::fetch(&manifest, key, reporter()).map_err(Error::environment)?.page_size
        }
        None => rmapcheck::scenario::count::DEFAULT_PAGE_SIZE,
    };
    match &args.output {
        Some(out) => write(page_size, out)?,
        None => {
            let text = repro::c_source(&loaded.scenario, &repro::About { page_size, ..about })
                .map_err(|e| Error::bad_input(format!("{}: {e}", file.display())))?;
            print!("{text}");
        }
    }
    Ok(())
}

/// Run the C program `source` gives for each kernel in a guest of it.
fn repro_run(
    keys: Vec<String>,
    timeout: u64,
    source: &dyn Fn(&rmapcheck::image::kernel::Kernel) -> Result<PathBuf>,
) -> Result<()> {
    use rmapcheck::run::program::{self, Verdict};
    let manifest = load_manifest()?;
    let keys = if keys.is_empty() { vec![manifest.default.clone()] } else { keys };
    manifest.check_keys(&keys).map_err(Error::bad)?;
    let mut verdicts = Vec::new();
    let mut name = String::new();
    for key in &keys {
        let kernel = kernels::fetch(&manifest, key, reporter())
            .with_context(|| format!("fetching kernel {key}"))
            .map_err(Error::environment)?;
        let file = source(&kernel)?;
        name = file.display().to_string();
        let run = program::run_c(
            kernel,
            &file,
            &workdir("repro")?.join(key),
            std::time::Duration::from_secs(timeout),
            reporter(),
        )
        .map_err(|e| match e.downcast::<rmapcheck::image::guest_build::CompileError>() {
            Ok(compile) => Error::bad(compile),
            Err(e) => Error::environment(e),
        })?;
        reporter().finish();
        println!("{}", run.summary());
        for line in run.output.lines() {
            println!("  {line}");
        }
        for splat in &run.splats {
            println!("  kernel splat: {splat}");
        }
        verdicts.push(run.verdict);
    }
    if verdicts.contains(&Verdict::Fail) {
        Err(Error::Findings(format!("{name} failed on some kernel")).into())
    } else if verdicts.contains(&Verdict::DidNotRun) {
        Err(Error::environment(anyhow::anyhow!("a kernel could not run {name}")).into())
    } else {
        Ok(())
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let seed = load_scenarios(std::slice::from_ref(&args.scenario))?.remove(0);
    let manifest = load_manifest()?;
    let key = args.kernel.unwrap_or_else(|| manifest.default.clone());
    manifest.entry(&key).map_err(Error::bad)?;
    let prepared = prepare::prepare(&manifest, &key, reporter()).map_err(Error::environment)?;
    let workroot = workdir("bench")?.join(&key);
    let opts =
        bench::Options { cold_runs: args.cold_runs.max(1), warm_runs: args.warm_runs.max(1), ..Default::default() };
    let results =
        bench::run(&prepared, &seed, &workroot, &opts, &|what| reporter().event(Event::Note(format!("bench: {what}"))))
            .map_err(Error::environment)?;
    match args.format {
        Format::Text => print!("{}", bench::text(&results)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    Ok(())
}

fn kernels_cmd(command: KernelsCommand) -> Result<()> {
    let manifest = load_manifest()?;
    let progress = reporter();
    match command {
        KernelsCommand::Fetch { keys, all, download_only } => {
            let keys = match (all, keys.is_empty()) {
                (true, _) => manifest.kernels.keys().cloned().collect(),
                (false, true) => vec![manifest.default.clone()],
                (false, false) => keys,
            };
            manifest.check_keys(&keys).map_err(Error::bad)?;
            for k in &keys {
                if download_only {
                    let (locked, debs) = kernels::fetch_packages(&manifest, k, progress).map_err(Error::environment)?;
                    progress.finish();
                    println!("{k}: {} downloaded, {} packages", kernels::pin_summary(&locked), debs.len());
                    continue;
                }
                let p = prepare::prepare(&manifest, k, progress).map_err(Error::environment)?;
                progress.finish();
                println!("{k}: {} ready ({}, {})", p.kernel.release, p.kernel.compiler(), p.kernel.image.display());
            }
        }
        KernelsCommand::Update { keys } => {
            let keys = if keys.is_empty() { manifest.kernels.keys().cloned().collect() } else { keys };
            manifest.check_keys(&keys).map_err(Error::bad)?;
            let changes = kernels::update(&manifest, &keys, progress).map_err(Error::environment)?;
            progress.finish();
            for change in changes {
                println!("{change}");
            }
        }
        KernelsCommand::List => {
            let lock = kernels::Lock::load().map_err(Error::environment)?;
            println!("{:<14} {:<26} {:>5} {:<7} {:<7} {:<6} tags", "key", "release", "page", "gcc", "kind", "cached");
            for (key, entry) in &manifest.kernels {
                let release = lock.kernels.get(key).map(|l| l.release.as_str()).unwrap_or("(unresolved)");
                let cached = kernels::cached(&manifest, key).map_err(Error::environment)?;
                let gcc = cached.as_ref().map(|k| k.compiler()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<14} {:<26} {:>4}k {:<7} {:<7} {:<6} {}",
                    key,
                    release,
                    entry.page_size / 1024,
                    gcc,
                    format!("{:?}", entry.kind).to_lowercase(),
                    if cached.is_some() { "yes" } else { "no" },
                    entry.tags.join(",")
                );
            }
        }
    }
    Ok(())
}
