//! The guest's block filesystem: an ext4 image made on the host with mkfs.ext4
//! (e2fsprogs), shipped in the initramfs in a sparse form, and written by the agent into
//! a second zram device (zram1; zram0 is its swap) that it mounts at /mnt/ext4.
//!
//! Why zram and not virtio-blk: guests are restored from saved VM states (`vm::vmstate`),
//! and a zram disk lives in guest RAM, so the filesystem is saved and restored with the
//! guest; a virtio-blk disk (or an overlay on it) would keep whatever a later run wrote.
//! Why made on the host: the guest has no mkfs, and one image made once is the same in
//! every guest; the agent only copies its blocks.
//!
//! The sparse form (read by guest/agent/blockfs.c): the magic [`MAGIC`], the image's
//! size as a little-endian u64, then records of (offset u64, length u64, bytes) for each
//! run of blocks that are not all zero. A fresh zram device reads zeros, so the rest
//! needs no write, and the initramfs carries some hundred KiB instead of the whole disk.

use crate::cache;
use crate::exec::{self, Cmd};
use anyhow::{ensure, Context, Result};
use std::fs;
use std::io::{BufReader, Read};
use std::path::PathBuf;

/// The name the agent looks for in the initramfs's root.
pub const IMAGE_NAME: &str = "ext4.img";
/// The sparse form's first bytes.
pub const MAGIC: &[u8; 8] = b"rmcext4\0";
/// ext4's block size, and the unit the sparse form is cut in.
const BLOCK: usize = 4096;
/// The largest page size a default kernel has (the 16k kernels).
const MAX_PAGE_SIZE: u64 = 16 << 10;
/// The filesystem's size: the largest map a scenario may make (`MAX_MAP_PAGES` pages of
/// the largest page size, 1 GiB; its PMD is 32 MiB) fits whole. That is twice the guest's
/// 512 MiB of RAM, so memory runs out before the disk does. A zram disk costs RAM only
/// for what is written, and ext4 writes little besides the pages a workload dirties,
/// which hold one repeated byte (and a page index) and compress to almost nothing.
pub const FS_BYTES: u64 = crate::ops::MAX_MAP_PAGES * MAX_PAGE_SIZE;

/// mkfs.ext4 options. No metadata_csum and no orphan_file: fewer features for the
/// oldest kernel (6.1) to know. Lazy inode table and journal init keep the image sparse.
const MKFS_OPTS: &[&str] = &[
    "-q",
    "-F",
    "-b",
    "4096",
    "-O",
    "^metadata_csum,^metadata_csum_seed,^orphan_file",
    "-E",
    "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
    "-J",
    "size=4",
    "-L",
    "rmapcheck",
    "-U",
    "clear",
];

/// The sparse ext4 image for the initramfs, made once and cached by its parameters.
pub fn image() -> Result<PathBuf> {
    exec::require("mkfs.ext4", "run scripts/setup (it installs e2fsprogs)")?;
    let key = cache::Key::new().part("bytes", FS_BYTES.to_le_bytes()).part("mkfs", MKFS_OPTS.join(" "));
    let dir = cache::subdir("blockfs")?.join(key.short());
    let dir = cache::ensure_dir(&dir, |tmp| {
        let raw = tmp.join("raw.img");
        fs::File::create(&raw)?.set_len(FS_BYTES)?;
        // A fixed time makes the image the same on every host.
        Cmd::new("mkfs.ext4").args(MKFS_OPTS).arg(&raw).env("E2FSPROGS_FAKE_TIME", "1").run("making the ext4 image")?;
        let file = fs::File::open(&raw)?;
        let sparse = sparse_form(BufReader::new(file), FS_BYTES)?;
        fs::remove_file(&raw)?;
        fs::write(tmp.join(IMAGE_NAME), sparse)?;
        Ok(())
    })?;
    Ok(dir.join(IMAGE_NAME))
}

/// `image` (`size` bytes) in the sparse form: only its runs of blocks that are not all
/// zero. It reads block by block: the raw image is as big as the disk.
fn sparse_form(mut image: impl Read, size: u64) -> Result<Vec<u8>> {
    ensure!(size.is_multiple_of(BLOCK as u64), "image size {size} is not a multiple of {BLOCK}");
    let mut out = MAGIC.to_vec();
    out.extend(size.to_le_bytes());
    let mut block = vec![0u8; BLOCK];
    // Where the run being written began, and where its length goes.
    let mut run: Option<(u64, usize)> = None;
    for b in 0..size / BLOCK as u64 {
        image.read_exact(&mut block).context("reading the image")?;
        let at = b * BLOCK as u64;
        match (block.iter().all(|&x| x == 0), run) {
            (true, Some((from, len_at))) => {
                out[len_at..len_at + 8].copy_from_slice(&(at - from).to_le_bytes());
                run = None;
            }
            (true, None) => {}
            (false, Some(_)) => out.extend(&block),
            (false, None) => {
                out.extend(at.to_le_bytes());
                run = Some((at, out.len()));
                out.extend(0u64.to_le_bytes());
                out.extend(&block);
            }
        }
    }
    if let Some((from, len_at)) = run {
        out[len_at..len_at + 8].copy_from_slice(&(size - from).to_le_bytes());
    }
    Ok(out)
}

/// The image a sparse form describes (tests; the agent does this in C).
#[cfg(test)]
fn expand(sparse: &[u8]) -> Result<Vec<u8>> {
    let word = |at: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(sparse.get(at..at + 8).context("sparse form cut short")?.try_into()?))
    };
    ensure!(sparse.starts_with(MAGIC), "no magic");
    let mut image = vec![0u8; usize::try_from(word(8)?)?];
    let mut at = 16;
    while at < sparse.len() {
        let (off, len) = (usize::try_from(word(at)?)?, usize::try_from(word(at + 8)?)?);
        at += 16;
        image[off..off + len].copy_from_slice(sparse.get(at..at + len).context("record cut short")?);
        at += len;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_form_keeps_every_nonzero_block_and_only_those() {
        let mut image = vec![0u8; 8 * BLOCK];
        image[BLOCK + 5] = 1; // block 1
        image[2 * BLOCK] = 2; // block 2: one run with block 1
        image[7 * BLOCK + BLOCK - 1] = 3; // the last block
        let sparse = sparse_form(&image[..], image.len() as u64).unwrap();
        assert_eq!(expand(&sparse).unwrap(), image);
        // Header, two records, three blocks of data.
        assert_eq!(sparse.len(), 16 + 2 * 16 + 3 * BLOCK);
        assert!(sparse_form(&image[..BLOCK + 1], BLOCK as u64 + 1).is_err());
    }

    #[test]
    fn the_filesystem_holds_the_largest_map_on_a_16k_kernel() {
        assert_eq!(FS_BYTES, 1 << 30);
    }
}
