//! What `diff` finds: the classes of connections whose journey changed, and the invariants of
//! both rulesets.

use serde::Serialize;
use sidecar_model::pod::Journey;

use super::support::Touched;
use super::{InvariantResult, Witness};

/// How much a change matters, most first (docs/diff.md): `diff` lists its classes in this
/// order, and the renderers fold [`Impact::CapturePortLoop`] into one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// Application traffic (from outside, or opened by a process that is not the proxy) whose
    /// capture changes: captured or not, by another listener, or dropped before capture.
    Capture,
    /// Application traffic captured alike whose journey differs after the capture (loops, is
    /// dropped, ends elsewhere).
    Journey,
    /// Only the proxy's own connections change (recaptured, looping, dropped, ending
    /// elsewhere).
    Proxy,
    /// Connections addressed to the proxy's own capture ports (the outbound and inbound
    /// listeners) that loop on both sides, only differently.
    CapturePortLoop,
}

impl Impact {
    /// Short words for a heading.
    pub fn words(self) -> &'static str {
        match self {
            Impact::Capture => "application capture",
            Impact::Journey => "application journey",
            Impact::Proxy => "proxy's own",
            Impact::CapturePortLoop => "capture-port loop",
        }
    }
}

/// One class of connections whose journey changed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// How much it matters; classes are listed in this order.
    pub impact: Impact,
    /// The class in words, field by field with the others at the witness's values ("opened in
    /// the pod, tcp, uid 1337, gid not 1337, …, dport not 15001 or 15006").
    pub description: String,
    /// What changed for the witness, in one line: "before: …; after: …".
    pub effect: String,
    /// The witness's journey on the old ruleset, in words ("captured by 15001, then leaves the
    /// pod to 10.1.0.99:80").
    pub before: String,
    /// The witness's journey on the new ruleset, in words.
    pub after: String,
    /// The rules the first hop hits on each side (the class is these and the two outcomes).
    pub rules: String,
    /// One connection of the class.
    pub witness: Witness,
    /// Its journey on the old ruleset.
    pub old: Journey,
    /// Its journey on the new ruleset.
    pub new: Journey,
}

/// The invariants of both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Invariants {
    /// On the old ruleset.
    pub old: Vec<InvariantResult>,
    /// On the new ruleset.
    pub new: Vec<InvariantResult>,
}

impl Report {
    /// The classes to show one by one, and those folded into one line
    /// ([`Impact::CapturePortLoop`]), each in impact order.
    pub fn shown_and_folded(&self) -> (Vec<&Change>, Vec<&Change>) {
        self.changes
            .iter()
            .partition(|c| c.impact != Impact::CapturePortLoop)
    }
}

/// Everything `diff` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Classes of routable connections that behave differently, most impact first.
    pub changes: Vec<Change>,
    /// Classes only packets routing never produces can see.
    pub unroutable_changes: Vec<Change>,
    /// The invariants, old and new.
    pub invariants: Invariants,
    /// The proxy's own capture ports as the profile says (the outbound and inbound listeners,
    /// the DNS listener when DNS is captured): classes addressed only to them that loop on both
    /// sides are [`Impact::CapturePortLoop`].
    pub capture_ports: Vec<u16>,
    /// The class bound was reached: there may be more classes.
    pub truncated: bool,
    /// A query the solver could not decide, or rules the comparison cannot see through
    /// ([`Report::samples`]): the list may be incomplete.
    pub unknown: bool,
    /// Rules with a random sample (`-m statistic`) that one packet may pass twice in a hop, on
    /// either side, as "side table chain rule". The comparison takes each sample as one draw per
    /// rule and hop, shared by both sides (docs/diff.md); where a packet may pass two places of
    /// the rule, the kernel draws twice and a change behind the second draw may not be seen:
    /// when there are any, `unknown` is set, never "no change".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
    /// The invariants whose supporting rules on the old ruleset the change touches (changes or
    /// removes), whether or not they still hold.
    pub touched: Vec<Touched>,
    /// Why `touched` was not computed (a node-sized old ruleset: its supports are not
    /// computed at that size yet); `None` when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touched_skipped: Option<String>,
}
