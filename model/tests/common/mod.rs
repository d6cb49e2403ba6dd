//! Helpers of model's tests and of its benchmark (which includes this file with `#[path]`):
//! where the rulesets to test against are, and the round trip every parsed ruleset must pass.
//! The property-test strategies are `sidecar_model::gen::strategy` (feature `proptest`).

#![allow(dead_code, reason = "each test crate uses a part of these helpers")]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use sidecar_model::eval::Packet;
use sidecar_model::{parse, print_ruleset, Ruleset};

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Istio's corpus, read in place from `../shared/corpus/istio` (or
/// `$SIDECAR_SHARED_CORPUS/istio`), when it is here; never copied into the repository.
pub fn istio_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("SIDECAR_SHARED_CORPUS")
        .map_or_else(|| workspace().join("../shared/corpus"), PathBuf::from);
    Some(shared.join("istio")).filter(|dir| dir.join("INDEX.md").is_file())
}

/// `parse(print(r)) == r`, and printing the result again gives the same text; what differs
/// otherwise. `name` says which ruleset in the message.
pub fn round_trip(name: &str, rs: &Ruleset) -> Result<(), String> {
    let printed = print_ruleset(rs);
    let again = parse("printed", printed.as_bytes())
        .map_err(|e| format!("{name}: the canonical print does not parse: {e}\n{printed}"))?
        .ruleset;
    if again != *rs {
        return Err(format!(
            "{name}: parse(print(r)) != r\n{printed}\nr: {rs:#?}\nparse(print(r)): {again:#?}"
        ));
    }
    if print_ruleset(&again) != printed {
        return Err(format!("{name}: printing is not stable\n{printed}"));
    }
    Ok(())
}

/// The application's first packet to a remote service, as it leaves through OUTPUT:
/// `tcp 10.1.0.5:40000 -> 10.1.0.99:80`, uid and gid 1000, no interface yet.
pub fn app_to_remote() -> Packet {
    let (pod, remote) = (Ipv4Addr::new(10, 1, 0, 5), Ipv4Addr::new(10, 1, 0, 99));
    Packet::tcp_out(pod.into(), remote.into(), 40000, 80, 1000, 1000)
}
