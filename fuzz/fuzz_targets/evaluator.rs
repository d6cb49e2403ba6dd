//! A valid random ruleset (built from the input's numbers) and packets → the evaluator: never
//! panics, terminates, the traced and fast paths agree, evaluation is deterministic, every chain
//! indexed and none give the same; and whole journeys through the pod end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_model::eval::{NoTrace, Scratch, Trace};
use sidecar_model::gen::Numbers;
use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::Family;

#[path = "common.rs"]
mod common;

/// The generator's interface names and a few others.
const IFACES: &[&str] = &["lo", "eth0", "eth1", "not-istio-nic", "veth1234567890a"];

fuzz_target!(|data: &[u8]| {
    let mut n = Numbers::new(data);
    let rs = common::ruleset(&mut n, 6, 8);
    let sim = Simulator::new(&rs, Pod::new(&common::POD_IPS), Profile::istio());
    let engine = sim.engine();
    // Every chain with a keyed rule indexed, and none (every rule tried).
    let indexed = engine.clone().with_index_min(0);
    let linear = engine.clone().with_index_min(usize::MAX);
    let mut scratch = Scratch::default();
    for k in 0..4 {
        let fam = if n.next_u32() % 4 == 0 {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        let (hook, p) = common::packet(&mut n, fam, &common::ALL_HOOKS, IFACES);
        let (mut a, mut b, mut c) = (p, p, p);
        let mut t = Trace::default();
        let ra = engine.run_hook(hook, &mut a, &mut scratch, &mut NoTrace);
        let rb = engine.run_hook(hook, &mut b, &mut scratch, &mut t);
        let mut t2 = Trace::default();
        let rc = engine.run_hook(hook, &mut c, &mut scratch, &mut t2);
        assert_eq!(ra, rb, "traced and fast verdicts differ");
        assert_eq!(a, b, "traced and fast packets differ");
        assert_eq!((rb, b), (rc, c), "not deterministic");
        assert_eq!(t, t2, "traces differ between runs");
        for (e, what) in [(&indexed, "indexed"), (&linear, "scanned")] {
            let mut d = p;
            let mut t3 = Trace::default();
            let rd = e.run_hook(hook, &mut d, &mut scratch, &mut t3);
            assert_eq!((rb, b, &t), (rd, d, &t3), "the {what} engine differs");
        }
        if k < 2 {
            let (entry, q) = common::packet(&mut n, fam, &common::ENTRIES, IFACES);
            let j = sim.journey_packet(entry, q);
            assert!(j.hops.len() <= sim.profile.max_hops + 1);
        }
    }
});
