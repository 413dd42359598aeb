//! The store file's backend: redb's own file backend, except that the file grows only onto
//! room that is really there, and a growth the disk (or `RLIMIT_FSIZE`) refuses is not an
//! error redb sees.
//!
//! Why: redb latches its file on any I/O error (every later read and write answers
//! `PreviousIo` until the database is closed and opened again, which repairs the whole file:
//! half a minute on a 200,000-process store, with every read waiting). A full disk shows up as
//! a failing growth: redb grows the file when a write transaction needs pages it does not
//! have. So a growth is done here with its blocks allocated (`disk::grow`); when that is
//! refused, the file keeps its length, the transaction is told the growth happened and goes on
//! in memory (its new pages stay in redb's write buffer; reading where nothing was written reads
//! zeros), and [`Room::short`] says so. The store checks it before every commit and aborts
//! instead (`Store::write`), and redb's abort takes the growth back; the file is never latched,
//! and reads never stop. While a growth is refused nothing is written to the file at all: a
//! commit that grew after the store's check would otherwise write a header naming a layout
//! longer than the file, which no open accepts; refused, it fails before anything is written.
//!
//! What this cannot catch falls back on the reopen (`Store::reopen`): a growth refused while
//! redb commits, a transaction whose new pages overflow redb's write buffer while the file
//! cannot grow (redb must write some out, which is refused), and a write that fails inside the
//! file (a copy-on-write file system out of room).

use crate::disk;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::fs::File;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What the store reads of its file's room: shared by the backend and the store.
#[derive(Debug, Default)]
pub(crate) struct Room {
    lens: Mutex<Lens>,
    /// The file's real length and the length redb was told (copies of `lens`, for reads and
    /// writes that take no lock).
    real: AtomicU64,
    told: AtomicU64,
    /// Growths refused since the file was opened.
    refusals: AtomicU64,
    /// Why the last one was refused, for the store's log.
    why: Mutex<String>,
}

#[derive(Debug, Default)]
struct Lens {
    /// The length redb was told.
    told: u64,
    /// The file's length.
    real: u64,
}

impl Room {
    /// Whether the open transaction grew the file beyond its real length: it must not commit.
    pub fn short(&self) -> bool {
        let lens = self.lens.lock().unwrap_or_else(PoisonError::into_inner);
        lens.told > lens.real
    }

    /// Growths refused since the file was opened.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Acquire)
    }

    /// What the last refused growth was, and why it was refused.
    pub fn why(&self) -> String {
        self.why
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The backend: redb's [`FileBackend`] for reads, writes, syncs and locks, this file's own
/// handle (the same open file) for its length.
#[derive(Debug)]
pub(super) struct RoomBackend {
    inner: FileBackend,
    file: File,
    room: Arc<Room>,
}

impl RoomBackend {
    /// The backend of `file`, opened for reading and writing, and the room it reports to.
    pub fn new(file: File) -> std::io::Result<(RoomBackend, Arc<Room>)> {
        let real = file.metadata()?.len();
        let room = Arc::new(Room {
            lens: Mutex::new(Lens { told: real, real }),
            real: AtomicU64::new(real),
            told: AtomicU64::new(real),
            ..Room::default()
        });
        let inner = FileBackend::new(file.try_clone()?).map_err(std::io::Error::other)?;
        let backend = RoomBackend {
            inner,
            file,
            room: Arc::clone(&room),
        };
        Ok((backend, room))
    }
}

fn beyond(at: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        format!("the store file has no room at byte {at}"),
    )
}

impl StorageBackend for RoomBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self
            .room
            .lens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .told)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let end = offset.saturating_add(out.len() as u64);
        let real = self.room.real.load(Ordering::Acquire);
        if end <= real || end > self.len()? {
            return self.inner.read(offset, out);
        }
        // Within a growth that did not happen: nothing was written there.
        let held = usize::try_from(real.saturating_sub(offset)).unwrap_or(usize::MAX);
        let held = held.min(out.len());
        if held > 0 {
            self.inner.read(offset, &mut out[..held])?;
        }
        out[held..].fill(0);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut lens = self
            .room
            .lens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if len <= lens.real {
            self.file.set_len(len)?;
            lens.real = len;
        } else {
            match disk::grow(&self.file, lens.real, len) {
                Ok(()) => lens.real = len,
                Err(e) => {
                    *self.room.why.lock().unwrap_or_else(PoisonError::into_inner) =
                        format!("from {} to {len} bytes: {e}", lens.real);
                    self.room.refusals.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        lens.told = len;
        self.room.real.store(lens.real, Ordering::Release);
        self.room.told.store(lens.told, Ordering::Release);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let end = offset.saturating_add(data.len() as u64);
        let real = self.room.real.load(Ordering::Acquire);
        // While a growth is refused nothing is written, inside the file either: a header
        // written now could name a layout longer than the file (a commit that grew while it
        // ran), which no open would then accept. Early write-outs during a transaction are
        // best effort in redb (refused, the page stays buffered); a commit's fail before
        // anything reaches the file.
        if end > real || self.room.told.load(Ordering::Acquire) > real {
            return Err(beyond(end));
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_growth_is_told_not_made_and_taken_back_by_a_shrink() {
        let dir = crate::tempdir::TempDir::new("room").unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("f"))
            .unwrap();
        let (b, room) = RoomBackend::new(f).unwrap();
        b.set_len(8192).unwrap();
        b.write(0, &[7u8; 8192]).unwrap();
        assert!(!room.short());
        // Past what a file may hold: told, not made.
        let huge = i64::MAX as u64 - 4096;
        b.set_len(huge).unwrap();
        assert!(room.short());
        assert_eq!(room.refusals(), 1);
        assert!(room.why().starts_with("from 8192 to "), "{}", room.why());
        assert_eq!(b.len().unwrap(), huge);
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().len(), 8192);
        // Writing there is refused, and inside the file too; reading there reads zeros, and
        // the real part as it is.
        assert!(b.write(8192, &[1u8; 4096]).is_err());
        assert!(b.write(0, &[1u8; 4096]).is_err());
        let mut out = [9u8; 8192];
        b.read(4096, &mut out).unwrap();
        assert_eq!(&out[..4096], &[7u8; 4096][..]);
        assert_eq!(&out[4096..], &[0u8; 4096][..]);
        // redb's abort shrinks the file back to where it was.
        b.set_len(8192).unwrap();
        assert!(!room.short());
        b.write(0, &[1u8; 4096]).unwrap();
        b.set_len(16384).unwrap();
        assert!(!room.short());
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().len(), 16384);
    }
}
