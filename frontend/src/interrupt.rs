//! A process-wide request to stop training at the next minibatch boundary — what Ctrl-C
//! does in `xenon train`: [`Model::fit`](crate::model::Model::fit) finishes the minibatch
//! it is running, brings the values back from the device, records where it stopped (so
//! [`Model::save`](crate::model::Model::save) writes a checkpoint that resumes mid-epoch)
//! and returns [`ModelError::Interrupted`](crate::model::ModelError::Interrupted). The
//! library installs no signal handler; an application calls [`request_stop`] from its own.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks training to stop after the current minibatch (async-signal-safe: one atomic store).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested and not yet [`clear`]ed.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Withdraws a stop request (before training again in the same process).
pub fn clear() {
    STOP.store(false, Ordering::SeqCst);
}
