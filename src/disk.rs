//! The free space of a file system (`statvfs`), for the store's migration, which refuses to
//! start on a disk without room for it; and growing a file onto blocks that are really there
//! (`fallocate`), for the store's file backend (`store::room`). Two libc calls through
//! `extern "C"`.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_ulong};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// glibc's and musl's `struct statvfs` on 64-bit Linux: eleven 64-bit fields, then spare ints;
/// padded beyond its size, and only the first fields are read.
#[repr(C)]
#[derive(Default)]
struct StatVfs {
    f_bsize: c_ulong,
    f_frsize: c_ulong,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_favail: u64,
    f_fsid: c_ulong,
    f_flag: c_ulong,
    f_namemax: c_ulong,
    spare: [u64; 8],
}

unsafe extern "C" {
    fn statvfs(path: *const c_char, buf: *mut StatVfs) -> c_int;
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
unsafe extern "C" {
    fn fallocate(fd: c_int, mode: c_int, offset: i64, len: i64) -> c_int;
}

/// `EOPNOTSUPP` on Linux: the file system does not allocate ahead.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
const EOPNOTSUPP: i32 = 95;

/// Grows `file` from `from` to `to` bytes with the new bytes' blocks allocated, so that writing
/// them later cannot fail for want of room. A refusal (`ENOSPC`, or `EFBIG` past the process's
/// `RLIMIT_FSIZE`) leaves the file `from` bytes long. Where the file system cannot allocate
/// ahead, the file is only extended (as `set_len` does).
pub fn grow(file: &std::fs::File, from: u64, to: u64) -> std::io::Result<()> {
    debug_assert!(to > from, "a growth");
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
            return Err(std::io::Error::from_raw_os_error(27)); // EFBIG
        };
        loop {
            // SAFETY: `file` owns the descriptor for the whole call; fallocate reads only its
            // integer arguments and touches no memory of this process.
            let rc = unsafe { fallocate(file.as_raw_fd(), 0, offset, len) };
            if rc == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(4) => continue, // EINTR
                Some(EOPNOTSUPP) => break,
                _ => {
                    // A refusal part way may have extended the file: back to where it was.
                    file.set_len(from)?;
                    return Err(e);
                }
            }
        }
    }
    file.set_len(to)
}

/// Bytes an unprivileged process can still write on the file system holding `path`; `None` if
/// that cannot be told (then nothing is refused for want of room).
pub fn free_bytes(path: &Path) -> Option<u64> {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        return None;
    }
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = StatVfs::default();
    // SAFETY: `c` is a NUL-terminated path that outlives the call, and `buf` is a writable
    // struct at least as large as the C `struct statvfs` the call fills.
    let rc = unsafe { statvfs(c.as_ptr(), &mut buf) };
    (rc == 0).then(|| buf.f_bavail.saturating_mul(buf.f_frsize))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_growth_is_all_or_nothing() {
        let dir = crate::tempdir::TempDir::new("disk-grow").unwrap();
        let f = std::fs::File::create(dir.join("f")).unwrap();
        super::grow(&f, 0, 1 << 20).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 1 << 20);
        // Past what a file may hold: refused, and the length is unchanged.
        assert!(super::grow(&f, 1 << 20, i64::MAX as u64).is_err());
        assert_eq!(f.metadata().unwrap().len(), 1 << 20);
    }

    #[test]
    fn the_current_directory_has_some_room() {
        if let Some(free) = super::free_bytes(std::path::Path::new(".")) {
            assert!(free > 0);
        }
    }
}
