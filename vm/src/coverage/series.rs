//! A campaign's coverage over time: `coverage.jsonl` in its `--out` folder
//! (`coverage-shard<I>of<N>.jsonl` for a shard). One JSON object a line: a header when
//! a campaign starts (or resumes), then a point whenever the corpus's coverage grew,
//! with the PCs that were new, and one at the end. The report maps the new PCs to
//! lines, so the file needs no vmlinux to be written.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub kernel: String,
    pub release: String,
    pub seed: u64,
    /// `I/N`.
    pub shard: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Runs finished since the campaign started.
    pub runs: u64,
    pub secs: f64,
    /// PCs in the union after this point.
    pub pcs: u64,
    /// Corpus entries after this point.
    pub corpus: u64,
    /// The PCs this point added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Record {
    Header(Header),
    Point(Point),
}

/// The file name a campaign writes its series to.
pub fn file_name(shard: (u64, u64)) -> String {
    match shard {
        (_, 1) => "coverage.jsonl".to_string(),
        (i, n) => format!("coverage-shard{i}of{n}.jsonl"),
    }
}

/// Appends to a series file; a campaign that resumes continues the same file.
pub struct Writer {
    file: std::fs::File,
    /// Runs and seconds of the segments before this one, so points keep rising.
    offset: (u64, f64),
}

impl Writer {
    pub fn open(path: &Path, header: &Header) -> Result<Writer> {
        let offset = match read(path) {
            Ok(s) => s.points.last().map(|p| (p.runs, p.secs)).unwrap_or_default(),
            Err(_) => (0, 0.0),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut w = Writer { file, offset };
        w.line(&Record::Header(header.clone()))?;
        Ok(w)
    }

    fn line(&mut self, r: &Record) -> Result<()> {
        let mut text = serde_json::to_string(r)?;
        text.push('\n');
        self.file.write_all(text.as_bytes()).context("writing the coverage series")
    }

    /// One point; `runs` and `secs` count from this campaign's start.
    pub fn point(&mut self, mut p: Point) -> Result<()> {
        p.runs += self.offset.0;
        p.secs += self.offset.1;
        self.line(&Record::Point(p))
    }
}

/// A series read back: its points with resumed segments laid end to end.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub path: PathBuf,
    pub kernel: Option<String>,
    pub release: Option<String>,
    pub points: Vec<Point>,
}

pub fn read(path: &Path) -> Result<Series> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Series> {
    let mut s = Series { path: path.to_path_buf(), kernel: None, release: None, points: Vec::new() };
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: Record =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not a record", path.display(), n + 1))?;
        match r {
            Record::Header(h) => {
                s.kernel.get_or_insert(h.kernel);
                s.release.get_or_insert(h.release);
            }
            Record::Point(p) => s.points.push(p),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_series_keeps_rising() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name((0, 1)));
        let h = Header { kernel: "6.12-debug".into(), release: "6.12.9".into(), seed: 1, shard: "0/1".into() };
        let mut w = Writer::open(&path, &h).unwrap();
        w.point(Point { runs: 1, secs: 0.5, pcs: 3, corpus: 1, new: vec![1, 2, 3] }).unwrap();
        w.point(Point { runs: 10, secs: 4.0, pcs: 3, corpus: 1, new: vec![] }).unwrap();
        drop(w);
        let mut w = Writer::open(&path, &h).unwrap();
        w.point(Point { runs: 2, secs: 1.0, pcs: 4, corpus: 2, new: vec![7] }).unwrap();
        drop(w);
        let s = read(&path).unwrap();
        assert_eq!(s.kernel.as_deref(), Some("6.12-debug"));
        let at: Vec<(u64, f64)> = s.points.iter().map(|p| (p.runs, p.secs)).collect();
        assert_eq!(at, [(1, 0.5), (10, 4.0), (12, 5.0)]);
        assert_eq!(file_name((2, 4)), "coverage-shard2of4.jsonl");
        assert!(parse(Path::new("x"), "{\"what\":1}\n").is_err());
    }
}
