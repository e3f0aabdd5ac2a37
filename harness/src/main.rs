//! The `rmapcheck` command line: wires the library together, nothing more.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rmapcheck::guest::Guest;
use rmapcheck::kernels::{self, Manifest};
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
    /// Fetch kernels into the cache (default: the manifest's default).
    Fetch { keys: Vec<String> },
    /// List the manifest's kernels and whether each is cached.
    List,
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
    let keys = if args.kernels.is_empty() { vec![manifest.default.clone()] } else { args.kernels.clone() };
    for k in &keys {
        manifest.entry(k).map_err(|e| BadInput(e.to_string()))?;
    }
    let progress = Progress::new();
    let mut outcomes = Vec::new();
    for key in &keys {
        let prepared = prepare::prepare(&manifest, key, &progress)?;
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
    match command {
        KernelsCommand::Fetch { keys } => {
            let keys = if keys.is_empty() { vec![manifest.default.clone()] } else { keys };
            for k in &keys {
                manifest.entry(k).map_err(|e| BadInput(e.to_string()))?;
            }
            for k in &keys {
                let progress = Progress::new();
                let p = prepare::prepare(&manifest, k, &progress)?;
                progress.finish();
                println!("{k}: {} ready ({})", p.kernel.release, p.kernel.image.display());
            }
        }
        KernelsCommand::List => {
            let lock = kernels::Lock::load()?;
            println!("{:<10} {:<28} {:>5} {:<8} {:<7} tags", "key", "release", "page", "gcc", "cached");
            for (key, entry) in &manifest.kernels {
                let release = lock.kernels.get(key).map(|l| l.release.as_str()).unwrap_or("(unresolved)");
                let cached = kernels::cached(&manifest, key)?;
                let gcc = cached
                    .as_ref()
                    .and_then(|k| k.config().ok())
                    .and_then(|c| rmapcheck::guest_build::kernel_gcc_major(&c).ok())
                    .map(|m| format!("gcc-{m}"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<10} {:<28} {:>4}k {:<8} {:<7} {}",
                    key,
                    release,
                    entry.page_size / 1024,
                    gcc,
                    if cached.is_some() { "yes" } else { "no" },
                    entry.tags.join(",")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
