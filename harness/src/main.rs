//! The `rmapcheck` command line: wires the library together, nothing more.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rmapcheck::guest::Guest;
use rmapcheck::kernels::{self, Manifest};
use rmapcheck::runner::{self, Outcome, Status};
use rmapcheck::{bench, cache, prepare, qemu, report, scenario};
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
    /// Measure boot, restore, warm and cold scenario rates, and request costs.
    Bench(BenchArgs),
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
    /// Kernel key from images/kernels.toml (repeatable; default: the manifest's default).
    #[arg(long = "kernel")]
    kernels: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
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

struct Progress;

impl kernels::FetchProgress for Progress {
    fn step(&self, what: &str) {
        eprintln!("rmapcheck: {what}");
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
        Command::Bench(args) => bench(args),
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
    let mut outcomes = Vec::new();
    for key in &keys {
        let prepared = prepare::prepare(&manifest, key, &Progress)?;
        let workdir = cache::subdir("runs")?.join(format!("{key}-{}", std::process::id()));
        let mut guest: Option<Guest> = None;
        for l in &loaded {
            if guest.is_none() {
                eprintln!("rmapcheck: {key}: booting {}", prepared.kernel.release);
                let g = Guest::boot(&prepared.kernel, &prepared.initrd, &workdir).context("booting the guest")?;
                eprintln!("rmapcheck: {key}: READY in {:.2} s (console: {})", g.boot_secs, g.console_log().display());
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
            eprintln!("rmapcheck: {key}: {} {:?} in {} ms", outcome.scenario, outcome.status, outcome.duration_ms);
            outcomes.push(outcome);
        }
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
    let all_pass = outcomes.iter().all(|o| o.status == Status::Pass);
    Ok(if all_pass { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let seed = load_scenarios(std::slice::from_ref(&args.scenario))?.remove(0);
    let manifest = Manifest::load()?;
    let key = args.kernel.unwrap_or_else(|| manifest.default.clone());
    manifest.entry(&key).map_err(|e| BadInput(e.to_string()))?;
    let prepared = prepare::prepare(&manifest, &key, &Progress)?;
    let workroot = cache::subdir("runs")?.join(format!("bench-{key}-{}", std::process::id()));
    let opts =
        bench::Options { cold_runs: args.cold_runs.max(1), warm_runs: args.warm_runs.max(1), ..Default::default() };
    let results = bench::run(&prepared, &seed, &workroot, &opts, &|what| eprintln!("rmapcheck: bench: {what}"))?;
    match args.format {
        Format::Text => print!("{}", bench::text(&results)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
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
                let p = prepare::prepare(&manifest, k, &Progress)?;
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
