//! A small filesystem that can be filled to the last byte, for the "disk full" cases of the
//! fault matrix: a tmpfs of a few MiB mounted in a temporary directory (root only — as CI
//! runs; elsewhere the tests that need it say so and skip), and a filler file written until
//! the kernel answers ENOSPC.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct SmallDisk {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl SmallDisk {
    /// A tmpfs of `mib` MiB, or `None` (with the reason printed) where mounting is not allowed.
    pub fn mount(mib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let root = dir.path().join("disk");
        std::fs::create_dir(&root).ok()?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&root)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(SmallDisk { _dir: dir, root }),
            Ok(output) => {
                eprintln!(
                    "skipped: cannot mount a small tmpfs to fill (needs root): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(error) => {
                eprintln!("skipped: cannot run mount: {error}");
                None
            }
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn filler(&self) -> PathBuf {
        self.root.join("filler")
    }

    /// Takes every free byte; returns how many were taken.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::File::create(self.filler()).expect("create the filler");
        let block = vec![0xA5_u8; 4096];
        let mut taken = 0;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(written) => taken += written as u64,
                Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        // Single bytes too: the last partial block.
        while let Ok(1) = file.write(&block[..1]) {
            taken += 1;
        }
        taken
    }

    /// Gives the space back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there (a killed daemon's SQLite) cannot block it.
        let _ = Command::new("umount").arg("-l").arg(&self.root).output();
    }
}
