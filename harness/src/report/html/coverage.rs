//! The report's coverage page (`coverage.html`), like syzkaller's cover page: per file
//! and function, the source lines with each coverable line (one with a KCOV call site)
//! marked reached or not, the others neutral;
//! the rmap entry points; and coverage over time as SVG plots (lines of mm/rmap.c
//! against runs and against seconds, one curve per campaign or shard).
//!
//! Architecture invariant: like index.html, one self-contained file without script;
//! every text goes through `esc`.

use super::escape::{esc, slug};
use crate::coverage::summary::{Coverage, Curve, FuncCov, Reach, NO_KCOV, PLOT_FILE};
use std::fmt::Write;

/// The page's file name beside index.html.
pub const PAGE: &str = "coverage.html";

const CSS: &str = r#"
:root { --fg:#1f2933; --muted:#66788a; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff;
  --hit:#2f855a; --hit-bg:#d8f3e2; --miss:#c53030; --miss-bg:#fde2e2; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#102a43; color:#f0f4f8; padding:18px 32px; }
header h1 { margin:0; font-size:22px; } header p { margin:4px 0 0; color:#bcccdc; } header a { color:#9fd3ff; }
main { padding:8px 32px 48px; max-width:1500px; }
h2 { font-size:18px; margin:24px 0 10px; } h3 { font-size:15px; margin:14px 0 6px; }
a { color:#1c5aa6; text-decoration:none; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size:12.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 20px; margin:14px 0; }
.chip { display:inline-block; border-radius:999px; padding:1px 9px; font-weight:600; font-size:12.5px; margin:2px; }
.chip.hit { color:var(--hit); background:var(--hit-bg); } .chip.miss { color:var(--miss); background:var(--miss-bg); }
.chip.absent { color:var(--muted); background:#eef2f6; }
table.files td, table.files th { padding:4px 12px; text-align:left; border-bottom:1px solid var(--line); }
.bar { display:inline-block; width:160px; height:10px; background:var(--miss-bg); border-radius:5px; overflow:hidden; vertical-align:middle; }
.bar span { display:block; height:100%; background:var(--hit); }
details.fn { margin:4px 0; } details.fn summary { cursor:pointer; font-family: ui-monospace, monospace; }
table.src { border-collapse:collapse; width:100%; margin:4px 0 10px; }
table.src td { padding:0 8px; white-space:pre; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; }
table.src td.n { color:var(--muted); text-align:right; width:56px; user-select:none; }
table.src td.m { width:22px; text-align:center; font-weight:700; }
table.src tr.hit td { background:#d8f3e2; } table.src tr.hit td.m { color:var(--hit); }
table.src tr.miss td { background:#fde2e2; } table.src tr.miss td.m { color:var(--miss); }
svg.plot { display:block; max-width:100%; height:auto; font-family: system-ui, sans-serif; font-size:11px; }
svg.plot .axis { stroke:#9fb3c8; stroke-width:1; } svg.plot .grid { stroke:#eef2f6; stroke-width:1; }
svg.plot .curve { fill:none; stroke-width:2.2; } svg.plot text { fill:#52606d; }
.plots { display:flex; gap:16px; flex-wrap:wrap; }
.muted { color:var(--muted); }
"#;

const COLOURS: &[&str] = &["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b"];

/// Which x axis a plot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Runs,
    Seconds,
}

/// A round step for an axis up to `max` with about 5 ticks.
fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

/// An SVG line plot of `curves` (y: their values; x: runs or seconds).
pub fn plot_svg(curves: &[Curve], axis: Axis, y_label: &str) -> String {
    let (w, h, left, right, top, bottom) = (560.0, 300.0, 56.0, 16.0, 16.0, 44.0);
    let x_of = |p: &(u64, f64, u64)| match axis {
        Axis::Runs => p.0 as f64,
        Axis::Seconds => p.1,
    };
    let xmax = curves.iter().flat_map(|c| c.points.iter().map(x_of)).fold(0.0, f64::max).max(1.0);
    let ymax = curves.iter().flat_map(|c| c.points.iter().map(|p| p.2 as f64)).fold(0.0, f64::max).max(1.0);
    let (xs, ys) = (tick_step(xmax), tick_step(ymax));
    let (xmax, ymax) = ((xmax / xs).ceil() * xs, (ymax / ys).ceil() * ys);
    let px = |x: f64| left + x / xmax * (w - left - right);
    let py = |y: f64| h - bottom - y / ymax * (h - top - bottom);
    let mut s = format!(
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\">"
    );
    let mut t = 0.0;
    while t <= ymax + 1e-9 {
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            py(t) + 4.0,
            t,
            y = py(t)
        );
        t += ys;
    }
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        let _ =
            write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", px(t), h - bottom + 16.0, t);
        t += xs;
    }
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>",
        h - bottom,
        w - right,
        y = h - bottom
    );
    let x_label = match axis {
        Axis::Runs => "runs",
        Axis::Seconds => "seconds",
    };
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_label}</text><text x=\"{left}\" y=\"10\">{}</text>",
        (left + w - right) / 2.0,
        h - 8.0,
        esc(y_label)
    );
    for (i, c) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // A step line: coverage stays flat between points.
        let mut d = format!("M{:.1},{:.1}", px(0.0), py(0.0));
        let mut last_y = 0.0;
        for p in &c.points {
            let _ = write!(d, " L{:.1},{:.1} L{:.1},{:.1}", px(x_of(p)), py(last_y), px(x_of(p)), py(p.2 as f64));
            last_y = p.2 as f64;
        }
        let _ = write!(
            s,
            "<path class=\"curve\" stroke=\"{colour}\" d=\"{d}\"><title>{}</title></path><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>",
            esc(&c.name),
            left + 8.0,
            top + 14.0 + 14.0 * i as f64,
            esc(&c.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// One function: a summary line and its source lines, marked.
fn function(s: &mut String, file: &str, f: &FuncCov, source: Option<&[&str]>) {
    if f.lines.is_empty() {
        return;
    }
    let (first, last) = f.span;
    let open = if f.reached() > 0 && f.reached() < f.lines.len() { " open" } else { "" };
    let chip = if f.reached() > 0 { "hit" } else { "miss" };
    let _ = write!(
        s,
        "<details class=\"fn\" id=\"f-{}\"{open}><summary>{} <span class=\"chip {chip}\">{}/{} lines</span> <span class=\"muted\">{}:{first}</span></summary>",
        slug(&format!("{file}:{}", f.name)),
        esc(&f.name),
        f.reached(),
        f.lines.len(),
        esc(file)
    );
    s.push_str("<table class=\"src\">");
    // One line before the first with code: the function's signature, mostly. Lines
    // without a KCOV call site are neutral: no run can reach or miss them.
    for n in first.saturating_sub(1).max(1)..=last {
        let text = source.and_then(|src| src.get(n as usize - 1)).copied().unwrap_or("");
        let (class, mark) = match f.lines.get(&n) {
            Some(true) => (" class=\"hit\"", "✓"),
            Some(false) => (" class=\"miss\"", "✗"),
            None => ("", ""),
        };
        let _ = write!(s, "<tr{class}><td class=\"n\">{n}</td><td class=\"m\">{mark}</td><td>{}</td></tr>", esc(text));
    }
    s.push_str("</table></details>");
}

/// The page. `source(file)` gives a file's text from the kernel tree, if there is one.
pub fn page(c: &Coverage, curves: &[Curve], what: &str, source: &dyn Fn(&str) -> Option<String>) -> String {
    let mut s = String::from("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<title>rmapcheck coverage</title><style>");
    s.push_str(CSS);
    let _ = writeln!(
        s,
        "</style></head><body>\n<header><h1>Kernel coverage</h1><p>{} · {} kernel PCs · <a href=\"index.html\">report</a></p></header>\n<main>",
        esc(what),
        c.pcs
    );
    if !c.has_lines {
        s.push_str("<p class=\"card\">The vmlinux has no line information (a kernel built without CONFIG_DEBUG_INFO): functions only, from its symbols.</p>");
    } else if !c.has_kcov {
        let _ = write!(s, "<p class=\"card\">{}.</p>", esc(NO_KCOV));
    }
    // Files.
    s.push_str("<section class=\"card\" id=\"files\"><h2>Files</h2><table class=\"files\"><thead><tr><th>file</th><th>lines reached</th><th></th><th>functions reached</th></tr></thead><tbody>");
    for f in &c.files {
        let (r, t) = f.lines();
        let fr = f.functions.iter().filter(|x| x.reached() > 0).count();
        let pct = if t == 0 { 0.0 } else { 100.0 * r as f64 / t as f64 };
        let _ = write!(
            s,
            "<tr><td class=\"mono\"><a href=\"#{}\">{}</a></td><td>{r} / {t}</td><td><span class=\"bar\"><span style=\"width:{pct:.1}%\"></span></span> {pct:.0}%</td><td>{fr} / {}</td></tr>",
            slug(&f.file),
            esc(&f.file),
            f.functions.len()
        );
    }
    s.push_str("</tbody></table></section>\n");
    // Over time.
    if !curves.is_empty() {
        let y = if c.has_lines { format!("lines of {PLOT_FILE} reached") } else { "kernel PCs reached".to_string() };
        let _ = writeln!(
            s,
            "<section class=\"card\" id=\"over-time\"><h2>Coverage over time</h2><div class=\"plots\">{}{}</div></section>",
            plot_svg(curves, Axis::Runs, &y),
            plot_svg(curves, Axis::Seconds, &y)
        );
    }
    // Entry points.
    s.push_str("<section class=\"card\" id=\"entry-points\"><h2>rmap entry points</h2><p>");
    for (file, name, reach) in &c.entry_points {
        let (class, word) = match reach {
            Reach::Reached => ("hit", "reached"),
            Reach::Never => ("miss", "never reached"),
            Reach::Absent => ("absent", "not in this kernel"),
        };
        let _ = write!(s, "<span class=\"chip {class}\" title=\"{} ({word})\">{}</span>", esc(file), esc(name));
    }
    s.push_str("</p></section>\n");
    // Source.
    for f in &c.files {
        let text = source(&f.file);
        let lines: Option<Vec<&str>> = text.as_deref().map(|t| t.lines().collect());
        let (r, t) = f.lines();
        let _ = write!(
            s,
            "<section class=\"card\" id=\"{}\"><h2 class=\"mono\">{} <span class=\"muted\">{r} of {t} lines</span></h2>",
            slug(&f.file),
            esc(&f.file)
        );
        if lines.is_none() {
            s.push_str("<p class=\"muted\">The source file is not at hand: line numbers only.</p>");
        }
        for func in &f.functions {
            function(&mut s, &f.file, func, lines.as_deref());
        }
        s.push_str("</section>\n");
    }
    s.push_str("</main></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::summary::{build, example::example};
    use crate::coverage::Pcs;

    #[test]
    fn the_page_marks_lines_beside_the_source_and_plots_over_time() {
        let c = build(&example(), &Pcs::new(vec![1, 2]));
        let curves = vec![Curve { name: "coverage-shard0of2".into(), points: vec![(1, 0.5, 1), (40, 30.0, 3)] }];
        let src = |file: &str| {
            (file == "mm/rmap.c").then(|| (1..=30).map(|n| format!("line {n} <code>")).collect::<Vec<_>>().join("\n"))
        };
        let p = page(&c, &curves, "fuzz-out", &src);
        // rmap_walk: lines 10-13 with 10 and 12 reached, beside their text.
        assert!(
            p.contains(
                "<tr class=\"hit\"><td class=\"n\">10</td><td class=\"m\">✓</td><td>line 10 &lt;code&gt;</td></tr>"
            ),
            "{p}"
        );
        assert!(p.contains(
            "<tr class=\"miss\"><td class=\"n\">11</td><td class=\"m\">✗</td><td>line 11 &lt;code&gt;</td></tr>"
        ));
        // Line 14 has code but no KCOV call site: shown, neutral, and not counted.
        assert!(
            p.contains("<tr><td class=\"n\">14</td><td class=\"m\"></td><td>line 14 &lt;code&gt;</td></tr>"),
            "{p}"
        );
        assert!(p.contains("<span class=\"chip hit\">2/4 lines</span>"));
        assert_eq!(p.matches("<tr class=\"hit\">").count(), 2);
        assert_eq!(p.matches("<tr class=\"miss\">").count(), 5);
        // mm/memory.c has no source here.
        assert!(p.contains("not at hand"));
        // Two plots (runs, seconds), one curve each, and the entry points.
        assert_eq!(p.matches("<svg class=\"plot\"").count(), 2);
        assert_eq!(p.matches("<path class=\"curve\"").count(), 2);
        assert!(p.contains("lines of mm/rmap.c reached"));
        assert!(p.contains("<span class=\"chip hit\" title=\"mm/rmap.c (reached)\">rmap_walk</span>"));
        assert!(p.contains("<span class=\"chip miss\" title=\"mm/rmap.c (never reached)\">try_to_unmap</span>"));
        assert!(!p.contains("<script"));
    }

    #[test]
    fn plots_scale_to_round_ticks() {
        assert_eq!(tick_step(47.0), 10.0);
        assert_eq!(tick_step(3.0), 1.0);
        assert_eq!(tick_step(1200.0), 500.0);
        let svg = plot_svg(&[Curve { name: "a<b".into(), points: vec![(10, 1.0, 5)] }], Axis::Runs, "y");
        // The step line rises at x = 10 of an axis to 10: the plot's right edge.
        assert!(svg.contains("d=\"M56.0,256.0 L544.0,256.0 L544.0,16.0\""), "{svg}");
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
    }
}
