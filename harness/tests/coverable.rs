//! Coverable lines of a real KCOV kernel: the cached 6.12-debug vmlinux (built from
//! source with kcov.config and kcov-mm.patch). A line counts only where the vmlinux has
//! a KCOV call site, so a function that ran whole shows every coverable line reached.
//! The trial is ignored, with the reason, when that kernel is not in the cache; build it
//! with `rmapcheck kernels fetch 6.12-debug`.

use libtest_mimic::{Arguments, Completion, Trial};
use rmapcheck::coverage::lines::{Mapping, Symbolizer};
use rmapcheck::coverage::{callsites, summary, vmlinux_of, Pcs};
use std::path::Path;
use std::process::Command;

const KERNEL: &str = "6.12-debug";

fn main() {
    let args = Arguments::from_args();
    let vmlinux = vmlinux_of(KERNEL).map_err(|e| format!("no {KERNEL} vmlinux in the cache: {e:#}"));
    let trial = match vmlinux {
        Ok(path) => Trial::test("anon_vma_alloc_reached_whole", move || whole(&path)),
        Err(why) => Trial::ignorable_test("anon_vma_alloc_reached_whole", move || Ok(Completion::ignored_with(why)))
            .with_ignored_flag(true),
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}

/// The call sites `aarch64-linux-gnu-objdump -d` lists: the decoder's independent check.
fn objdump_call_sites(vmlinux: &Path) -> Result<Vec<u64>, libtest_mimic::Failed> {
    let out = Command::new("aarch64-linux-gnu-objdump").args(["-d", "-j", ".text"]).arg(vmlinux).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let sites = text
        .lines()
        .filter(|l| l.contains("\tbl\t") && l.ends_with("<__sanitizer_cov_trace_pc>"))
        .filter_map(|l| u64::from_str_radix(l.trim().split(':').next()?, 16).ok());
    Ok(sites.collect())
}

/// anon_vma_alloc is inlined into __anon_vma_prepare and anon_vma_fork; a run where it
/// returned a new anon_vma ran it whole, and its PCs are the returns of its call sites.
/// They must reach all its coverable lines, where every line with code (its
/// declaration and braces have code but no call site) would leave most unreached; and a
/// campaign that reached every call site reaches every coverable line of every file.
fn whole(vmlinux: &Path) -> Result<(), libtest_mimic::Failed> {
    let sym = Symbolizer::open(vmlinux)?;
    let sites = callsites::read(vmlinux)?;
    if !sites.kcov || sites.addresses.is_empty() {
        return Err(format!("{}: no KCOV call sites", vmlinux.display()).into());
    }
    let objdump = objdump_call_sites(vmlinux)?;
    if sites.addresses != objdump {
        return Err(format!("{} call sites decoded, objdump lists {}", sites.addresses.len(), objdump.len()).into());
    }
    let in_alloc = |a: &u64| sym.frames(*a).iter().any(|f| f.file == "mm/rmap.c" && f.function == "anon_vma_alloc");
    let ours: Vec<u64> = sites.addresses.iter().copied().filter(in_alloc).collect();
    let pcs = Pcs::new(ours.iter().map(|a| a + 4).collect());
    let mapping = Mapping::build(&sym, &pcs)?;
    let coverage = summary::build(&mapping, &pcs);
    let rmap = coverage.files.iter().find(|f| f.file == "mm/rmap.c").ok_or("no mm/rmap.c")?;
    let f = rmap.functions.iter().find(|f| f.name == "anon_vma_alloc").ok_or("no anon_vma_alloc")?;
    let with_code = sym.lines_with_code(&sym.rows()?).iter().filter(|l| l.function == "anon_vma_alloc").count();
    eprintln!(
        "anon_vma_alloc: {} call sites on lines {:?} of {with_code} with code ({}-{})",
        ours.len(),
        f.lines.keys().collect::<Vec<_>>(),
        f.span.0,
        f.span.1
    );
    if f.lines.is_empty() || f.reached() != f.lines.len() || f.lines.len() >= with_code {
        return Err(format!("reached {:?} of {with_code} lines with code", f.lines).into());
    }
    let all = Pcs::new(sites.addresses.iter().map(|a| a + 4).collect());
    let everything = summary::build(&Mapping::build(&sym, &all)?, &all);
    for file in &everything.files {
        let (reached, total) = file.lines();
        if reached != total {
            return Err(format!("{}: every call site reached gives {reached} of {total} lines", file.file).into());
        }
    }
    Ok(())
}
