//! A stepped replay as one static page: a card per step with the mappings (changed
//! cells marked), each touched page with its findpage picture, and the first step at
//! which an oracle disagrees highlighted and linked from the top.
//!
//! Architecture invariant: as the report, one self-contained file with no script and no
//! external asset; every text goes through `esc`.

use super::escape::esc;
use super::picture::findpage_svg;
use crate::report::replay::{page_rows, MapView, Replay, StepView};
use std::fmt::Write;

const CSS: &str = r#"
.step.first { border:2px solid var(--fail); background:#fff8f8; }
.step h2 { display:flex; gap:10px; align-items:center; flex-wrap:wrap; margin:0 0 8px; }
table.maps td, table.maps th { border:1px solid var(--line); padding:2px 6px; font-size:12px; text-align:left; }
table.maps td.changed { background:var(--drift-bg); font-weight:700; }
table.maps td.absent { color:var(--muted); }
figure { max-width:100%; overflow-x:auto; }
table.rows th { text-align:left; padding-right:10px; color:var(--muted); font-weight:600; vertical-align:top; }
"#;

fn map_row(s: &mut String, m: &MapView, prev: Option<&MapView>) {
    let _ = write!(s, "<tr><th>{} {}</th>", esc(&m.proc), esc(&m.name));
    for (i, pfn) in m.pfns.iter().enumerate() {
        let before = prev.and_then(|p| p.pfns.get(i)).cloned().flatten();
        let changed = prev.is_none() || before != *pfn;
        let class = match (changed, pfn.is_some()) {
            (true, _) => " class=\"changed\"",
            (false, false) => " class=\"absent\"",
            _ => "",
        };
        let _ = write!(s, "<td{class}>{}</td>", esc(pfn.as_deref().unwrap_or("-")));
    }
    s.push_str("</tr>");
}

fn step_card(s: &mut String, r: &Replay, st: &StepView, prev: Option<&StepView>) {
    let first = Some(st.n) == r.first_disagreement;
    let _ = write!(
        s,
        "<section class=\"card step{}\" id=\"{}\"><h2>step {} of {} <code>{}</code>",
        if first { " first" } else { "" },
        if first { "first-disagreement".to_string() } else { format!("step-{}", st.n) },
        st.n,
        r.total_steps,
        esc(&st.step)
    );
    if st.fails() {
        s.push_str("<span class=\"chip fail\">✗ an oracle disagrees</span>");
    } else if st.disagrees() {
        s.push_str("<span class=\"chip drift\">≠ the model differs</span>");
    }
    if first {
        s.push_str("<span class=\"chip fail\">the first disagreement</span>");
    }
    s.push_str("</h2>");
    if !st.problems.is_empty() || !st.model.is_empty() {
        s.push_str("<ul class=\"problems\">");
        for p in st.problems.iter().chain(&st.model) {
            let _ = write!(s, "<li><b>{:?}</b> {}</li>", p.check, esc(&p.message()));
        }
        s.push_str("</ul>");
    }
    if st.maps.is_empty() {
        s.push_str("<p class=\"muted\">no named mappings</p>");
    } else {
        s.push_str("<table class=\"maps mono\"><tr><th>mapping</th><th colspan=\"99\">pfn per page</th></tr>");
        for m in &st.maps {
            let before = prev.and_then(|p| p.maps.iter().find(|q| q.proc == m.proc && q.name == m.name));
            map_row(s, m, before);
        }
        s.push_str("</table>");
    }
    let gone: Vec<&String> =
        st.changed.iter().filter(|c| !st.maps.iter().any(|m| format!("{} {}", m.proc, m.name) == **c)).collect();
    if !gone.is_empty() {
        let names: Vec<&str> = gone.iter().map(|g| g.as_str()).collect();
        let _ = write!(s, "<p>gone: {}</p>", esc(&names.join(", ")));
    }
    if !st.pages.is_empty() {
        s.push_str("<div class=\"pictures\">");
        for p in &st.pages {
            let _ = write!(s, "<figure><figcaption><b>{}</b></figcaption><table class=\"rows mono\">", esc(&p.slot));
            for (k, v) in page_rows(p) {
                let class = if k == "missed" { " class=\"fail\"" } else { "" };
                let _ = write!(s, "<tr{class}><th>{k}</th><td>{}</td></tr>", esc(&v));
            }
            s.push_str("</table>");
            if !p.problems.is_empty() {
                s.push_str("<ul class=\"problems\">");
                for pr in &p.problems {
                    let _ = write!(s, "<li class=\"fail\"><b>{:?}</b> {}</li>", pr.check, esc(&pr.message()));
                }
                s.push_str("</ul>");
            }
            if let Some(w) = &p.walk {
                s.push_str(&findpage_svg(w, &r.outcome.forks));
            }
            s.push_str("</figure>");
        }
        s.push_str("</div>");
    }
    for n in &st.notes {
        let _ = write!(s, "<p class=\"muted\">note: {}</p>", esc(n));
    }
    s.push_str("</section>\n");
}

/// The replay page.
pub fn render(r: &Replay) -> String {
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(s, "<title>rmapcheck replay: {}</title><style>", esc(&r.scenario));
    s.push_str(super::CSS);
    s.push_str(CSS);
    let _ = write!(
        s,
        "</style></head><body>\n<header><h1>replay {}</h1><p>{} on {} ({}) · {} of {} steps played</p></header>\n<main>\n",
        esc(&r.scenario),
        esc(&r.file),
        esc(&r.kernel),
        esc(&r.release),
        r.played,
        r.total_steps
    );
    s.push_str("<div class=\"totals\">");
    match r.first_disagreement {
        Some(n) => {
            let _ = write!(s, "<a class=\"chip fail\" href=\"#first-disagreement\">first disagreement at step {n}</a>");
        }
        None => s.push_str("<span class=\"chip pass\">every oracle agrees at every step</span>"),
    }
    if r.played < r.total_steps {
        let _ = write!(s, "<span class=\"chip drift\">stopped after step {} (--continue plays on)</span>", r.played);
    }
    let status = format!("{:?}", r.outcome.status).to_lowercase();
    let class = if status == "pass" { "pass" } else { "fail" };
    let _ = writeln!(s, "<span class=\"chip {class}\">the run's own checks: {status}</span></div>");
    let mut prev = None;
    for st in &r.steps {
        step_card(&mut s, r, st, prev);
        prev = Some(st);
    }
    if !r.outcome.problems.is_empty() {
        s.push_str("<section class=\"card\"><h2>the whole run</h2><ul class=\"problems\">");
        for p in &r.outcome.problems {
            let _ = write!(s, "<li><b>{:?}</b> {}</li>", p.check, esc(&p.message()));
        }
        s.push_str("</ul></section>\n");
    }
    s.push_str("</main></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::replay::tests::sample;

    #[test]
    fn the_first_disagreement_is_highlighted_linked_and_self_contained() {
        let html = render(&sample());
        assert!(html.contains("href=\"#first-disagreement\">first disagreement at step 2<"), "{html}");
        assert!(html.contains("class=\"card step first\" id=\"first-disagreement\"><h2>step 2 of 3"), "{html}");
        assert!(html.contains("id=\"step-1\""));
        assert!(html.contains("<td class=\"changed\">0x41</td>"), "{html}");
        assert!(html.contains("walk &lt;missed&gt; c1") && !html.contains("<missed>"));
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("http://www.w3.org/1999"));
    }
}
