//! The `rmapcheck` command line: wires the library together, nothing more.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rmapcheck::guest::Guest;
use rmapcheck::kernels::{self, Kernel, Manifest};
use rmapcheck::prepare::Target;
use rmapcheck::progress::Progress;
use rmapcheck::runner::{self, Outcome, Status};
use rmapcheck::{cache, html, prepare, qemu, report, results, scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rmapcheck", version, about = "Test harness and fuzzer for Linux rmap correctness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

#[derive(clap::Args)]
struct RunArgs {
    paths: Vec<PathBuf>,
    /// Kernel key from images/kernels.toml (repeatable; default: the manifest's default).
    #[arg(long = "kernel")]
    kernels: Vec<String>,
    /// Run on the default matrix (the keys tagged "default").
    #[arg(long)]
    all_kernels: bool,
    /// Your own kernel's Image (with --kernel-build): an ad-hoc matrix entry.
    #[arg(long, requires = "kernel_build")]
    kernel_image: Option<PathBuf>,
    /// The built tree (or headers dir) of --kernel-image, with its .config.
    #[arg(long, requires = "kernel_image")]
    kernel_build: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
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

#[derive(Subcommand)]
enum KernelsCommand {
    /// Fetch (or build) kernels and their modules into the cache (default: the manifest's default).
    Fetch {
        keys: Vec<String>,
        /// Every key of the manifest.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
    },
    /// List the manifest's kernels and whether each is cached.
    List,
    /// Re-resolve the newest version of each kernel (default: all) and rewrite the lock.
    Update { keys: Vec<String> },
}

/// Bad usage or bad input: one line on stderr, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn main() -> ExitCode {
    qemu::install_signal_handlers(|| {});
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(bad) = e.downcast_ref::<BadInput>() {
                eprintln!("rmapcheck: {bad}");
            } else {
                eprintln!("rmapcheck: error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Kernels { command } => kernels_cmd(command),
        Command::Check { paths } => {
            load_scenarios(&paths)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { scenario } => {
            let name = std::path::Path::new(&scenario)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or(scenario);
            let texts = rmapcheck::snapshots::load(&rmapcheck::project_root().join("snapshots"), &name)
                .map_err(|e| BadInput(e.to_string()))?;
            print!("{}", rmapcheck::snapshots::side_by_side(&texts));
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => report_cmd(args),
        Command::Schema => {
            print!("{}", scenario::json_schema());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<scenario::Loaded>> {
    let paths = if paths.is_empty() { vec![rmapcheck::project_root().join("scenarios")] } else { paths.to_vec() };
    let files = scenario::discover(&paths).map_err(|e| BadInput(format!("{e:#}")))?;
    if files.is_empty() {
        return Err(BadInput("no scenario files found".into()).into());
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
        return Err(BadInput(errors.join("\n")).into());
    }
    Ok(loaded)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let loaded = load_scenarios(&args.paths)?;
    let manifest = Manifest::load()?;
    let mut keys = args.kernels.clone();
    if args.all_kernels {
        keys.extend(manifest.tagged("default"));
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    manifest.check_keys(&keys).map_err(|e| BadInput(e.to_string()))?;
    let mut targets: Vec<Target> = keys.into_iter().map(Target::Key).collect();
    if let (Some(image), Some(build)) = (&args.kernel_image, &args.kernel_build) {
        targets.push(Target::Custom(Kernel::custom(image, build, None).map_err(|e| BadInput(format!("{e:#}")))?));
    }
    if targets.is_empty() {
        targets.push(Target::Key(manifest.default.clone()));
    }
    let progress = Progress::new();
    let mut outcomes = Vec::new();
    for target in &targets {
        let key = target.key();
        let prepared = prepare::prepare_target(&manifest, target, &progress)?;
        let workdir = cache::subdir("runs")?.join(format!("{key}-{}", std::process::id()));
        let mut guest: Option<Guest> = None;
        progress.start_run(key, loaded.len());
        for l in &loaded {
            if guest.is_none() {
                progress.boot(key, &prepared.kernel.release);
                let g = Guest::boot(&prepared.kernel, &prepared.initrd, &workdir).context("booting the guest")?;
                progress.booted(key, g.boot_secs, &g.console_log());
                guest = Some(g);
            }
            let g = guest.as_mut().expect("booted above");
            let outcome = match runner::run(g, l) {
                Ok(o) => o,
                Err(fault) => {
                    let o = Outcome::errored(l, &g.info, &fault);
                    guest = None;
                    o
                }
            };
            progress.scenario_done(&outcome);
            outcomes.push(outcome);
        }
        progress.finish();
        if let Some(g) = guest {
            g.shutdown();
        }
    }
    match args.format {
        Format::Text => print!("{}", report::text(&outcomes)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report::json(&outcomes))?),
    }
    if let Some(path) = &args.junit {
        cache::write_atomic(path, report::junit(&outcomes).as_bytes())?;
    }
    if let Some(path) = &args.results {
        results::write(path, &outcomes)?;
    }
    let all_pass = outcomes.iter().all(|o| o.status == Status::Pass);
    Ok(if all_pass { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn report_cmd(args: ReportArgs) -> Result<ExitCode> {
    if args.from.is_empty() && args.fuzz.is_empty() {
        return Err(BadInput(
            "report: nothing to report; pass --from RESULTS (from `run --results`) or --fuzz DIR".into(),
        )
        .into());
    }
    let mut sets = Vec::new();
    for path in &args.from {
        sets.push(results::read(path).map_err(|e| BadInput(format!("{e:#}")))?);
    }
    let outcomes = results::merge(sets);
    let written = html::write(&args.out, &outcomes, &rmapcheck::project_root().join("snapshots"), &args.fuzz)?;
    println!("{}", written.index.display());
    Ok(ExitCode::SUCCESS)
}

fn kernels_cmd(command: KernelsCommand) -> Result<ExitCode> {
    let manifest = Manifest::load()?;
    let progress = Progress::new();
    match command {
        KernelsCommand::Fetch { keys, all } => {
            let keys = match (all, keys.is_empty()) {
                (true, _) => manifest.kernels.keys().cloned().collect(),
                (false, true) => vec![manifest.default.clone()],
                (false, false) => keys,
            };
            manifest.check_keys(&keys).map_err(|e| BadInput(e.to_string()))?;
            for k in &keys {
                let p = prepare::prepare(&manifest, k, &progress)?;
                progress.finish();
                println!("{k}: {} ready ({}, {})", p.kernel.release, p.kernel.compiler(), p.kernel.image.display());
            }
        }
        KernelsCommand::Update { keys } => {
            let keys = if keys.is_empty() { manifest.kernels.keys().cloned().collect() } else { keys };
            manifest.check_keys(&keys).map_err(|e| BadInput(e.to_string()))?;
            let changes = kernels::update(&manifest, &keys, &progress)?;
            progress.finish();
            for change in changes {
                println!("{change}");
            }
        }
        KernelsCommand::List => {
            let lock = kernels::Lock::load()?;
            println!("{:<11} {:<26} {:>5} {:<7} {:<7} {:<6} tags", "key", "release", "page", "gcc", "kind", "cached");
            for (key, entry) in &manifest.kernels {
                let release = lock.kernels.get(key).map(|l| l.release.as_str()).unwrap_or("(unresolved)");
                let cached = kernels::cached(&manifest, key)?;
                let gcc = cached.as_ref().map(|k| k.compiler()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<11} {:<26} {:>4}k {:<7} {:<7} {:<6} {}",
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
    Ok(ExitCode::SUCCESS)
}
