//! What `check` and `diff` find, as data: the model that the commands fill in and that every
//! report renders (JSON is this model serialised). Nothing here runs a proof.

pub mod check;
pub mod diff;
pub mod mutate;
pub mod support;

use std::net::IpAddr;

use serde::Serialize;
use sidecar_model::eval::Packet;
use sidecar_model::pod::{Journey, Pod};
use sidecar_model::{Family, Hook};

/// The result of an invariant or a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Proved for every connection in scope.
    Holds,
    /// A connection violates it.
    Violated,
    /// The solver gave up, or the answer depends on matches the model cannot interpret.
    Unknown,
    /// No connection in scope is one it speaks about (its premise is unsatisfiable): nothing
    /// was checked. Not a failure (exit 0, as for holds), but never reported as holds.
    Vacuous,
}

impl Status {
    /// How bad it is, to combine families: violated > unknown > holds > vacuous (an invariant
    /// is vacuous only when it is vacuous in every family).
    pub fn rank(self) -> u8 {
        match self {
            Status::Vacuous => 0,
            Status::Holds => 1,
            Status::Unknown => 2,
            Status::Violated => 3,
        }
    }

    /// Not a failure: holds or vacuous.
    pub fn passes(self) -> bool {
        matches!(self, Status::Holds | Status::Vacuous)
    }
}

/// A concrete connection: what `trace` and `kernel` replay (its source bound as given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    /// The opening process's uid (0 from outside).
    pub uid: u32,
    /// The opening process's gid.
    pub gid: u32,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// `tcp`, `udp` or the protocol number.
    pub proto: String,
    /// It arrives on eth0 from outside.
    pub from_outside: bool,
    /// The interface it crosses first: out (generated here) or in (from outside).
    pub iface: String,
    /// The socket's mark (SO_MARK), when it has one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mark: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Witness {
    /// `PROTO SRC:SPORT -> DST:DPORT`.
    pub fn connection_words(&self) -> String {
        format!(
            "{} {} -> {}",
            self.proto,
            std::net::SocketAddr::new(self.src, self.sport),
            std::net::SocketAddr::new(self.dst, self.dport)
        )
    }

    /// Who opens it and the interface it crosses first: `uid U gid G, out IFACE` or `from
    /// outside, in IFACE`.
    pub fn context_words(&self) -> String {
        if self.from_outside {
            format!("from outside, in {}", self.iface)
        } else {
            format!("{}, out {}", self.who(), self.iface)
        }
    }

    /// The connection `trace` replays for this witness.
    pub fn connection(&self) -> sidecar_model::pod::Connection {
        sidecar_model::pod::Connection {
            proto: match self.proto.as_str() {
                "tcp" => 6,
                "udp" => 17,
                n => n.parse().unwrap_or(0),
            },
            src: Some(self.src),
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            uid: self.uid,
            gid: self.gid,
            from_outside: self.from_outside,
            mark: self.mark,
            iface: (self.from_outside
                && self.iface != sidecar_model::pod::ETH0
                && !self.iface.is_empty())
            .then(|| sidecar_model::eval::IfName::new(&self.iface)),
        }
    }

    /// Who opens it: `from outside` (`from outside on IFACE` off eth0), or `uid U gid G` (and
    /// `mark M` when its socket has one).
    pub fn who(&self) -> String {
        if self.from_outside {
            if self.iface == sidecar_model::pod::ETH0 || self.iface.is_empty() {
                "from outside".into()
            } else {
                format!("from outside on {}", self.iface)
            }
        } else if self.mark != 0 {
            format!("uid {} gid {} mark {:#x}", self.uid, self.gid, self.mark)
        } else {
            format!("uid {} gid {}", self.uid, self.gid)
        }
    }

    /// The witness of a first packet entering at `entry`.
    pub fn of_packet(entry: Hook, p: &Packet) -> Witness {
        let iface = if entry == Hook::Output {
            p.out_iface
        } else {
            p.in_iface
        };
        Witness {
            uid: p.uid,
            gid: p.gid,
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            proto: match p.proto {
                6 => "tcp".into(),
                17 => "udp".into(),
                n => n.to_string(),
            },
            from_outside: entry != Hook::Output,
            iface: iface.map(|i| i.as_str().to_string()).unwrap_or_default(),
            mark: if entry == Hook::Output { p.mark } else { 0 },
        }
    }
}

/// One invariant's result.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantResult {
    /// Stable id.
    pub id: &'static str,
    /// One-line statement with the profile's values.
    pub statement: String,
    /// The profile values it uses.
    pub uses: Vec<String>,
    /// The result.
    pub status: Status,
    /// The family the witness (or the unknown) is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// A connection that violates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// The witness's journey, as `trace --json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey: Option<Journey>,
    /// Why the result is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a relational invariant: the other connection of the violating pair (the first is
    /// [`InvariantResult::witness`]) and its journey, which differs from the first's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairWitness>,
    /// For an invariant that holds: the rules it rests on (filled in by
    /// `prove::support`; absent when not computed or undecided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support: Option<support::Support>,
}

/// The second connection of a pair that violates a relational invariant.
#[derive(Debug, Clone, Serialize)]
pub struct PairWitness {
    /// Its family.
    pub family: Family,
    /// The connection.
    pub witness: Witness,
    /// Its journey, as `trace --json` prints it.
    pub journey: Journey,
}

/// The `sidecar-verify` arguments that replay a witness: `trace RULES …` with the same
/// connection (and the pod's `--pod-ip` addresses, unless 10.1.0.5 alone: the addresses it had
/// by default `trace` gives it again from the same ruleset).
pub fn replay_args(rules: &str, pod: &Pod, w: &Witness) -> Vec<String> {
    let mut opts: Vec<(&str, String)> = Vec::new();
    if w.from_outside {
        if w.iface != sidecar_model::pod::ETH0 && !w.iface.is_empty() {
            opts.push(("--iface", w.iface.clone()));
        }
    } else {
        opts.push(("--uid", w.uid.to_string()));
        opts.push(("--gid", w.gid.to_string()));
        if w.mark != 0 {
            opts.push(("--mark", format!("{:#x}", w.mark)));
        }
    }
    opts.push(("--src", w.src.to_string()));
    opts.push(("--sport", w.sport.to_string()));
    opts.push(("--dst", w.dst.to_string()));
    opts.push(("--dport", w.dport.to_string()));
    if w.proto != "tcp" {
        opts.push(("--proto", w.proto.clone()));
    }
    // The addresses `--pod-ip` gave; the defaults come back by themselves, as `trace` builds its
    // pod from the same ruleset (Pod::for_rulesets).
    let given = pod.given();
    if given != Pod::default().ips {
        opts.extend(given.iter().map(|ip| ("--pod-ip", ip.to_string())));
    }
    // No RULES (the embedded classic ruleset): `trace` without one replays on the same.
    let mut a = vec!["trace".to_string()];
    if !rules.is_empty() {
        a.push(rules.to_string());
    }
    if w.from_outside {
        a.push("--from-outside".into());
    }
    for (name, value) in opts {
        a.push(name.to_string());
        a.push(value);
    }
    a
}

/// The replay command for a witness: `sidecar-verify trace …` ([`replay_args`]).
pub fn replay_command(rules: &str, pod: &Pod, w: &Witness) -> String {
    format!("sidecar-verify {}", replay_args(rules, pod, w).join(" "))
}
