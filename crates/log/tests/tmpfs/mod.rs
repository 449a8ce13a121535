//! A small tmpfs mounted for one test, to fill a disk on purpose. Shared with
//! `crates/runtime/tests/disk_full.rs` (through `#[path]`), so that both crates' disk-full
//! tests skip and fail alike.
//!
//! Mounting needs root (or CAP_SYS_ADMIN). Where it is not possible the test is skipped with
//! the reason printed, except under `CI=true`: CI runs as root, and a disk-full test that
//! silently skips there would prove nothing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted (and its mount point removed) when dropped, also when the test
/// panics.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes at a fresh directory named after `name`. `None` (after
    /// printing why) where mounting is not possible; panics instead when `CI=true`.
    pub fn mount(name: &str, bytes: u64) -> Option<Tmpfs> {
        let path = std::env::temp_dir().join(format!("millstream-tmpfs-{name}-{}", std::process::id()));
        let _ = Command::new("umount").arg(&path).output();
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create mount point");
        let result = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output();
        let failure = match result {
            Ok(out) if out.status.success() => return Some(Tmpfs { path }),
            Ok(out) => format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let _ = std::fs::remove_dir(&path);
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but the disk-full test cannot mount a tmpfs ({failure}); CI must run it as root");
        }
        eprintln!("SKIPPED: this disk-full test needs to mount a tmpfs (run as root): {failure}");
        None
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the size (space "returns" when it grows).
    pub fn resize(&self, bytes: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.path)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).output().is_ok_and(|o| o.status.success());
        if !unmounted {
            // Busy (a file still open somewhere): detach it now, it goes when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
