//! Evaluations per second of the classic ruleset's fast path, robust to a busy machine: the
//! best of many timed batches of 1,024 evaluations (a batch takes tens of microseconds, so most
//! run without being preempted). `cargo run --release -p sidecar-model --example evalspeed`.

use std::time::{Duration, Instant};

use sidecar_model::eval::{Engine, IfName, NoTrace, Packet, Scratch};
use sidecar_model::{parse, Hook, DEFAULT_RULESET};

fn main() {
    let Ok(parsed) = parse("classic", DEFAULT_RULESET.as_bytes()) else {
        return;
    };
    let engine = Engine::new(&parsed.ruleset);
    let mut p = Packet::tcp_out(
        [10, 1, 0, 5].into(),
        [10, 1, 0, 99].into(),
        40000,
        80,
        1000,
        1000,
    );
    p.out_iface = Some(IfName::new("eth0"));
    const BATCH: usize = 1024;
    let mut scratch = Scratch::default();
    let mut best = Duration::MAX;
    let mut pkts = vec![p; BATCH];
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        pkts.iter_mut().for_each(|q| *q = p);
        let t = Instant::now();
        for q in &mut pkts {
            std::hint::black_box(engine.run_hook(Hook::Output, q, &mut scratch, &mut NoTrace));
        }
        best = best.min(t.elapsed());
    }
    println!(
        "classic fast path: {:.1} ns per evaluation, {:.1} M/s (best batch of {BATCH})",
        best.as_secs_f64() * 1e9 / BATCH as f64,
        BATCH as f64 / best.as_secs_f64() / 1e6
    );
}
