//! List answers rendered a piece at a time: `list_service_instance_detail` (a piece is an
//! instance's own fields, or one of its processes) and `list_process_instance` (a piece is one
//! process). The query runs under the request's permit; the pieces are rendered from the same
//! snapshot while the client reads (`http/stream.rs`), so an answer never sits whole in memory.
//! Run to its end on one snapshot, a [`Listed`] gives exactly the text the answer had when it
//! was built whole; [`whole`] does that for the callers that want the text.

use super::{Ctx, Data, Input, Op};
use crate::error::CcError;
use crate::limits::STREAM_CHUNK_BYTES;
use crate::store::{Lasting, ReadTx, Store};
use std::sync::Arc;

/// The rest of a list answer's `data`, rendered on demand.
pub trait Pieces {
    /// Appends the next piece to `out`; false (with nothing appended) once there is none left.
    fn next(&mut self, tx: &ReadTx, out: &mut Vec<u8>) -> Result<bool, CcError>;
}

/// `data` as its head (`{"count":3,"info":[`, then the pieces already rendered), the pieces
/// still to render, and its tail (`]}`).
pub struct Listed {
    pub head: Vec<u8>,
    pub pieces: Box<dyn Pieces>,
    pub tail: &'static str,
    /// True once `pieces` has nothing left: `head` then `tail` is the whole of `data`.
    pub ended: bool,
}

/// A list answer and the snapshot its pieces are read from.
pub struct Streamed {
    pub snapshot: Lasting,
    pub listed: Listed,
}

/// The query of a streamed operation, on `tx`; `None` for an operation answered whole.
fn query(op: Op, input: &Input) -> Option<Result<Query, CcError>> {
    match op {
        Op::ListServiceInstanceDetail => Some(super::service_instance::detail_query(input)),
        Op::ListProcessInstance => Some(super::process_instance::list_query(input)),
        _ => None,
    }
}

/// A decoded list request, run on a snapshot.
pub type Query = Box<dyn Fn(&ReadTx) -> Result<Listed, CcError>>;

/// Runs a streamed operation's query on a snapshot that then stays with the answer; `None`
/// for an operation answered whole (`api::call`).
pub fn call(
    op: Op,
    _ctx: &Ctx,
    store: &Arc<Store>,
    input: &Input,
) -> Option<Result<Streamed, CcError>> {
    // While writes fail with I/O errors, each try latches the file under any snapshot in use: a
    // streamed answer would be cut, a whole one is run again on the reopened file. (A file that
    // cannot grow latches nothing: `store/room.rs`.)
    if store.failed() {
        return None;
    }
    let run = match query(op, input)? {
        Ok(run) => run,
        Err(e) => return Some(Err(e)),
    };
    // The first buffer is rendered with the query, where a failure of the file (a write
    // failing beside it) runs the whole read again on the reopened file, as `Store::read` does:
    // an answer that fits in it is never cut.
    let first = |tx: &ReadTx| {
        let mut listed = run(tx)?;
        while listed.head.len() < STREAM_CHUNK_BYTES {
            if !listed.pieces.next(tx, &mut listed.head)? {
                listed.ended = true;
                break;
            }
        }
        Ok(listed)
    };
    Some(
        store
            .lasting(first)
            .map(|(snapshot, listed)| Streamed { snapshot, listed }),
    )
}

/// The whole `data` of a listing, on `tx`.
pub fn whole(tx: &ReadTx, listed: Listed) -> Result<Data, CcError> {
    let Listed {
        head,
        mut pieces,
        tail,
        ..
    } = listed;
    let mut out = head;
    while pieces.next(tx, &mut out)? {}
    out.extend_from_slice(tail.as_bytes());
    // Only serde_json and ASCII punctuation wrote into `out`, and they write UTF-8.
    String::from_utf8(out)
        .map(Data)
        .map_err(|_| CcError::raw(crate::error::code::DB_SELECT, "stored text is not UTF-8"))
}

/// The answer of a streamed operation built whole, as `api::call` gives it.
pub fn call_whole(op: Op, store: &Store, input: &Input) -> Result<Data, CcError> {
    let run = match query(op, input) {
        Some(Ok(run)) => run,
        Some(Err(e)) => return Err(e),
        None => return Err(CcError::with(crate::error::code::INTERNAL, "proc")),
    };
    store.read(|tx| whole(tx, run(tx)?))
}
