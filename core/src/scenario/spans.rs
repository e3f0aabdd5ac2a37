//! Where each node of a YAML document stands, so that errors found after parsing can
//! still name a line and a column. Also refuses aliases, which no scenario needs and
//! which make YAML "billion laughs" bombs possible.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Node positions by path: `steps.3.mmap.pages` (sequence items by index).
#[derive(Debug, Default)]
pub struct Spans {
    nodes: HashMap<String, Pos>,
}

impl Spans {
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn at(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.nodes.get(p) {
                return *pos;
            }
            match p.rsplit_once('.') {
                Some((parent, _)) => p = parent,
                None => return self.nodes.get("").copied().unwrap_or(Pos { line: 1, col: 1 }),
            }
        }
    }
}

enum Frame {
    Seq { path: String, next: usize },
    Map { path: String, key: Option<String> },
}

struct Receiver {
    spans: Spans,
    stack: Vec<Frame>,
    alias: Option<Pos>,
}

impl Receiver {
    /// The path of the node that starts now, advancing the parent's cursor; `None` when
    /// the node is a mapping key.
    fn child_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = join(path, &next.to_string());
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    *key = Some(scalar.unwrap_or("?").to_string());
                    None
                }
            },
        }
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos { line: mark.line(), col: mark.col() + 1 };
        match ev {
            Event::Alias(_) => {
                self.alias.get_or_insert(pos);
                self.child_path(None);
            }
            Event::Scalar(value, ..) => {
                if let Some(path) = self.child_path(Some(&value)) {
                    self.spans.nodes.insert(path, pos);
                }
            }
            Event::SequenceStart(..) => {
                let path = self.child_path(None).unwrap_or_default();
                self.spans.nodes.insert(path.clone(), pos);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingStart(..) => {
                let path = self.child_path(None).unwrap_or_default();
                self.spans.nodes.insert(path.clone(), pos);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Scan `text`: the node positions, or the position and cause of the first problem.
pub fn scan(text: &str) -> Result<Spans, (Pos, String)> {
    let mut rx = Receiver { spans: Spans::default(), stack: Vec::new(), alias: None };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut rx, false) {
        let m = e.marker();
        return Err((Pos { line: m.line(), col: m.col() + 1 }, e.info().to_string()));
    }
    if let Some(pos) = rx.alias {
        return Err((pos, "YAML aliases are not allowed in scenarios".into()));
    }
    Ok(rx.spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_positions() {
        let text = "name: x\nsteps:\n  - mmap: { name: shm, pages: 4 }\n  - fork:\n      child: c1\n";
        let spans = scan(text).unwrap();
        assert_eq!(spans.at("steps.0.mmap.pages"), Pos { line: 3, col: 31 });
        assert_eq!(spans.at("steps.1.fork.child"), Pos { line: 5, col: 14 });
        assert_eq!(spans.at("steps.1").line, 4);
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(spans.at("steps.1.fork.nothing").line, 5);
    }

    #[test]
    fn refuses_aliases() {
        let bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
        let (pos, msg) = scan(bomb).unwrap_err();
        assert_eq!(pos.line, 2);
        assert!(msg.contains("aliases"));
    }
}
