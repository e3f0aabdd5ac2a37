//! The `key=value` words that both wire formats use (docs/PROTOCOL.md): the agent's
//! lines and the module's kernel log lines. Shared by `vm::protocol` and `check::dmesg`.

use std::collections::BTreeMap;

pub type Fields = BTreeMap<String, String>;

/// Split `a=1 b=2` into fields; words without `=` get an empty value.
pub fn parse_fields(text: &str) -> Fields {
    text.split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.to_string(), String::new()),
        })
        .collect()
}
