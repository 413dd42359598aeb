//! The server under test (this very binary, `serve` or `serve --floor`, as a child process)
//! and the temporary folder of its database.

use super::*;

pub(super) fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))
}

/// `cmdb-lite serve` as a child process, killed on drop.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) _stdout: BufReader<ChildStdout>,
    pub(super) addr: String,
}

impl Server {
    /// Starts `serve` on `db` (with `seed`), or `serve --floor` if `floor`.
    pub(super) fn start(
        db: &Path,
        seed: Option<&Path>,
        o: &Options,
        floor: bool,
    ) -> Result<Server, String> {
        let mut cmd = Command::new(exe()?);
        cmd.arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--threads", &o.threads.to_string()])
            .args(["--cache-mib", &o.cache_mib.to_string()])
            // No access log on the terminal the figures are printed on.
            .arg("--quiet");
        if let Some(seed) = seed {
            cmd.arg("--seed").arg(seed);
        }
        if floor {
            cmd.arg("--floor");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        // The first line names the address; a server that fails exits without it.
        let read = stdout.read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("cmdb-lite listening on http://")
            .map(str::to_string);
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Server {
                child,
                _stdout: stdout,
                addr,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the server did not start: {line:?}"))
            }
        }
    }

    pub(super) fn vm_hwm_kib(&self) -> Option<u64> {
        vm_hwm_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's peak resident set (`VmHWM` of /proc/PID/status), in KiB; `None` off Linux.
pub(super) fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
