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

    /// Runs `load` and notes the server's CPU time over it (`Measured::cpu_ticks`).
    pub(super) fn cpu_of(
        &self,
        load: impl FnOnce() -> Result<Measured, String>,
    ) -> Result<Measured, String> {
        let pid = self.child.id();
        let before = (cpu_ticks(pid, None), cpu_ticks(pid, Some("writer")));
        let mut m = load()?;
        let after = (cpu_ticks(pid, None), cpu_ticks(pid, Some("writer")));
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        m.cpu_ticks = delta(before.0, after.0);
        m.writer_ticks = delta(before.1, after.1);
        Ok(m)
    }
}

/// The user + system CPU time of process `pid` (all its threads, exited ones included), or of
/// its thread named `thread`, in clock ticks (100 a second on Linux); `None` off Linux.
fn cpu_ticks(pid: u32, thread: Option<&str>) -> Option<u64> {
    let stat = match thread {
        None => std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
        Some(name) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .and_then(|t| std::fs::read_to_string(t.path().join("stat")).ok())?,
    };
    // After the command name's closing parenthesis: state, then utime and stime are the 12th
    // and 13th fields.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
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
