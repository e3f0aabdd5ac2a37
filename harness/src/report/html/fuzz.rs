//! Reads a fuzz campaign's findings directory (`rmapcheck fuzz --out DIR`) for the report.
//!
//! The layout it reads, and nothing more:
//! ```text
//! DIR/summary.txt              optional: the campaign as a whole
//! DIR/<failure>/summary.txt    what failed, on which kernel, after how many steps
//! DIR/<failure>/shrunk.yaml    the shrunk reproducer, a scenario anyone can replay
//! ```
//! A missing directory or file is shown as missing, never an error: the report must
//! still render when a campaign found nothing or did not run.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One failure a campaign kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub summary: Option<String>,
    /// The shrunk reproducer (YAML text).
    pub shrunk: Option<String>,
}

/// One findings directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub dir: PathBuf,
    pub exists: bool,
    pub summary: Option<String>,
    pub findings: Vec<Finding>,
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Read `dir`; an absent directory gives a campaign with `exists: false`.
pub fn load(dir: &Path) -> Result<Campaign> {
    let mut c = Campaign { dir: dir.to_path_buf(), exists: dir.is_dir(), summary: None, findings: Vec::new() };
    if !c.exists {
        return Ok(c);
    }
    c.summary = read_opt(&dir.join("summary.txt"))?;
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading fuzz findings {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        // The campaign's corpus (`corpus/`) and temporary folders are not findings.
        .filter(|p| p.file_name().is_some_and(|n| n != "corpus" && !n.to_string_lossy().starts_with('.')))
        .collect();
    subdirs.sort();
    for sub in subdirs {
        c.findings.push(Finding {
            name: sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            summary: read_opt(&sub.join("summary.txt"))?,
            shrunk: read_opt(&sub.join("shrunk.yaml"))?,
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_findings_and_tolerates_gaps() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("f2-bad-page-map")).unwrap();
        std::fs::create_dir_all(d.path().join("f1-o1")).unwrap();
        std::fs::create_dir_all(d.path().join("corpus")).unwrap();
        std::fs::write(d.path().join("f1-o1/summary.txt"), "O1 on 7.2 after 41 steps\n").unwrap();
        std::fs::write(d.path().join("f1-o1/shrunk.yaml"), "name: f1\nsteps: []\n").unwrap();
        std::fs::write(d.path().join("summary.txt"), "300 runs\n").unwrap();
        let c = load(d.path()).unwrap();
        assert!(c.exists);
        assert_eq!(c.summary.as_deref(), Some("300 runs\n"));
        assert_eq!(c.findings.len(), 2);
        assert_eq!(c.findings[0].name, "f1-o1");
        assert_eq!(c.findings[0].shrunk.as_deref(), Some("name: f1\nsteps: []\n"));
        assert_eq!(c.findings[1].summary, None);
        assert_eq!(c.findings[1].shrunk, None);
        assert!(!load(&d.path().join("absent")).unwrap().exists);
    }
}
