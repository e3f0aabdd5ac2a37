//! The layer check: `cargo test` fails when a module uses a layer above its own, or when
//! modules use each other in a cycle. It reads the sources' `crate::` and `super::`
//! paths; the binary (main.rs) sits on top and is not checked.
//!
//! The crate graph (core < vm < rmapcheck) already keeps each crate below the next;
//! this check keeps the order inside each crate (scenario below check, image below
//! vm, report below run below fuzz) and finds cycles, which the compiler allows. The
//! crates above re-export the modules below under the same names, so a layer's name
//! means the same module in every crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, low to high. A module may use its own layer and those before it.
const LAYERS: &[&[&str]] = &[
    // Shared infrastructure; the crate root too.
    &["", "cache", "exec", "log", "ops", "signal", "wire"],
    &["scenario"],
    &["check"],
    &["image"],
    &["coverage"],
    &["vm"],
    // Every layer's typed errors, to exit codes.
    &["error"],
    &["report"],
    &["run"],
    &["fuzz"],
    &["mutants", "bisect"],
    &["ui"],
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// The module path of a source file: `check/dmesg/tests.rs` is `check::dmesg::tests`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "lib" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// Every module path a file names through `crate::` or `super::`, to two levels
/// (`check::dmesg`), with the line it is on.
fn uses(text: &str, module: &[String]) -> Vec<(Vec<String>, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (prefix, base) in [("crate::", Vec::new()), ("super::", module[..module.len().saturating_sub(1)].to_vec())]
        {
            let mut rest = code;
            while let Some(i) = rest.find(prefix) {
                let after = &rest[i + prefix.len()..];
                rest = after;
                // `crate::{a, b::c}` names each of its items.
                let items: Vec<&str> = match after.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![after],
                };
                for item in items {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|w| w.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
                        .take_while(|w| {
                            !w.is_empty() && w != "self" && w.chars().next().is_some_and(char::is_lowercase)
                        })
                        .collect();
                    if path.is_empty() {
                        continue;
                    }
                    let mut full = base.clone();
                    full.extend(path);
                    full.truncate(2);
                    out.push((full, n + 1));
                }
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_layer_uses_a_layer_above_it_and_no_module_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in ["core", "vm", "harness"] {
        let src = root.join(krate).join("src");
        let mut found = Vec::new();
        sources(&src, &mut found);
        files.extend(found.into_iter().map(|f| (src.clone(), f)));
    }
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (src, file) in files {
        let rel = file.strip_prefix(&src).unwrap();
        // The binary sits on top; this file's tests quote paths as data.
        if rel == Path::new("main.rs") || rel == Path::new("layers.rs") {
            continue;
        }
        let module = module_path(rel);
        let top = module.first().map(String::as_str).unwrap_or("");
        let Some(own) = layer_of(top) else {
            problems.push(format!("src/{}: module `{top}` is in no layer; add it to LAYERS", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let node = module.iter().take(2).cloned().collect::<Vec<_>>().join("::");
        for (used, line) in uses(&text, &module) {
            let used_top = used.first().map(String::as_str).unwrap_or("");
            match layer_of(used_top) {
                Some(l) if l > own => problems.push(format!(
                    "src/{}:{line}: layer `{top}` uses `{}`, a layer above it",
                    rel.display(),
                    used.join("::")
                )),
                _ => {}
            }
            let target = used.join("::");
            if target != node && layer_of(used_top).is_some() {
                graph.entry(node.clone()).or_default().insert(target);
            }
        }
    }
    if let Some(c) = cycle(&graph) {
        problems.push(format!("modules use each other in a cycle: {}", c.join(" -> ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_uses_and_cycles() {
    let module = vec!["fuzz".to_string(), "campaign".to_string()];
    let found: Vec<String> =
        uses("use crate::{cache, vm::guest::Fault};\nuse super::shrink::shrink; // crate::run\n", &module)
            .into_iter()
            .map(|(p, _)| p.join("::"))
            .collect();
    assert_eq!(found, ["cache", "vm::guest", "fuzz::shrink"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .iter()
        .map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()])))
        .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
