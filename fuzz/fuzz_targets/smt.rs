//! A small valid random ruleset and a first packet → the Z3 encoding with the packet fixed
//! agrees with the evaluator: the same rules hit in the same order, drop/reject, delivery and
//! redirection (`sidecar_verify::smt::agree::hop_agrees`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_model::gen::Numbers;
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Family;
use sidecar_verify::smt::agree::hop_agrees;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut n = Numbers::new(data);
    let rs = common::ruleset(&mut n, 2, 4);
    let fam = if n.next_u32() % 4 == 0 && !rs.ipv6.is_empty() {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    // Names from the encoder's enumeration: another name would stand for "other" there.
    let Ok(ifaces) = sidecar_verify::smt::Ifaces::new(&rs) else {
        return;
    };
    let names: Vec<&str> = ifaces.names.iter().skip(1).map(String::as_str).collect();
    let (entry, p) = common::packet(&mut n, fam, &common::ENTRIES, &names);
    let pod = Pod::new(&common::POD_IPS);
    if let Err(e) = hop_agrees(&rs, &pod, &Profile::istio(), fam, entry, p) {
        panic!("{e}");
    }
});
