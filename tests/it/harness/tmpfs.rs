//! A small tmpfs mounted for one test: a disk that fills up on demand.
//!
//! Mounting needs root (CI runs as root). Where it is not permitted the
//! test is skipped with one loud line, except when `CI` is set: then it
//! fails, so the gate never passes without the disk-full cases.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs on `dir`, unmounted when dropped (lazily: a daemon killed by
/// the same test may not have let go of its files yet).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (as `mount -o size=` takes it, e.g. `512k`)
    /// on `dir`, creating it; `None` (after saying so) when not permitted.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
                assert!(!ci, "CI is set but a tmpfs cannot be mounted: {why}");
                eprintln!("SKIPPED: mounting a tmpfs is not permitted here ({why}); run as root");
                None
            }
        }
    }

    /// Fill the disk to the last byte: a file of whole blocks, then single
    /// bytes until nothing more fits. Returns the filler to delete later.
    pub fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(b"x").is_ok() {}
        filler
    }

    /// Fill the disk until about `free` bytes are left (to the block; less
    /// when something else writes meanwhile). Returns the filler to delete
    /// later.
    pub fn fill_leaving(&self, free: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let fill = self.free().saturating_sub(free);
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 1 << 16];
        let mut done = 0u64;
        while done < fill {
            let n = (fill - done).min(block.len() as u64) as usize;
            if f.write_all(&block[..n]).is_err() {
                break;
            }
            done += n as u64;
        }
        filler
    }

    /// Bytes still free on the disk.
    pub fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.dir).unwrap();
        st.f_bavail * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
