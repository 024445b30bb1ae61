//! SIGTERM and SIGINT (Slurm preemption, Ctrl-C) as a request to stop at a safe point: the
//! training loop checks `stop_requested` between steps and ends the run with `Interrupted`,
//! leaving it resumable from its last finished epoch.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Route SIGTERM and SIGINT to `stop_requested` (training commands call this first).
pub fn install() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// A run stopped by a signal between two steps; its last finished epoch is saved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("interrupted in epoch {signal_seen_at_epoch}: the run resumes from its last finished epoch when started again")]
pub struct Interrupted {
    pub signal_seen_at_epoch: usize,
}

/// Did `err` come from an interruption?
pub fn interrupted(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Interrupted>().is_some()
}
