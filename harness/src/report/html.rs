//! The static HTML report (`rmapcheck report`): a kernel × scenario matrix, every
//! kernel's normalised output side by side, an SVG picture per findpage, and fuzz
//! campaign summaries. Also the Markdown summary CI shows for a job.
//!
//! Architecture invariant: the page is one self-contained file (inline CSS and SVG, no
//! script, no external asset), and every piece of text in it goes through `esc`.

pub mod coverage;
pub mod escape;
pub mod fuzz;
pub mod picture;
pub mod replay;

use super::mutants;

use crate::check::expect;
use crate::check::outcome::{Findpage, Outcome, Status};
use crate::report;
use crate::report::snapshots;
use anyhow::{Context, Result};
use escape::{esc, slug};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// How one scenario fared on one kernel, snapshot included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    /// Passed, but there is no committed snapshot to compare with.
    NoSnapshot,
    /// Passed, but the normalised output differs from the committed snapshot.
    Drift,
    Fail,
    Error,
    /// Failed as the scenario's known kernel bug says it does on this kernel.
    Xfail,
}

impl Verdict {
    fn class(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::NoSnapshot => "new",
            Verdict::Drift => "drift",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Xfail => "xfail",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "✓ pass",
            Verdict::NoSnapshot => "✓ no snapshot",
            Verdict::Drift => "≠ snapshot differs",
            Verdict::Fail => "✗ fail",
            Verdict::Error => "! error",
            Verdict::Xfail => "✗ known kernel bug",
        }
    }
}

/// Committed snapshot texts by (scenario, kernel); `None` where none is committed.
pub type Committed = BTreeMap<(String, String), Option<String>>;

pub fn verdict(o: &Outcome, committed: Option<&str>) -> Verdict {
    match o.status {
        Status::Fail => Verdict::Fail,
        Status::Error => Verdict::Error,
        Status::Xfail => Verdict::Xfail,
        Status::Pass => match committed {
            None => Verdict::NoSnapshot,
            Some(c) if c == report::snapshot(o) => Verdict::Pass,
            Some(_) => Verdict::Drift,
        },
    }
}

/// Kernel keys in version order: `6.1 < 6.12 < 7.2 < 7.2-debug < 7.3`.
fn version_key(k: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut num = String::new();
    let mut text = String::new();
    for c in k.chars().chain(std::iter::once('.')) {
        if c.is_ascii_digit() {
            num.push(c);
        } else if c == '.' || c == '-' {
            out.push((num.parse().unwrap_or(0), std::mem::take(&mut text)));
            num.clear();
        } else {
            text.push(c);
        }
    }
    out
}

/// One result set laid out for rendering.
struct Matrix<'a> {
    kernels: Vec<&'a str>,
    scenarios: Vec<&'a str>,
    cells: BTreeMap<(&'a str, &'a str), (&'a Outcome, Verdict)>,
    committed: &'a Committed,
}

impl<'a> Matrix<'a> {
    fn new(outcomes: &'a [Outcome], committed: &'a Committed) -> Matrix<'a> {
        let mut kernels: Vec<&str> = outcomes.iter().map(|o| o.kernel.as_str()).collect();
        kernels.sort_by_key(|k| version_key(k));
        kernels.dedup();
        let mut scenarios: Vec<&str> = outcomes.iter().map(|o| o.scenario.as_str()).collect();
        scenarios.sort();
        scenarios.dedup();
        let cells = outcomes
            .iter()
            .map(|o| {
                let c = committed.get(&(o.scenario.clone(), o.kernel.clone())).cloned().flatten();
                ((o.scenario.as_str(), o.kernel.as_str()), (o, verdict(o, c.as_deref())))
            })
            .collect();
        Matrix { kernels, scenarios, cells, committed }
    }

    fn row(&self, scenario: &str) -> Vec<(&'a str, Option<(&'a Outcome, Verdict)>)> {
        self.kernels.iter().map(|k| (*k, self.cells.get(&(scenario, *k)).copied())).collect()
    }
}

