use std::io::Read;
use std::io::Result as IoResult;
use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, the remaining bytes will be read and
/// thrown away.
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    last_read_signal: Sender<IoResult<()>>,
    // cmdb-lite patch: the connection, for the bounded drain on drop (see `DRAIN_MAX_BYTES`).
    control: Option<std::sync::Arc<dyn DrainControl>>,
}

/// cmdb-lite patch: what the drain of an unread body needs from its connection.
pub trait DrainControl: Send + Sync {
    /// The connection closes after this request: nothing to drain.
    fn closing(&self) -> bool;
    /// Sets the socket's read timeout, returning the previous one.
    fn read_timeout(&self, t: Option<std::time::Duration>) -> Option<std::time::Duration>;
    /// Gives up: closes the connection, whose next request cannot be found.
    fn abandon(&self);
}

/// cmdb-lite patch: the most a drop drains of an unread body, and for how long (Go's net/http
/// reads up to 256 KiB of a body its handler left, then closes the connection). Beyond either,
/// `abandon` is called (it closes the connection, since the next request cannot be found).
pub const DRAIN_MAX_BYTES: usize = 256 * 1024;
pub const DRAIN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(2);

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize) -> (EqualReader<R>, Receiver<IoResult<()>>) {
        let (tx, rx) = channel();

        let r = EqualReader {
            reader,
            size,
            last_read_signal: tx,
            control: None,
        };

        (r, rx)
    }

    /// cmdb-lite patch: the connection, for a bounded drain on drop.
    pub fn with_control(mut self, control: std::sync::Arc<dyn DrainControl>) -> Self {
        self.control = Some(control);
        self
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        // cmdb-lite patch: drain through a fixed buffer. Upstream allocated a buffer as large as
        // the unread rest of the body, so a request claiming a huge Content-Length aborted the
        // whole process when its body was left unread.
        let mut remaining_to_read = self.size;
        if remaining_to_read == 0 {
            return;
        }
        let mut buf = [0u8; 8192];
        let started = std::time::Instant::now();
        let mut drained = 0usize;
        let control = self.control.take();
        if let Some(c) = &control {
            if c.closing() {
                c.abandon();
                return;
            }
        }
        // Each read waits at most what is left of the drain's time.
        let previous = control
            .as_ref()
            .map(|c| c.read_timeout(Some(DRAIN_MAX_TIME)));
        // The client closed its side: nothing more will come, and the next read of the
        // connection sees the end too (`FusedReader` drops this reader at the end of the body,
        // before the answer is written, so this must not close the connection).
        let mut ended = false;

        while remaining_to_read > 0 {
            let left = DRAIN_MAX_TIME.saturating_sub(started.elapsed());
            if control.is_some() && (drained >= DRAIN_MAX_BYTES || left.is_zero()) {
                break;
            }
            if let Some(c) = &control {
                c.read_timeout(Some(left.max(std::time::Duration::from_millis(1))));
            }
            let want = remaining_to_read.min(buf.len());
            match self.reader.read(&mut buf[..want]) {
                Err(e) => {
                    self.last_read_signal.send(Err(e)).ok();
                    break;
                }
                Ok(0) => {
                    self.last_read_signal.send(Ok(())).ok();
                    ended = true;
                    break;
                }
                Ok(other) => {
                    remaining_to_read -= other;
                    drained += other;
                }
            }
        }
        if let Some(c) = &control {
            c.read_timeout(previous.flatten());
            if remaining_to_read > 0 && !ended {
                c.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5);

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }
}
