//! Synthetic rulesets of realistic size, for the scale work (issue 16): what a Kubernetes node
//! holds rather than what one pod's sidecar writes. [`kube_proxy`] writes the nat table
//! kube-proxy's iptables mode keeps for N services, optionally with a mesh's rules merged in.
//!
//! # Example
//! ```
//! use sidecar_model::synth::kube_proxy::{generate, Spec};
//! let text = generate(&Spec { services: 2, ..Spec::default() }).unwrap();
//! assert!(text.contains(":KUBE-SERVICES - [0:0]"));
//! ```

pub mod kube_proxy;
mod rng;
