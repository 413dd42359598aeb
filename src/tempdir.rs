//! A temporary folder removed on drop: the benchmark's databases and the integration tests'.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A folder `cmdb-lite-<tag>-<pid>-<n>` (n counts within the process), created empty and
/// removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Under the system's temporary folder.
    pub fn new(tag: &str) -> Result<TempDir, String> {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// Under `base`.
    pub fn new_in(base: &Path, tag: &str) -> Result<TempDir, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = base.join(format!(
            "cmdb-lite-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_is_new_and_gone_on_drop() {
        let a = TempDir::new("unit").unwrap();
        let b = TempDir::new("unit").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.join("f"), b"x").unwrap();
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists());
        assert!(b.path().is_dir());
    }
}
