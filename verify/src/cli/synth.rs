//! `synth`: synthetic rulesets of a node's size ([`sidecar_model::synth`]), written to stdout.

use sidecar_model::synth::kube_proxy::{generate, Mesh, Spec};

use super::{emit, KubeProxyArgs};

/// `synth kube-proxy`: 0 when written, 2 for a spec that cannot be (with the reason).
pub(super) fn kube_proxy(a: &KubeProxyArgs) -> u8 {
    if a.backend == "nft" {
        eprintln!(
            "error: `--backend nft` is not built yet: our nft front end has no named sets or maps, \
             no verdict maps (`vmap`) and no `numgen`, which kube-proxy's nftables mode is made of \
             (docs/scale.md); use `--backend iptables`"
        );
        return 2;
    }
    let spec = Spec {
        services: a.services,
        endpoints: a.endpoints,
        nodeport_every: a.nodeport_every,
        mesh: a.mesh.as_deref().and_then(Mesh::from_name),
        seed: a.seed,
    };
    match generate(&spec) {
        Ok(text) => emit(&text),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
