//! The line protocol is written down three times: the agent's op table (guest/agent/ops.c),
//! docs/PROTOCOL.md's table, and the op names the host sends. This test fails on any drift
//! between them, and on a host limit that asks for more than the agent holds
//! (guest/agent/agent.h). Reads files only.

use regex::Regex;
use rmapcheck::scenario::{MAX_MAPS, MAX_PAGES, MAX_PROCS};
use std::collections::{BTreeMap, BTreeSet};

fn read(rel: &str) -> String {
    let path = rmapcheck::project_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
    let row = Regex::new(r"(?m)^\| `(\w+)` \|((?:[^|\\]|\\\|)*)\|").unwrap();
    row.captures_iter(&text).map(|c| (c[1].to_string(), c[2].trim().to_string())).collect()
}

/// Op names the host sends as literals (`request("ping"`, `send(n, step, "mmap"`, ...).
fn host_ops() -> BTreeSet<String> {
    let call = Regex::new(r#"(?:send|optional|request|request_within|send_only)\((?:n, step, )?"([a-z_]+)""#).unwrap();
    let mut out = BTreeSet::new();
    let mut dirs = vec![rmapcheck::project_root().join("harness/src")];
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

fn agent_limit(name: &str) -> u64 {
    let text = read("guest/agent/agent.h");
    let re = Regex::new(&format!(r"(?m)^#define {name}\s+(\d+)")).unwrap();
    let caps = re.captures(&text).unwrap_or_else(|| panic!("agent.h has no {name}"));
    caps[1].parse().unwrap()
}

#[test]
fn the_agents_op_table_and_protocol_md_name_the_same_ops_and_keys() {
    let agent = agent_ops();
    let doc = documented_ops();
    assert!(agent.len() >= 40, "ops.c parsed to {} ops: {:?}", agent.len(), agent.keys());
    let only_agent: Vec<_> = agent.keys().filter(|o| !doc.contains_key(*o)).collect();
    let only_doc: Vec<_> = doc.keys().filter(|o| !agent.contains_key(*o)).collect();
    assert!(
        only_agent.is_empty() && only_doc.is_empty(),
        "in ops.c only: {only_agent:?}; in PROTOCOL.md only: {only_doc:?}"
    );
    let mut undocumented = Vec::new();
    for (op, keys) in &agent {
        for key in keys {
            let word = Regex::new(&format!(r"(^|[^\w]){key}($|[^\w])")).unwrap();
            if !word.is_match(&doc[op]) {
                undocumented.push(format!("{op} {key}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "keys ops.c takes that PROTOCOL.md's table does not show: {undocumented:?}");
}

#[test]
fn every_op_the_host_sends_is_one_the_agent_knows() {
    let agent = agent_ops();
    let sent = host_ops();
    assert!(sent.len() >= 20, "found {} sent ops: {sent:?}", sent.len());
    let unknown: Vec<_> = sent.iter().filter(|o| !agent.contains_key(*o)).collect();
    assert!(unknown.is_empty(), "the host sends ops the agent does not have: {unknown:?}");
}

#[test]
fn the_hosts_limits_fit_in_the_agents() {
    // The validator and the generator keep scenarios within these; the agent must hold
    // them (it may hold more, for its own processes and maps).
    assert!(MAX_PROCS as u64 <= agent_limit("MAX_PROCS"), "MAX_PROCS {MAX_PROCS} > agent.h");
    assert!(MAX_MAPS as u64 <= agent_limit("MAX_MAPS"), "MAX_MAPS {MAX_MAPS} > agent.h");
    assert!(MAX_PAGES <= agent_limit("MAX_MAP_PAGES"), "MAX_PAGES {MAX_PAGES} > agent.h MAX_MAP_PAGES");
    assert!(MAX_PAGES <= agent_limit("MAX_IO_PAGES"), "a write of a whole map must fit MAX_IO_PAGES");
}