const CSS: &str = r#"
:root { --fg:#1f2933; --muted:#66788a; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff;
  --pass:#2f855a; --pass-bg:#e3f4ea; --new:#2b6cb0; --new-bg:#e4eefb; --drift:#b7791f; --drift-bg:#fdf3dc;
  --fail:#c53030; --fail-bg:#fde8e8; --error:#6b46c1; --error-bg:#efe9fb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#102a43; color:#f0f4f8; padding:18px 32px; }
header h1 { margin:0; font-size:22px; letter-spacing:.3px; }
header p { margin:4px 0 0; color:#bcccdc; }
main { padding:8px 32px 48px; max-width:1500px; }
h2 { font-size:18px; margin:28px 0 10px; }
h3 { font-size:15px; margin:18px 0 8px; }
a { color:#1c5aa6; text-decoration:none; } a:hover { text-decoration:underline; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size:12.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 20px; margin:14px 0; box-shadow:0 1px 2px rgba(16,42,67,.05); }
.totals { display:flex; gap:10px; flex-wrap:wrap; margin:14px 0 4px; }
.chip { display:inline-block; border-radius:999px; padding:2px 10px; font-weight:600; font-size:12.5px; white-space:nowrap; }
.pass { color:var(--pass); background:var(--pass-bg); } .new { color:var(--new); background:var(--new-bg); }
.drift { color:var(--drift); background:var(--drift-bg); } .fail { color:var(--fail); background:var(--fail-bg); }
.error { color:var(--error); background:var(--error-bg); } .missing { color:var(--muted); background:#eef2f6; }
.xfail { color:var(--drift); background:var(--drift-bg); }
table { border-collapse:collapse; }
table.matrix th, table.matrix td { border-bottom:1px solid var(--line); padding:5px 12px; text-align:left; }
table.matrix thead th { position:sticky; top:0; background:var(--card); font-size:13px; vertical-align:bottom; }
table.matrix thead th small { display:block; color:var(--muted); font-weight:400; }
table.matrix td.cell a { display:block; border-radius:6px; padding:2px 8px; font-weight:600; font-size:12.5px; white-space:nowrap; color:inherit; }
table.matrix tbody tr:hover { background:#f8fafc; }
section.scenario { scroll-margin-top:12px; }
section.scenario h2 { display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
section.scenario h2 .file { font-weight:400; color:var(--muted); font-size:13px; }
table.sbs { width:100%; table-layout:fixed; }
table.sbs th { text-align:left; padding:4px 8px; border-bottom:2px solid var(--line); font-size:13px; }
table.sbs td { padding:1px 8px; white-space:pre-wrap; word-break:break-word; vertical-align:top; border-left:1px solid var(--line); }
table.sbs .mark { width:28px; } table.sbs td.mark { border-left:none; color:var(--drift); font-weight:700; text-align:center; }
table.sbs tr.differs td { background:var(--drift-bg); }
table.sbs tr.differs td.other { background:#f9dfa6; font-weight:600; }
ul.problems { margin:6px 0; padding-left:18px; } ul.problems li { margin:4px 0; }
ul.problems pre { margin:4px 0; white-space:pre-wrap; }
pre.diff { background:#fbfcfd; border:1px solid var(--line); border-radius:6px; padding:8px 10px; overflow:auto; }
pre.diff .del { color:#a61b1b; background:#fde8e8; display:block; } pre.diff .ins { color:#1f6f43; background:#e3f4ea; display:block; }
.pictures { display:flex; flex-wrap:wrap; gap:14px; }
figure { margin:0; background:#fbfcfd; border:1px solid var(--line); border-radius:8px; padding:8px 10px; }
figcaption { font-size:12.5px; color:var(--muted); margin-bottom:4px; } figcaption b { color:var(--fg); }
svg.findpage { display:block; max-width:100%; height:auto; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; }
svg.findpage .col { fill:var(--muted); font-family: system-ui, sans-serif; font-size:11px; text-transform:uppercase; letter-spacing:.6px; }
svg.findpage .proc rect { fill:#e4eefb; stroke:#2b6cb0; } svg.findpage .proc text { fill:#1c4f8a; font-weight:600; }
svg.findpage .proc.asker rect { fill:#2b6cb0; } svg.findpage .proc.asker text { fill:#fff; }
svg.findpage .proc.faded rect { fill:#f1f4f8; stroke:#b8c4d0; stroke-dasharray:3 2; } svg.findpage .proc.faded text { fill:#8a9aab; }
svg.findpage .fork { fill:none; stroke:#9fb3c8; stroke-width:1.5; }
svg.findpage .own { stroke:#b8c4d0; stroke-width:1; }
svg.findpage .vma rect { fill:#fff; stroke:#9fb3c8; } svg.findpage .vma .at { font-weight:700; }
svg.findpage .vma.mapped rect { stroke:var(--pass); stroke-width:1.6; fill:#f3fbf6; }
svg.findpage .vma.visited rect { stroke:#a0aec0; stroke-dasharray:4 3; fill:#f7f8fa; } svg.findpage .vma.visited text { fill:#5f6f80; }
svg.findpage .edge { fill:none; stroke-width:1.8; }
svg.findpage .edge.mapped { stroke:var(--pass); } svg.findpage .edge.visited { stroke:#a0aec0; stroke-dasharray:5 4; }
svg.findpage .edge.listed { stroke:#cbd2d9; } svg.findpage .dot { fill:var(--pass); }
svg.findpage .page rect { fill:#fffaf0; stroke:#b7791f; stroke-width:1.6; }
svg.findpage .page.kind-shmem rect, svg.findpage .page.kind-file rect { fill:#f0f7ff; stroke:#2b6cb0; }
svg.findpage .page.kind-none rect { fill:#f5f5f5; stroke:#a0aec0; stroke-dasharray:4 3; }
svg.findpage .page text.head { font-weight:700; font-size:13px; }
svg.findpage .legend text { fill:var(--muted); font-family: system-ui, sans-serif; font-size:11px; }
details summary { cursor:pointer; font-weight:600; }
.muted { color:var(--muted); }
"#;

/// What the coverage page shows (`rmapcheck report --coverage DIR`).
pub struct CoveragePage {
    pub coverage: crate::coverage::summary::Coverage,
    pub curves: Vec<crate::coverage::summary::Curve>,
    /// Where the coverage came from, for the page's header.
    pub what: String,
    /// The kernel source tree the lines are read from.
    pub source: Option<PathBuf>,
}

impl CoveragePage {
    pub fn render(&self) -> String {
        let read = |file: &str| self.source.as_ref().and_then(|root| std::fs::read_to_string(root.join(file)).ok());
        coverage::page(&self.coverage, &self.curves, &self.what, &read)
    }
}

/// The index's coverage section: the totals, and the link to the page.
fn coverage_section(s: &mut String, c: &CoveragePage) {
    use crate::coverage::summary::Reach;
    s.push_str("<section id=\"coverage\" class=\"card\"><h2>Kernel coverage</h2><ul>");
    for f in &c.coverage.files {
        let (r, t) = f.lines();
        let _ = write!(s, "<li><code>{}</code>: {r} of {t} lines</li>", esc(&f.file));
    }
    let never = c.coverage.entry_points.iter().filter(|(_, _, r)| *r == Reach::Never).count();
    let _ = writeln!(
        s,
        "</ul><p>{} kernel PCs from {}; {never} rmap entry points never reached. <a href=\"{}\">The coverage page</a>: every function's lines, reached or not, and coverage over time.</p></section>",
        c.coverage.pcs,
        esc(&c.what),
        coverage::PAGE
    );
}

/// The report page.
pub fn render(
    outcomes: &[Outcome],
    committed: &Committed,
    campaigns: &[fuzz::Campaign],
    mutants: &[mutants::Verdict],
    coverage: Option<&CoveragePage>,
) -> String {
    let m = Matrix::new(outcomes, committed);
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    s.push_str("<title>rmapcheck report</title><style>");
    s.push_str(CSS);
    s.push_str("</style></head><body>\n<header><h1>rmapcheck report</h1>");
    let _ = write!(
        s,
        "<p>{} scenarios × {} kernels · {} results{}</p></header>\n<main>\n",
        m.scenarios.len(),
        m.kernels.len(),
        outcomes.len(),
        if campaigns.is_empty() { String::new() } else { format!(" · {} fuzz campaigns", campaigns.len()) }
    );
    totals(&mut s, &m);
    if let Some(c) = coverage {
        coverage_section(&mut s, c);
    }
    matrix(&mut s, &m);
    undecoded_section(&mut s, outcomes);
    if !campaigns.is_empty() {
        fuzz_section(&mut s, campaigns);
    }
    if !mutants.is_empty() {
        mutants_section(&mut s, mutants);
    }
    for sc in &m.scenarios {
        scenario_section(&mut s, &m, sc);
    }
    s.push_str("</main></body></html>\n");
    s
}

/// Kernels whose splats kept raw frames (no debug info), each said once.
fn undecoded_section(s: &mut String, outcomes: &[Outcome]) {
    let mut said: Vec<&str> = Vec::new();
    for n in outcomes.iter().flat_map(|o| &o.notes).filter(|n| n.starts_with(report::UNDECODED_NOTE)) {
        if !said.contains(&n.as_str()) {
            said.push(n);
        }
    }
    for n in said {
        let _ = writeln!(s, "<p class=\"card\"><b>note</b> {}</p>", esc(n));
    }
}

/// Each splat of one run with its stack, a frame a line, decoded to file:line where
/// the kernel's DWARF allowed (report.txt's form).
fn stacks_html(s: &mut String, kernel: &str, o: &Outcome) {
    for splat in o.splats.iter().filter(|sp| !sp.trace.is_empty()) {
        let _ = write!(
            s,
            "<details class=\"stack\"><summary>Stack of <code>{}</code> on {}</summary><pre class=\"mono\">",
            esc(&splat.line),
            esc(kernel)
        );
        for frame in &splat.trace {
            let _ = writeln!(s, "{}", esc(frame));
        }
        s.push_str("</pre></details>");
    }
}

fn totals(s: &mut String, m: &Matrix) {
    let mut counts: BTreeMap<Verdict, usize> = BTreeMap::new();
    for (_, v) in m.cells.values() {
        *counts.entry(*v).or_default() += 1;
    }
    s.push_str("<div class=\"totals\">");
    for (v, n) in counts {
        let _ = write!(s, "<span class=\"chip {}\">{} {n}</span>", v.class(), esc(v.label()));
    }
    s.push_str("</div>\n");
}

fn matrix(s: &mut String, m: &Matrix) {
    s.push_str("<section id=\"matrix\" class=\"card\"><h2>Kernel × scenario matrix</h2><table class=\"matrix\"><thead><tr><th>scenario</th>");
    for k in &m.kernels {
        let info = m.cells.values().find(|(o, _)| o.kernel == *k).map(|(o, _)| (o.release.clone(), o.page_size));
        let sub = info.map(|(r, p)| format!("{r}, {}k", p / 1024)).unwrap_or_default();
        let _ = write!(s, "<th>{}<small>{}</small></th>", esc(k), esc(&sub));
    }
    s.push_str("</tr></thead><tbody>\n");
    for sc in &m.scenarios {
        let _ = write!(s, "<tr><th><a href=\"#s-{}\">{}</a></th>", slug(sc), esc(sc));
        for (k, cell) in m.row(sc) {
            match cell {
                Some((o, v)) => {
                    let _ = write!(
                        s,
                        "<td class=\"cell\"><a class=\"{}\" href=\"#s-{}\" title=\"{} on {} ({} ms)\">{}</a></td>",
                        v.class(),
                        slug(sc),
                        esc(sc),
                        esc(k),
                        o.duration_ms,
                        esc(v.label())
                    );
                }
                None => s.push_str("<td class=\"cell\"><a class=\"missing\">– not run</a></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></section>\n");
}

/// Where the report keeps a finding's reproducer, relative to index.html. A name that
/// is already plain stays as it is.
pub fn reproducer_href(campaign: usize, finding: &str) -> String {
    let plain = !finding.is_empty()
        && !finding.starts_with('.')
        && finding.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let name = if plain { finding.to_string() } else { slug(finding) };
    format!("fuzz/{campaign}/{name}/shrunk.yaml")
}

/// A scenario file as the project names it: relative to the checkout where it is inside.
fn project_relative(file: &str) -> String {
    let root = crate::project_root();
    Path::new(file).strip_prefix(&root).map(|p| p.display().to_string()).unwrap_or_else(|_| file.to_string())
}

fn fuzz_section(s: &mut String, campaigns: &[fuzz::Campaign]) {
    s.push_str("<section id=\"fuzz\" class=\"card\"><h2>Fuzz campaigns</h2>\n");
    for (i, c) in campaigns.iter().enumerate() {
        let _ = write!(s, "<h3 class=\"mono\">{}</h3>", esc(&c.dir.display().to_string()));
        if !c.exists {
            s.push_str("<p class=\"muted\">No findings directory: the campaign did not run or kept nothing.</p>");
            continue;
        }
        if let Some(sum) = &c.summary {
            let _ = write!(s, "<pre>{}</pre>", esc(sum.trim_end()));
        }
        if c.findings.is_empty() {
            s.push_str("<p><span class=\"chip pass\">no failures found</span></p>");
            continue;
        }
        s.push_str("<ul class=\"problems\">");
        for f in &c.findings {
            let _ = write!(s, "<li><span class=\"chip fail\">{}</span> ", esc(&f.name));
            match &f.shrunk {
                Some(_) => {
                    let href = reproducer_href(i, &f.name);
                    let _ = write!(
                        s,
                        "<a href=\"{href}\">shrunk reproducer</a> <span class=\"muted\">(replay: <code>rmapcheck run {href}</code>)</span>"
                    );
                }
                None => s.push_str("<span class=\"muted\">no shrunk reproducer</span>"),
            }
            if let Some(sum) = &f.summary {
                let _ = write!(s, "<pre>{}</pre>", esc(sum.trim_end()));
            }
            s.push_str("</li>");
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>\n");
}

fn diff_html(expected: &str, actual: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in expect::diff(expected, actual).lines() {
        let class = match line.as_bytes().first() {
            Some(b'-') if !line.starts_with("---") => " class=\"del\"",
            Some(b'+') if !line.starts_with("+++") => " class=\"ins\"",
            _ => "",
        };
        let _ = writeln!(out, "<span{class}>{}</span>", esc(line));
    }
    out.push_str("</pre>");
    out
}

fn scenario_section(s: &mut String, m: &Matrix, sc: &str) {
    let row: Vec<(&str, &Outcome, Verdict)> =
        m.row(sc).into_iter().filter_map(|(k, c)| c.map(|(o, v)| (k, o, v))).collect();
    let file = row.first().map(|(_, o, _)| project_relative(&o.file)).unwrap_or_default();
    let _ = write!(
        s,
        "<section class=\"scenario card\" id=\"s-{}\"><h2>{} <span class=\"file mono\">{}</span>",
        slug(sc),
        esc(sc),
        esc(&file)
    );
    for (k, _, v) in &row {
        let _ = write!(s, "<span class=\"chip {}\">{} {}</span>", v.class(), esc(k), esc(v.label()));
    }
    s.push_str("</h2>\n");

    for (k, o, _) in &row {
        let issues: Vec<String> = o
            .problems
            .iter()
            .map(|p| format!("<b>{:?}</b> <pre>{}</pre>", p.check, esc(&p.message())))
            .chain(
                o.notes
                    .iter()
                    .filter(|n| !n.starts_with(report::UNDECODED_NOTE))
                    .map(|n| format!("<b>note</b> {}", esc(n))),
            )
            .collect();
        if !issues.is_empty() {
            let _ = write!(s, "<h3>On {}</h3><ul class=\"problems\">", esc(k));
            for i in issues {
                let _ = write!(s, "<li>{i}</li>");
            }
            s.push_str("</ul>");
        }
        stacks_html(s, k, o);
    }

    for (k, o, v) in &row {
        if *v == Verdict::Drift {
            if let Some(Some(c)) = m.committed.get(&(sc.to_string(), k.to_string())) {
                let _ = write!(
                    s,
                    "<details open><summary>Snapshot differs on {}: committed (−) against this run (+)</summary>{}</details>",
                    esc(k),
                    diff_html(c, &report::snapshot(o))
                );
            }
        }
    }

    // Every kernel's normalised output, aligned line by line.
    let texts: Vec<(String, String)> = row.iter().map(|(k, o, _)| (k.to_string(), report::snapshot(o))).collect();
    let rows = snapshots::rows(&texts);
    let differing = rows.iter().filter(|r| !r.same).count();
    let _ = write!(
        s,
        "<h3>Normalised output{}</h3><table class=\"sbs mono\"><thead><tr><th class=\"mark\"></th>",
        if texts.len() > 1 { format!(", {differing} lines differ") } else { String::new() }
    );
    for (k, _) in &texts {
        let _ = write!(s, "<th>{}</th>", esc(k));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &rows {
        let _ = write!(
            s,
            "<tr{}><td class=\"mark\">{}</td>",
            if r.same { "" } else { " class=\"differs\"" },
            if r.same { "" } else { "≠" }
        );
        for (i, c) in r.cells.iter().enumerate() {
            let other = !r.same && i > 0 && *c != r.cells[0];
            let _ = write!(s, "<td{}>{}</td>", if other { " class=\"other\"" } else { "" }, esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");

    pictures(s, &row);
    s.push_str("</section>\n");
}

/// One picture per findpage position, per group of kernels that found the same thing.
fn pictures(s: &mut String, row: &[(&str, &Outcome, Verdict)]) {
    let n = row.iter().map(|(_, o, _)| o.findpages.len()).max().unwrap_or(0);
    if n == 0 {
        return;
    }
    s.push_str("<h3>Pictures</h3><div class=\"pictures\">");
    for i in 0..n {
        let mut groups: Vec<(&Findpage, &Outcome, Vec<&str>)> = Vec::new();
        for (k, o, _) in row {
            let Some(fp) = o.findpages.get(i) else { continue };
            match groups.iter_mut().find(|(g, go, _)| *g == fp && go.forks == o.forks) {
                Some(g) => g.2.push(k),
                None => groups.push((fp, o, vec![k])),
            }
        }
        for (fp, o, keys) in groups {
            let _ = write!(
                s,
                "<figure><figcaption><b>findpage {} {}</b> on {}</figcaption>{}</figure>",
                esc(&fp.proc),
                esc(&fp.at),
                esc(&keys.join(", ")),
                picture::findpage_svg(fp, &o.forks)
            );
        }
    }
    s.push_str("</div>");
}

/// Markdown for a CI job summary: totals, failures, and snapshot drift as diffs.
pub fn summary_markdown(outcomes: &[Outcome], committed: &Committed) -> String {
    let m = Matrix::new(outcomes, committed);
    let mut s = String::from("## rmapcheck\n\n");
    let mut counts: BTreeMap<Verdict, usize> = BTreeMap::new();
    for (_, v) in m.cells.values() {
        *counts.entry(*v).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{} {n}", v.label())).collect();
    let _ = writeln!(s, "{} results on {}: {}\n", outcomes.len(), m.kernels.join(", "), parts.join(" · "));
    let failed: Vec<_> = m.cells.values().filter(|(_, v)| matches!(v, Verdict::Fail | Verdict::Error)).collect();
    if !failed.is_empty() {
        s.push_str("### Failures\n\n");
        for (o, _) in failed {
            let first =
                o.problems.first().map(|p| p.message().lines().next().unwrap_or("").to_string()).unwrap_or_default();
            // GitHub renders HTML inside Markdown: escape the message.
            let _ = writeln!(s, "- `{}::{}` {:?}: {}", o.scenario, o.kernel, o.status, esc(&first));
        }
        s.push('\n');
    }
    let drift: Vec<_> = m.cells.values().filter(|(_, v)| *v == Verdict::Drift).collect();
    if drift.is_empty() {
        s.push_str("No snapshot drift.\n");
    } else {
        let _ = writeln!(s, "### Snapshot drift ({} results)\n", drift.len());
        for (o, _) in drift {
            let c = committed.get(&(o.scenario.clone(), o.kernel.clone())).cloned().flatten().unwrap_or_default();
            let _ = writeln!(
                s,
                "<details><summary><code>{}@{}</code></summary>\n\n```diff\n{}```\n</details>\n",
                o.scenario,
                o.kernel,
                expect::diff(&c, &report::snapshot(o))
            );
        }
    }
    s
}

/// The committed snapshots for every (scenario, kernel) in `outcomes`.
pub fn load_committed(dir: &Path, outcomes: &[Outcome]) -> Result<Committed> {
    let mut out = Committed::new();
    for o in outcomes {
        let key = (o.scenario.clone(), o.kernel.clone());
        if let std::collections::btree_map::Entry::Vacant(e) = out.entry(key) {
            e.insert(snapshots::read(dir, &o.scenario, &o.kernel)?);
        }
    }
    Ok(out)
}

/// What `write` produced.
pub struct Written {
    pub index: PathBuf,
    pub summary: PathBuf,
}

/// Write `index.html`, `summary.md` and the fuzz reproducers into `out`.
pub fn write(
    out: &Path,
    outcomes: &[Outcome],
    snapshots_dir: &Path,
    fuzz_dirs: &[PathBuf],
    mutants: &[mutants::Verdict],
    coverage: Option<&CoveragePage>,
) -> Result<Written> {
    let committed = load_committed(snapshots_dir, outcomes)?;
    let campaigns = fuzz_dirs.iter().map(|d| fuzz::load(d)).collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating report directory {}", out.display()))?;
    for (i, c) in campaigns.iter().enumerate() {
        for f in &c.findings {
            if let Some(yaml) = &f.shrunk {
                crate::cache::write_atomic(&out.join(reproducer_href(i, &f.name)), yaml.as_bytes())?;
            }
        }
    }
    if let Some(c) = coverage {
        crate::cache::write_atomic(&out.join(coverage::PAGE), c.render().as_bytes())?;
    }
    let html = render(outcomes, &committed, &campaigns, mutants, coverage);
    let index = out.join("index.html");
    crate::cache::write_atomic(&index, html.as_bytes())?;
    let summary = out.join("summary.md");
    crate::cache::write_atomic(&summary, summary_markdown(outcomes, &committed).as_bytes())?;
    Ok(Written { index, summary })
}

/// The HTML report's section: the summary, then one row per mutant.
fn mutants_section(s: &mut String, verdicts: &[mutants::Verdict]) {
    s.push_str("<section id=\"mutants\" class=\"card\"><h2>Mutants: planted bugs</h2>\n");
    let _ = write!(s, "<p>{}</p>", esc(mutants::summary(verdicts).trim_end()));
    s.push_str(
        "<table><thead><tr><th>mutant</th><th>what it breaks</th><th>suite</th><th>fuzz</th><th>repro.c</th></tr></thead>\
         <tbody>",
    );
    let cell = |f: &Option<mutants::Found>| match f {
        Some(f) => format!("<span class=\"chip pass\">{:.1} s</span> {}", f.secs, esc(&f.title)),
        None => "<span class=\"chip fail\">missed</span>".to_string(),
    };
    // Fails the mutant and passes the clean kernel: the program a maintainer can trust.
    let repro = |r: &Option<mutants::Repro>| match r {
        Some(r) => {
            let chip = if r.tells_them_apart() { "pass" } else { "fail" };
            let why = [&r.mutant.detail, &r.clean.detail].into_iter().find(|d| !d.is_empty());
            format!("<span class=\"chip {chip}\">{}</span> {}", esc(&r.cell()), why.map(|w| esc(w)).unwrap_or_default())
        }
        None => String::new(),
    };
    for v in verdicts {
        let error = |e: &str| format!("<span class=\"chip error\">error</span> {}", esc(e));
        let (suite, fuzz) = match &v.error {
            // The suite found it before the fuzzer failed.
            Some(e) if v.suite.is_some() => (cell(&v.suite), error(e)),
            Some(e) => (error(e), String::new()),
            None => (cell(&v.suite), cell(&v.fuzz)),
        };
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{suite}</td><td>{fuzz}</td><td>{}</td></tr>",
            esc(&v.name),
            esc(&v.about),
            repro(&v.repro)
        );
    }
    s.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(scenario: &str, kernel: &str, status: &str, mapcount: i64) -> Outcome {
        let json = format!(
            r#"{{"results":[{{"scenario":"{scenario}","file":"scenarios/{scenario}.yaml","kernel":"{kernel}",
            "release":"r-{kernel}","page_size":4096,"status":"{status}",
            "findpages":[{{"at":"a[0]","proc":"p0","kind":"anon","order":0,"mapcount":{mapcount},
              "mapped_by":["p0"],"visited_not_mapped":["c1"],
              "vmas":[{{"proc":"c1","at":"a[0]","flags":"rw-p anon_vma","state":"visited"}},
                {{"proc":"p0","at":"a[0]","flags":"rw-p anon_vma","state":"mapped"}}]}}],
            "findtasks":[],"forks":[{{"parent":"p0","child":"c1"}}],"checks":[],
            "problems":{problems},"model_mismatches":[],"notes":[],"splats":[],"duration_ms":5}}]}}"#,
            problems = if status == "pass" { "[]" } else { r#"[{"check":"O1","message":"walk <missed> c1"}]"# }
        );
        crate::report::results::parse(&json).unwrap().remove(0)
    }

    #[test]
    fn verdicts_compare_against_the_committed_snapshot() {
        let o = outcome("s", "6.12", "pass", 1);
        let snap = report::snapshot(&o);
        assert_eq!(verdict(&o, Some(&snap)), Verdict::Pass);
        assert_eq!(verdict(&o, Some("other\n")), Verdict::Drift);
        assert_eq!(verdict(&o, None), Verdict::NoSnapshot);
        assert_eq!(verdict(&outcome("s", "6.12", "fail", 1), Some(&snap)), Verdict::Fail);
    }

    #[test]
    fn kernels_sort_by_version() {
        let mut keys = vec!["7.3", "6.12", "7.2-debug", "6.1", "7.2"];
        keys.sort_by_key(|k| version_key(k));
        assert_eq!(keys, ["6.1", "6.12", "7.2", "7.2-debug", "7.3"]);
    }

    #[test]
    fn the_page_has_the_matrix_drift_side_by_side_and_pictures() {
        let a = outcome("s", "6.12", "pass", 1);
        let b = outcome("s", "7.2", "pass", 2);
        let c = outcome("t<x>", "6.12", "fail", 1);
        let mut committed = Committed::new();
        committed.insert(("s".into(), "6.12".into()), Some(report::snapshot(&a)));
        committed.insert(("s".into(), "7.2".into()), Some(report::snapshot(&a)));
        committed.insert(("t<x>".into(), "6.12".into()), None);
        let outcomes = vec![a, b, c];
        let page = render(&outcomes, &committed, &[], &[], None);
        assert!(page.contains("<table class=\"matrix\">"));
        // Kernel columns, cells for both scenarios, and a "not run" cell for t<x> on 7.2.
        assert_eq!(page.matches("<td class=\"cell\">").count(), 4);
        assert!(page.contains("– not run"));
        assert!(page.contains("class=\"drift\"") && page.contains("class=\"fail\""));
        // The drift diff, and the differing line marked in the side-by-side table.
        assert!(page.contains("<span class=\"del\">-findpage p0 a[0]: anon order=0 mapcount=1</span>"), "{page}");
        assert!(page.contains("<tr class=\"differs\">"));
        // s found different pages on 6.12 and 7.2 (mapcount 1 and 2): a picture each.
        // t<x> has one findpage on one kernel: one picture. Three in all.
        let caption =
            |k: &str| format!("<figcaption><b>findpage p0 a[0]</b> on {k}</figcaption><svg class=\"findpage\"");
        assert_eq!(page.matches(&caption("6.12")).count(), 2, "s and t<x> on 6.12");
        assert_eq!(page.matches(&caption("7.2")).count(), 1, "s on 7.2");
        assert_eq!(page.matches("<svg class=\"findpage\"").count(), 3);
        // Kernels that found the same page share one picture.
        let same = vec![outcome("s", "6.12", "pass", 1), outcome("s", "7.2", "pass", 1)];
        let shared = render(&same, &committed, &[], &[], None);
        assert_eq!(shared.matches(&caption("6.12, 7.2")).count(), 1, "{shared}");
        assert_eq!(shared.matches("<svg class=\"findpage\"").count(), 1);
        // Names and messages are escaped.
        assert!(page.contains("t&lt;x&gt;") && !page.contains("t<x>"));
        assert!(page.contains("walk &lt;missed&gt; c1"));
    }

    #[test]
    fn the_job_summary_lists_failures_and_drift() {
        let a = outcome("s", "6.12", "pass", 2);
        let f = outcome("t", "6.12", "fail", 1);
        let mut committed = Committed::new();
        committed.insert(("s".into(), "6.12".into()), Some("old\n".into()));
        let md = summary_markdown(&[a, f], &committed);
        assert!(md.contains("- `t::6.12` Fail: walk &lt;missed&gt; c1"), "{md}");
        assert!(md.contains("```diff\n--- expected\n+++ actual\n-old\n+findpage"), "{md}");
    }

    /// Every frame of a splat's decoded stack is on the page; a kernel without debug
    /// info is said once, not under each scenario.
    #[test]
    fn each_splat_shows_its_decoded_stack_and_missing_debug_info_is_said_once() {
        use crate::check::dmesg::{Splat, SplatKind};
        let undecoded = format!("{}: 6.12 has no vmlinux with debug info here", report::UNDECODED_NOTE);
        let mut a = outcome("s", "6.12", "fail", 1);
        a.splats.push(Splat {
            kind: SplatKind::BadPageMap,
            line: "BUG: Bad page map in process <init>".into(),
            title: "Bad page map".into(),
            trace: vec![
                "print_bad_pte+0x1a0/0x258 (mm/memory.c:515)".into(),
                "zap_pte_range+0x2f4/0x8c0 (mm/memory.c:1530)".into(),
            ],
        });
        a.notes.push(undecoded.clone());
        let mut b = outcome("t", "6.12", "fail", 1);
        b.notes.push(undecoded.clone());
        let html = render(&[a, b], &Committed::new(), &[], &[], None);
        assert!(html.contains("Stack of <code>BUG: Bad page map in process &lt;init&gt;</code> on 6.12"), "{html}");
        assert!(html
            .contains("print_bad_pte+0x1a0/0x258 (mm/memory.c:515)\nzap_pte_range+0x2f4/0x8c0 (mm/memory.c:1530)\n"));
        // (The normalised output, the snapshot text, keeps each run's notes as they are.)
        assert_eq!(html.matches(&format!("<b>note</b> {undecoded}")).count(), 1, "{html}");
    }

    #[test]
    fn the_html_section_shows_each_mutant_escaped() {
        let mut v = mutants::example("a<b>", None, Some(3.0));
        v.about = "x & y".into();
        let run = |verdict, detail: &str| mutants::ReproRun { verdict, detail: detail.into() };
        v.repro = Some(mutants::Repro {
            source: "a/repro.c".into(),
            from: "fuzz".into(),
            mutant: run(mutants::ReproVerdict::Fail, "FAIL: c1 <m>[0]"),
            clean: run(mutants::ReproVerdict::Pass, ""),
        });
        let mut s = String::new();
        mutants_section(&mut s, &[v, mutants::example("c", None, None)]);
        assert!(s.contains("a&lt;b&gt;") && s.contains("x &amp; y") && !s.contains("a<b>"));
        assert!(s.contains("<span class=\"chip pass\">mutant FAIL, clean PASS</span> FAIL: c1 &lt;m&gt;[0]"), "{s}");
        assert_eq!(s.matches("<tr><td").count(), 2);
        assert!(s.contains("missed") && s.contains("caught 1/2"));
    }
}
