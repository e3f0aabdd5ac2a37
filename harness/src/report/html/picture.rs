//! An SVG picture of one findpage: the page, the VMAs the rmap walk visited (those that
//! map it, and those visited but not mapping it), the processes that own them and, when
//! the scenario forked, the fork tree that links those processes.
//!
//! Architecture invariant: pure; it reads the labels `runner::labelled` makes and never
//! a pid or an address.

use super::escape::esc;
use crate::check::dmesg::VmaState;
use crate::check::outcome::{Findpage, Fork, VmaLabel};
use std::collections::BTreeMap;
use std::fmt::Write;

const ROW: i32 = 36;
const TOP: i32 = 34;
const PROC_X: i32 = 12;
const INDENT: i32 = 18;
const VMA_X: i32 = 200;
const VMA_W: i32 = 230;
const PAGE_X: i32 = 500;
const PAGE_W: i32 = 180;
const WIDTH: i32 = 700;

/// The processes to draw, in fork-tree order with their depth: every process with a VMA
/// on the page, the one that asked, and (to show the tree) their ancestors.
fn processes<'a>(fp: &'a Findpage, forks: &'a [Fork]) -> Vec<(&'a str, usize, bool)> {
    let mut involved: Vec<&str> = fp.vmas.iter().map(|v| v.proc.as_str()).collect();
    involved.push(&fp.proc);
    let parent: BTreeMap<&str, &str> = forks.iter().map(|f| (f.child.as_str(), f.parent.as_str())).collect();
    let mut shown: Vec<&str> = Vec::new();
    for p in &involved {
        let mut cur = *p;
        loop {
            if !shown.contains(&cur) {
                shown.push(cur);
            }
            match parent.get(cur) {
                Some(up) if !shown.contains(up) => cur = up,
                _ => break,
            }
        }
    }
    // Depth-first from the roots, children in fork order; leftovers (e.g. "?") last.
    let mut out = Vec::new();
    let mut roots: Vec<&str> = shown.iter().copied().filter(|p| !parent.contains_key(p)).collect();
    roots.sort_by_key(|r| (*r != "p0", *r == "?", *r));
    let mut stack: Vec<(&str, usize)> = roots.iter().rev().map(|r| (*r, 0)).collect();
    while let Some((p, depth)) = stack.pop() {
        if out.iter().any(|(q, _, _)| *q == p) {
            continue;
        }
        out.push((p, depth, involved.contains(&p)));
        let children: Vec<&str> = forks
            .iter()
            .filter(|f| f.parent == p && shown.contains(&f.child.as_str()))
            .map(|f| f.child.as_str())
            .collect();
        for c in children.into_iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    out
}

/// The picture as an inline `<svg>` element.
pub fn findpage_svg(fp: &Findpage, forks: &[Fork]) -> String {
    let vmas = &fp.vmas;
    let procs = processes(fp, forks);

    // Lay out rows: each process takes one row per VMA it owns (at least one).
    let mut proc_y: BTreeMap<&str, i32> = BTreeMap::new();
    let mut vma_rows: Vec<(&VmaLabel, i32)> = Vec::new();
    let mut row = 0;
    for (p, _, _) in &procs {
        let own: Vec<&VmaLabel> = vmas.iter().filter(|v| v.proc == *p).collect();
        let y = TOP + row * ROW;
        proc_y.insert(p, y + if own.len() > 1 { (own.len() as i32 - 1) * ROW / 2 } else { 0 });
        for v in own.iter() {
            vma_rows.push((v, TOP + row * ROW));
            row += 1;
        }
        if vmas.iter().all(|v| v.proc != *p) {
            row += 1;
        }
    }
    let rows_h = row.max(1) * ROW;
    let page_h = 104;
    let body_h = rows_h.max(page_h);
    let legend_y = TOP + body_h + 8;
    let height = legend_y + 24;
    let page_y = TOP + (body_h - page_h) / 2 - 6;
    let page_mid = page_y + page_h / 2;

    let mut s = String::new();
    let title = format!("findpage {} {}: {} order={} mapcount={}", fp.proc, fp.at, fp.kind, fp.order, fp.mapcount);
    let _ = write!(
        s,
        r#"<svg class="findpage" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img"><title>{}</title>"#,
        esc(&title)
    );
    for (x, label) in [(PROC_X, "processes"), (VMA_X, "VMAs the walk visited"), (PAGE_X, "page")] {
        let _ = write!(s, r#"<text class="col" x="{x}" y="16">{label}</text>"#);
    }

    // Fork edges first, so nodes draw over them.
    let depth_of: BTreeMap<&str, usize> = procs.iter().map(|(p, d, _)| (*p, *d)).collect();
    for f in forks {
        let (Some(py), Some(cy)) = (proc_y.get(f.parent.as_str()), proc_y.get(f.child.as_str())) else { continue };
        let px = PROC_X + depth_of[f.parent.as_str()] as i32 * INDENT + 10;
        let cx = PROC_X + depth_of[f.child.as_str()] as i32 * INDENT;
        let _ = write!(s, r#"<path class="fork" d="M{px},{} V{} H{cx}"/>"#, py + 12, cy + 14);
    }
    for (p, depth, involved) in &procs {
        let x = PROC_X + *depth as i32 * INDENT;
        let y = proc_y[p];
        let class = if *p == fp.proc {
            "proc asker"
        } else if *involved {
            "proc"
        } else {
            "proc faded"
        };
        let _ = write!(
            s,
            r#"<g class="{class}"><rect x="{x}" y="{y}" width="64" height="26" rx="13"/><text x="{}" y="{}" text-anchor="middle">{}</text></g>"#,
            x + 32,
            y + 17,
            esc(p)
        );
    }

    for (v, y) in &vma_rows {
        let class = match v.state {
            VmaState::Mapped => "vma mapped",
            VmaState::Visited => "vma visited",
            VmaState::Listed => "vma listed",
        };
        let depth = depth_of.get(v.proc.as_str()).copied().unwrap_or(0) as i32;
        let _ = write!(
            s,
            r#"<line class="own" x1="{}" y1="{}" x2="{VMA_X}" y2="{}"/>"#,
            PROC_X + depth * INDENT + 64,
            proc_y[v.proc.as_str()] + 13,
            y + 13
        );
        let _ = write!(
            s,
            r#"<g class="{class}"><rect x="{VMA_X}" y="{y}" width="{VMA_W}" height="26" rx="4"/><text x="{}" y="{}"><tspan class="at">{}</tspan> {}</text></g>"#,
            VMA_X + 10,
            y + 17,
            esc(&v.at),
            esc(&v.flags)
        );
        let (edge, label) = match v.state {
            VmaState::Mapped => ("edge mapped", "maps"),
            VmaState::Visited => ("edge visited", "visited, not mapped"),
            VmaState::Listed => ("edge listed", "listed"),
        };
        let _ = write!(
            s,
            r#"<path class="{edge}" d="M{},{} C{},{} {},{} {PAGE_X},{page_mid}"><title>{}</title></path>"#,
            VMA_X + VMA_W,
            y + 13,
            VMA_X + VMA_W + 40,
            y + 13,
            PAGE_X - 40,
            page_mid,
            esc(&format!("{} {}: {label}", v.proc, v.at))
        );
    }

    if vmas.iter().any(|v| v.state == VmaState::Mapped) {
        let _ = write!(s, r#"<circle class="dot" cx="{PAGE_X}" cy="{page_mid}" r="4"/>"#);
    }
    let kind_class = format!("page kind-{}", fp.kind.chars().filter(char::is_ascii_alphanumeric).collect::<String>());
    let _ = write!(
        s,
        r#"<g class="{kind_class}"><rect x="{PAGE_X}" y="{page_y}" width="{PAGE_W}" height="{page_h}" rx="8"/>"#
    );
    let lines = [
        ("head", format!("{} {}", fp.proc, fp.at)),
        ("", format!("{} · order {}", fp.kind, fp.order)),
        ("", format!("mapcount {}", fp.mapcount)),
        (
            "",
            if fp.mapped_by.is_empty() {
                "mapped by nobody".to_string()
            } else {
                format!("mapped by {}", fp.mapped_by.join(", "))
            },
        ),
    ];
    for (i, (class, text)) in lines.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="{class}" x="{}" y="{}">{}</text>"#,
            PAGE_X + 12,
            page_y + 24 + i as i32 * 22,
            esc(text)
        );
    }
    s.push_str("</g>");

    let _ = write!(
        s,
        r#"<g class="legend" transform="translate({PROC_X},{legend_y})"><line class="edge mapped" x1="0" y1="8" x2="28" y2="8"/><text x="34" y="12">maps the page</text><line class="edge visited" x1="140" y1="8" x2="168" y2="8"/><text x="174" y="12">visited, not mapped (own copy)</text>"#
    );
    if procs.iter().any(|(_, d, _)| *d > 0) {
        s.push_str(r#"<path class="fork" d="M390,2 V8 H410"/><text x="416" y="12">fork</text>"#);
    }
    s.push_str("</g>");
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findpage(proc: &str, at: &str, vmas: &[(&str, VmaState)]) -> Findpage {
        Findpage {
            at: at.into(),
            proc: proc.into(),
            kind: "anon".into(),
            order: 0,
            mapcount: 1,
            mapped_by: vec!["p0".into()],
            visited_not_mapped: vec!["c1".into()],
            vmas: vmas
                .iter()
                .map(|(who, state)| VmaLabel {
                    proc: (*who).into(),
                    at: at.into(),
                    flags: "rw-p".into(),
                    state: *state,
                })
                .collect(),
            mcsem: String::new(),
        }
    }

    #[test]
    fn draws_every_vma_the_fork_tree_and_escapes_labels() {
        let fp = findpage("p0", "a<b>[0]", &[("c1.1", VmaState::Visited), ("p0", VmaState::Mapped)]);
        let forks = vec![
            Fork { parent: "p0".into(), child: "c1".into() },
            Fork { parent: "c1".into(), child: "c1.1".into() },
            Fork { parent: "p0".into(), child: "c2".into() },
        ];
        let svg = findpage_svg(&fp, &forks);
        assert_eq!(svg.matches(r#"class="vma "#).count(), 2);
        assert!(svg.contains(r#"class="vma mapped""#) && svg.contains(r#"class="vma visited""#));
        // c1 is drawn (faded) to link c1.1 to p0; c2 has nothing to do with the page.
        assert!(svg.contains(r#"class="proc faded""#) && svg.contains(">c1<"), "{svg}");
        assert!(!svg.contains(">c2<"), "{svg}");
        assert_eq!(svg.matches(r#"class="fork" d="M"#).count(), 2 + 1, "two tree edges and the legend");
        assert!(svg.contains("a&lt;b&gt;[0]") && !svg.contains("a<b>"));
    }

    #[test]
    fn a_page_nobody_maps_still_draws() {
        let mut fp = findpage("p0", "a[0]", &[]);
        fp.kind = "none".into();
        fp.mapped_by.clear();
        let svg = findpage_svg(&fp, &[]);
        assert!(svg.contains("mapped by nobody") && svg.contains(">p0<"));
    }
}
