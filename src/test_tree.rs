//! Tests' writable fixture trees: a copy of a folder under `tests/fixtures` in the temp dir, removed
//! on drop, so a test can rewrite, add or remove files while a reader holds them open.
//!
//! (The fuzz harness is its own crate and cannot reach this `cfg(test)` module: it keeps its own
//! scratch folders.)

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A copy of a fixture folder in the temp dir, removed on drop.
pub struct TempTree(PathBuf);

impl TempTree {
    /// Copies `from` to a fresh folder named after `tag`, the process and a counter.
    pub fn copy_of(from: &Path, tag: &str) -> TempTree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "memsentry-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        copy_dir(from, &dir);
        TempTree(dir)
    }

    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to `rel` under the root, creating its folders.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Copies the folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
