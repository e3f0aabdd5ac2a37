//! The on-disk cache: where fetched packages, extracted kernels, built modules and
//! initramfs images live, and the locking that lets several rmapcheck processes share it.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Name of the marker written last into a finished cache directory.
const COMPLETE: &str = ".complete";

/// The cache root: `$RMAPCHECK_CACHE`, else the user's cache dir.
pub fn root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RMAPCHECK_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let base = dirs::cache_dir().context("no user cache directory; set RMAPCHECK_CACHE")?;
    Ok(base.join("rmapcheck"))
}

/// A subdirectory of the cache root, created on demand.
pub fn subdir(name: &str) -> Result<PathBuf> {
    let dir = root()?.join(name);
    fs::create_dir_all(&dir).with_context(|| format!("creating cache dir {}", dir.display()))?;
    Ok(dir)
}

/// Holds an exclusive lock on a file beside a cache entry until dropped.
pub struct EntryLock {
    _file: File,
}

/// Take the exclusive lock that guards `entry` (blocks while another process holds it).
pub fn lock(entry: &Path) -> Result<EntryLock> {
    let (file, path) = lock_file(entry)?;
    file.lock().with_context(|| format!("locking {}", path.display()))?;
    Ok(EntryLock { _file: file })
}

/// The lock that guards `entry` if no other process holds it, else `None`.
pub fn try_lock(entry: &Path) -> Result<Option<EntryLock>> {
    let (file, path) = lock_file(entry)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(EntryLock { _file: file })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

fn lock_file(entry: &Path) -> Result<(File, PathBuf)> {
    // Append rather than replace an extension: keys like `6.12-<hash>` contain dots.
    let mut name = entry.file_name().context("cache entry has no name")?.to_os_string();
    name.push(".lock");
    let path = entry.with_file_name(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = File::create(&path).with_context(|| format!("creating lock {}", path.display()))?;
    Ok((file, path))
}

/// Whether `dir` is a finished cache entry.
pub fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE).exists()
}

/// Make the cache directory `dir` with `fill`, unless a finished one is there already.
///
/// `fill` writes into a fresh temporary sibling, which is renamed into place only after
/// it succeeded, so an interrupted fill never looks finished and is redone next time.
pub fn ensure_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    if is_complete(dir) {
        return Ok(dir.to_path_buf());
    }
    let _guard = lock(dir)?;
    if is_complete(dir) {
        return Ok(dir.to_path_buf());
    }
    let parent = dir.parent().context("cache entry has no parent")?;
    fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary dir in {}", parent.display()))?;
    fill(tmp.path())?;
    File::create(tmp.path().join(COMPLETE))?;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    let tmp = tmp.keep();
    fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Write `bytes` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().context("path has no parent")?;
    fs::create_dir_all(parent)?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    // tempfile creates 0600; results and reports are for everyone to read.
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A content key: hex sha256 over a list of labelled parts.
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add one labelled part; labels keep `("ab","c")` apart from `("a","bc")`.
    pub fn part(mut self, label: &str, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.0.update(label.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }
    /// Add every regular file below `dir` (sorted, by relative path and contents).
    pub fn tree(mut self, dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();
        for rel in files {
            let bytes = fs::read(dir.join(&rel))?;
            self = self.part(&rel, bytes);
        }
        Ok(self)
    }
    /// The first 16 hex digits, enough to name a cache entry.
    pub fn short(self) -> String {
        hex::encode(self.0.finalize())[..16].to_string()
    }
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(base, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(base)?.to_string_lossy().into_owned();
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_separates_parts() {
        let a = Key::new().part("x", "ab").part("y", "c").short();
        let b = Key::new().part("x", "a").part("y", "bc").short();
        assert_ne!(a, b);
    }

    #[test]
    fn ensure_dir_redoes_an_unfinished_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("half"), "x").unwrap();
        ensure_dir(&dir, |d| Ok(fs::write(d.join("full"), "y")?)).unwrap();
        assert!(dir.join("full").exists());
        assert!(!dir.join("half").exists());
        // A finished entry is not filled again.
        ensure_dir(&dir, |_| anyhow::bail!("must not run")).unwrap();
    }

    #[test]
    fn entries_with_dots_get_their_own_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let _a = lock(&tmp.path().join("6.12-aaaa")).unwrap();
        let _b = lock(&tmp.path().join("6.1-bbbb")).unwrap();
        assert!(tmp.path().join("6.12-aaaa.lock").exists() && tmp.path().join("6.1-bbbb.lock").exists());
    }

    #[test]
    fn try_lock_says_when_another_holder_has_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let entry = tmp.path().join("tree");
        let held = lock(&entry).unwrap();
        assert!(try_lock(&entry).unwrap().is_none(), "held by another file handle");
        drop(held);
        assert!(try_lock(&entry).unwrap().is_some());
    }

    #[test]
    fn concurrent_fills_of_one_entry_run_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        let fills = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    ensure_dir(&dir, |d| {
                        fills.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok(fs::write(d.join("data"), "x")?)
                    })
                    .unwrap();
                });
            }
        });
        assert_eq!(fills.load(Ordering::SeqCst), 1);
        assert_eq!(fs::read_to_string(dir.join("data")).unwrap(), "x");
    }

    #[test]
    fn a_failed_fill_leaves_nothing_that_looks_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        assert!(ensure_dir(&dir, |d| {
            fs::write(d.join("part"), "x")?;
            anyhow::bail!("interrupted")
        })
        .is_err());
        assert!(!is_complete(&dir));
        ensure_dir(&dir, |d| Ok(fs::write(d.join("full"), "y")?)).unwrap();
        assert!(dir.join("full").exists() && !dir.join("part").exists());
    }
}
