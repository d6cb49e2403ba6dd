//! Progress of long work, for a person watching: the library says which phase it is in and how
//! far it has come; whoever listens (the command line draws a bar on stderr, `crate::term`)
//! shows it. Without a listener (tests, library use) a call costs one atomic load.
//!
//! Phases today: proving the invariants (one step per invariant and family) and the rules'
//! reachability (one step per rule and family), in `prove` (so `check`, and `diff`'s two
//! proofs), and the mutants of `mutate` (one step each, the proofs inside not shown). `diff`'s
//! enumeration of classes says nothing yet.

use std::cell::Cell;
use std::sync::OnceLock;

/// Who shows progress.
pub trait Listener: Send + Sync {
    /// A new phase begins: what it does, in a few words, and how many steps it has (0: unknown).
    fn phase(&self, what: &str, steps: u64);
    /// `n` more steps of the phase are done.
    fn advance(&self, n: u64);
    /// The work is over: clear what was shown.
    fn finish(&self);
}

static LISTENER: OnceLock<Box<dyn Listener>> = OnceLock::new();

thread_local! {
    /// How deep in [`within`] this thread is: phases and steps below the top are not shown.
    static INNER: Cell<u32> = const { Cell::new(0) };
}

fn listener() -> Option<&'static dyn Listener> {
    if INNER.with(Cell::get) > 0 {
        return None;
    }
    LISTENER.get().map(|l| &**l)
}

/// Runs `f` without showing its phases: a step of an outer phase that itself proves (each
/// mutant of `mutate` is a whole proof) shows as one step.
pub fn within<T>(f: impl FnOnce() -> T) -> T {
    INNER.with(|d| d.set(d.get() + 1));
    let out = f();
    INNER.with(|d| d.set(d.get().saturating_sub(1)));
    out
}

/// Installs the process's listener (the first one stays; later calls are ignored).
pub fn listen(l: Box<dyn Listener>) {
    let _ = LISTENER.set(l);
}

/// A phase begins.
pub fn phase(what: &str, steps: usize) {
    if let Some(l) = listener() {
        l.phase(what, u64::try_from(steps).unwrap_or(u64::MAX));
    }
}

/// One more step of the phase is done.
pub fn step() {
    if let Some(l) = listener() {
        l.advance(1);
    }
}

/// The work is over.
pub fn finish() {
    if let Some(l) = listener() {
        l.finish();
    }
}
