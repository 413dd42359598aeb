//! The free space of a file system (`statvfs`), for the store's migration, which refuses to
//! start on a disk without room for it. One libc call through `extern "C"`.

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
    fn the_current_directory_has_some_room() {
        if let Some(free) = super::free_bytes(std::path::Path::new(".")) {
            assert!(free > 0);
        }
    }
}
