//! The guest's initramfs: a gzip newc cpio with the agent as /init, rmapcheck.ko, any
//! kernel modules the agent needs first, and the block filesystem's image. Built per kernel, cached by content.

use crate::cache;
use crate::image::blockfs;
use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// What goes into an initramfs.
pub struct Contents<'a> {
    pub agent: &'a Path,
    pub module: &'a Path,
    /// Kernel modules to load before rmapcheck.ko, in order.
    pub preload: &'a [PathBuf],
    /// Programs the agent may `exec`, as (name in /, path on the host).
    pub programs: &'a [(String, PathBuf)],
    /// The block filesystem's image in its sparse form (image::blockfs), as /ext4.img.
    pub blockfs: &'a Path,
}

/// Build (or reuse) the initramfs for `contents` and return its path.
pub fn build(contents: &Contents) -> Result<PathBuf> {
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    files.push(("init".into(), read(contents.agent)?, 0o755));
    let mut load = String::new();
    for path in contents.preload {
        let name = path.file_name().context("module path has no name")?.to_string_lossy();
        files.push((format!("modules/{name}"), read(path)?, 0o644));
        load.push_str(&format!("/modules/{name}\n"));
    }
    files.push(("modules/rmapcheck.ko".into(), read(contents.module)?, 0o644));
    load.push_str("/modules/rmapcheck.ko\n");
    files.push(("modules.load".into(), load.into_bytes(), 0o644));
    files.push((blockfs::IMAGE_NAME.into(), read(contents.blockfs)?, 0o644));
    for (name, path) in contents.programs {
        files.push((name.clone(), read(path)?, 0o755));
    }

    let mut key = cache::Key::new();
    for (name, bytes, mode) in &files {
        key = key.part(name, bytes).part("mode", mode.to_le_bytes());
    }
    let path = cache::subdir("initramfs")?.join(format!("{}.cpio.gz", key.short()));
    if path.exists() {
        return Ok(path);
    }
    let archive = write_cpio(&files)?;
    cache::write_atomic(&path, &archive)?;
    Ok(path)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A gzip newc archive with the directories the agent mounts on and a /dev/console, so
/// the kernel has a console for /init before devtmpfs is mounted.
fn write_cpio(files: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut ino = 1;
    let mut next = || {
        ino += 1;
        ino
    };
    for dir in ["dev", "proc", "sys", "tmp", "modules"] {
        let w = cpio::newc::Builder::new(dir).ino(next()).mode(S_IFDIR | 0o755).nlink(2).write(&mut gz, 0);
        w.finish()?;
    }
    let w = cpio::newc::Builder::new("dev/console")
        .ino(next())
        .mode(S_IFCHR | 0o600)
        .nlink(1)
        .rdev_major(5)
        .rdev_minor(1)
        .write(&mut gz, 0);
    w.finish()?;
    for (name, bytes, mode) in files {
        let mut w = cpio::newc::Builder::new(name)
            .ino(next())
            .mode(S_IFREG | mode)
            .nlink(1)
            .write(&mut gz, u32::try_from(bytes.len()).context("file too large for cpio")?);
        w.write_all(bytes)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut gz)?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_lists_init_console_and_modules() {
        let files = vec![("init".to_string(), b"ELF".to_vec(), 0o755)];
        let gz = write_cpio(&files).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        let mut names = Vec::new();
        let mut rest = &raw[..];
        loop {
            let reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            names.push((reader.entry().name().to_string(), reader.entry().mode()));
            rest = reader.finish().unwrap();
        }
        assert!(names.contains(&("init".to_string(), S_IFREG | 0o755)));
        assert!(names.contains(&("dev/console".to_string(), S_IFCHR | 0o600)));
    }
}
