//! The line protocol has one source of truth on the host, `rmapcheck::ops` (every op,
//! its keys, the agent's limits). This test fails when guest/agent/ops.c, guest/agent/
//! agent.h or docs/PROTOCOL.md's tables say otherwise, or when an op the host sends by
//! name is not in it. Reads files only.

use regex::Regex;
use rmapcheck::ops::{AGENT_LIMITS, OPS, WORKER_FAILURE_KEYS};
use rmapcheck::scenario::{MAX_MAPS, MAX_PAGES, MAX_PROCS};
use std::collections::{BTreeMap, BTreeSet};

fn read(rel: &str) -> String {
    let path = rmapcheck::project_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Rust table: keys by op name.
fn table() -> BTreeMap<String, Vec<String>> {
    OPS.iter().map(|s| (s.name.to_string(), s.keys.iter().map(|k| k.to_string()).collect())).collect()
}

/// ops.c: `{ "name", op_handler, KEYS("a", "b") }` or `NO_KEYS`, by name.
fn agent_ops() -> BTreeMap<String, Vec<String>> {
    let text = read("guest/agent/ops.c");
    let entry = Regex::new(r#"\{\s*"(\w+)",\s*op_\w+,\s*(NO_KEYS|KEYS\(([^)]*)\))\s*\}"#).unwrap();
    let key = Regex::new(r#""(\w+)""#).unwrap();
    entry
        .captures_iter(&text)
        .map(|c| {
            let keys = c.get(3).map(|k| key.captures_iter(k.as_str()).map(|k| k[1].to_string()).collect());
            (c[1].to_string(), keys.unwrap_or_default())
        })
        .collect()
}

/// PROTOCOL.md's request table: `| \`op\` | keys | reply | notes |`, by op.
fn documented_ops() -> BTreeMap<String, String> {
    let text = read("docs/PROTOCOL.md");
    let row = Regex::new(r"(?m)^\| `([a-z_]+)` \|((?:[^|\\]|\\\|)*)\|").unwrap();
    row.captures_iter(&text).map(|c| (c[1].to_string(), c[2].trim().to_string())).collect()
}

/// PROTOCOL.md's limits table: `| \`MAX_PROCS\` | 128 | ... |`.
fn documented_limits() -> BTreeMap<String, u64> {
    let text = read("docs/PROTOCOL.md");
    let row = Regex::new(r"(?m)^\| `([A-Z_]+)` \| (\d+) \|").unwrap();
    row.captures_iter(&text).map(|c| (c[1].to_string(), c[2].parse().unwrap())).collect()
}

/// agent.h's `#define`s of the limits the table names.
fn agent_limits() -> BTreeMap<String, u64> {
    let text = read("guest/agent/agent.h");
    let define = Regex::new(r"(?m)^#define (\w+)\s+(\d+)\b").unwrap();
    let named: BTreeSet<&str> = AGENT_LIMITS.iter().map(|(n, _)| *n).collect();
    define
        .captures_iter(&text)
        .filter(|c| named.contains(&c[1]))
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect()
}

/// Op names the host sends as literals (`request("ping"`, ...); step requests are
/// `Op`s, and so in the table by construction.
fn host_literal_ops() -> BTreeSet<String> {
    let call =
        Regex::new(r#"(?:send|optional|request|request_within|send_only|timed|must)\((?:n, step, |g, )?"([a-z_]+)""#)
            .unwrap();
    let mut out = BTreeSet::new();
    let root = rmapcheck::project_root();
    let mut dirs: Vec<_> = ["core/src", "vm/src", "harness/src"].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.extend(call.captures_iter(&text).map(|c| c[1].to_string()));
            }
        }
    }
    out
}

#[test]
fn the_agents_op_table_is_the_hosts() {
    let agent = agent_ops();
    assert!(agent.len() >= 40, "ops.c parsed to {} ops: {:?}", agent.len(), agent.keys());
    let want = table();
    let drift: Vec<String> = want
        .keys()
        .chain(agent.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|op| want.get(*op) != agent.get(*op))
        .map(|op| format!("{op}: ops.rs {:?}, ops.c {:?}", want.get(op), agent.get(op)))
        .collect();
    assert!(drift.is_empty(), "ops.c and rmapcheck::ops differ:\n{}", drift.join("\n"));
}

#[test]
fn protocol_md_documents_every_op_and_key() {
    let doc = documented_ops();
    let want = table();
    let only_table: Vec<_> = want.keys().filter(|o| !doc.contains_key(*o)).collect();
    let only_doc: Vec<_> = doc.keys().filter(|o| !want.contains_key(*o)).collect();
    assert!(
        only_table.is_empty() && only_doc.is_empty(),
        "in rmapcheck::ops only: {only_table:?}; in PROTOCOL.md only: {only_doc:?}"
    );
    let mut undocumented = Vec::new();
    for (op, keys) in &want {
        for key in keys {
            let word = Regex::new(&format!(r"(^|[^\w]){key}($|[^\w])")).unwrap();
            if !word.is_match(&doc[op]) {
                undocumented.push(format!("{op} {key}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "keys the ops take that PROTOCOL.md's table does not show: {undocumented:?}");
}

#[test]
fn agent_h_and_protocol_md_have_the_hosts_limits() {
    let want: BTreeMap<String, u64> = AGENT_LIMITS.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    assert_eq!(agent_limits(), want, "agent.h's limits differ from rmapcheck::ops::AGENT_LIMITS");
    assert_eq!(documented_limits(), want, "PROTOCOL.md's limits table differs from rmapcheck::ops::AGENT_LIMITS");
}

#[test]
fn the_worker_failure_keys_are_documented_and_written() {
    let doc = read("docs/PROTOCOL.md");
    let agent = read("guest/agent/proctable.c");
    for key in WORKER_FAILURE_KEYS {
        assert!(doc.contains(&format!("`{key}=")), "PROTOCOL.md does not document the worker failure key {key}");
        let written = Regex::new(&format!(r#"" {key}=|"{key}""#)).unwrap();
        assert!(written.is_match(&agent), "proctable.c does not write the worker failure key {key}");
    }
}

#[test]
fn every_op_the_host_sends_by_name_is_in_the_table() {
    let sent = host_literal_ops();
    assert!(sent.len() >= 10, "found {} sent ops: {sent:?}", sent.len());
    let known = table();
    let unknown: Vec<_> = sent.iter().filter(|o| !known.contains_key(*o)).collect();
    assert!(unknown.is_empty(), "the host sends ops the table does not have: {unknown:?}");
}

#[test]
fn the_scenario_limits_fit_in_the_agents() {
    // World holds scenarios to these (MAX_PROCS counts every process a scenario makes,
    // so it bounds the live ones too); the agent must hold them.
    let agent: BTreeMap<&str, u64> = AGENT_LIMITS.iter().copied().collect();
    assert!(MAX_PROCS as u64 <= agent["MAX_PROCS"], "MAX_PROCS {MAX_PROCS} > the agent's");
    assert!(MAX_MAPS as u64 <= agent["MAX_MAPS"], "MAX_MAPS {MAX_MAPS} > the agent's");
    assert!(MAX_PAGES <= agent["MAX_MAP_PAGES"], "MAX_PAGES {MAX_PAGES} > MAX_MAP_PAGES");
    assert!(MAX_PAGES <= agent["MAX_IO_PAGES"], "a write of a whole map must fit MAX_IO_PAGES");
}
