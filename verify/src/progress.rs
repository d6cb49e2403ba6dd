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

/// With `SIDECAR_VERIFY_TIMINGS` set in the environment, each top-level phase's wall time is
/// written to stderr when the next one begins or the work is over (for profiling: docs/scale.md).
type Timing = std::sync::Mutex<Option<(String, std::time::Instant)>>;

fn timings() -> Option<&'static Timing> {
    static T: OnceLock<Option<Timing>> = OnceLock::new();
    T.get_or_init(|| {
        std::env::var_os("SIDECAR_VERIFY_TIMINGS").map(|_| std::sync::Mutex::new(None))
    })
    .as_ref()
}

fn time_phase(next: Option<&str>) {
    if INNER.with(Cell::get) > 0 {
        return;
    }
    if let Some(t) = timings() {
        if let Ok(mut g) = t.lock() {
            if let Some((what, at)) = g.take() {
                eprintln!("timing: {:>9.3} s  {what}", at.elapsed().as_secs_f64());
            }
            *g = next.map(|w| (w.to_string(), std::time::Instant::now()));
        }
    }
}

/// With `SIDECAR_VERIFY_TIMINGS` set: a step inside the current phase and the wall time since
/// `since`, on stderr (nothing otherwise).
pub fn timing(what: &str, since: std::time::Instant) {
    if timings().is_some() && INNER.with(Cell::get) == 0 {
        eprintln!("timing:   {what} in {:.3} s", since.elapsed().as_secs_f64());
    }
}

/// A phase begins.
pub fn phase(what: &str, steps: usize) {
    time_phase(Some(what));
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
    time_phase(None);
    if let Some(l) = listener() {
        l.finish();
    }
}
