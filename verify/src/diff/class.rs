//! A change class in words, and its rank.
//!
//! **Words.** A class is found by fixing the rules its first hop hits on both sides and both
//! outcomes; it is rarely a box of values. So the class is described field by field, each with
//! the other fields at the witness's values, and each field's words name *exactly* the values
//! that stay in the class there (within the scope searched: routable or not): "any dport",
//! "dport not 15001 or 15006" (the values out of the class, enumerated to the end), "dport
//! 15090" (the values in it, enumerated to the end), "to a non-local destination not in
//! 10.0.0.0/8" (a kind of address that holds the whole class, less the prefixes out of it).
//! Every such claim is a pair of unsat answers (nothing in the words is out of the class, nothing
//! out of the words is in it); where neither list ends within [`MAX_LIST`] entries, or the solver
//! does not answer, the words say "dport 80 among others": the witness's value and no claim.
//!
//! **Rank.** [`rank`] orders classes by impact (docs/diff.md): application traffic whose capture
//! changes first, then application traffic captured alike whose journey changes after, then the
//! proxy's own connections, and last connections addressed to the proxy's own capture ports that
//! loop on both sides (the renderers fold those into one line).

use sidecar_model::pod::{Delivery, HopVerdict, Journey, Outcome, Profile};
use z3::ast::{Bool, BV};
use z3::{SatResult, Solver};

use crate::invariants::{Dom, Symbolic};
use crate::results::diff::Impact;
use crate::smt::{
    all, any, bits_addr, bv, truth, value, Concretize, Encoder, SymJourney, SymPacket, PORT_BITS,
};

/// The longest list of values the words name.
pub const MAX_LIST: usize = 8;

/// The longest list of address prefixes the words name (each costs a search for its length).
pub const MAX_PREFIXES: usize = 4;

/// A class around its witness, for questions about its values.
pub(super) struct Class<'a, 'e> {
    enc: &'a Encoder<'e>,
    first: &'a SymPacket,
    outside: &'a Bool,
    journey: &'a SymJourney,
    m: &'a z3::Model,
    class: &'a Bool,
    /// The family's solver for this scope (its facts asserted), shared by the classes.
    d: &'a Solver,
    /// Literals standing for the class and for its complement in `d` (`guard`): the class's
    /// term holds every rule hit of the first hop on both sides, and asserted anew for each
    /// of the dozens of queries that describe it, it was taken in (bit-blasted) as often;
    /// assumed, it is taken in once.
    inside: Bool,
    off: Bool,
}

/// A part of a field's set: one value, or a prefix of addresses (value, length).
#[derive(Clone, Copy)]
enum Piece {
    Value(u128),
    Net(u128, u32),
}

fn or_list(v: &[String]) -> String {
    match v {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl<'a, 'e> Class<'a, 'e> {
    /// The class `class` of the witness `m`, in the solver `d` that holds its scope (shared by
    /// the classes of one family and scope: each query is made in a scope of its own).
    pub(super) fn new(
        enc: &'a Encoder<'e>,
        first: &'a SymPacket,
        outside: &'a Bool,
        journey: &'a SymJourney,
        m: &'a z3::Model,
        class: &'a Bool,
        d: &'a Solver,
    ) -> Class<'a, 'e> {
        Class {
            enc,
            first,
            outside,
            journey,
            m,
            class,
            d,
            inside: crate::smt::solve::guard(d, class),
            off: crate::smt::solve::guard(d, &class.not()),
        }
    }

    fn check(&self, conds: &[Bool]) -> (SatResult, Option<z3::Model>) {
        self.d.push();
        let off = self.class.not();
        let mut assume = Vec::new();
        for c in conds {
            if c == self.class {
                assume.push(self.inside.clone());
            } else if *c == off {
                assume.push(self.off.clone());
            } else {
                self.d.assert(c);
            }
        }
        let r = crate::smt::solve::check_assuming(self.d, &assume);
        let m = if r == SatResult::Sat {
            self.d.get_model()
        } else {
            None
        };
        self.d.pop(1);
        (r, m)
    }

    /// Every connection of the class (in scope) satisfies `pred` (false when unknown).
    pub(super) fn all_of(&self, pred: &Bool) -> bool {
        self.check(&[self.class.clone(), pred.not()]).0 == SatResult::Unsat
    }

    /// The class holds a connection of an application (from outside, or opened by a process
    /// the profile does not call the proxy).
    pub(super) fn has_application(&self, profile: &Profile) -> bool {
        let sym = Symbolic {
            enc: self.enc,
            first: self.first,
            outside: self.outside,
            journey: self.journey,
        };
        let proxy = all(&[self.outside.not(), sym.proxy(profile)]);
        !self.all_of(&proxy)
    }

    /// Every connection of the class is addressed to one of `ports`.
    pub(super) fn addressed_to(&self, ports: &[u16]) -> bool {
        let to = any(&ports
            .iter()
            .map(|p| self.first.dport.eq(bv(u128::from(*p), PORT_BITS)))
            .collect::<Vec<_>>());
        !ports.is_empty() && self.all_of(&to)
    }

    fn fields(&self) -> Vec<(&'static str, &'a BV)> {
        let p = self.first;
        vec![
            ("proto", &p.proto),
            ("uid", &p.uid),
            ("gid", &p.gid),
            ("src", &p.src),
            ("dst", &p.dst),
            ("sport", &p.sport),
            ("dport", &p.dport),
        ]
    }

    /// The witness's side (outside or not) and every field but `skip` at its value.
    fn fixed(&self, skip: &str) -> Bool {
        let mut v = vec![if truth(self.m, self.outside) {
            self.outside.clone()
        } else {
            self.outside.not()
        }];
        for (n, t) in self.fields() {
            if n != skip {
                v.push(t.eq(t.constant(self.m)));
            }
        }
        all(&v)
    }

    fn net(&self, term: &BV, v: u128, len: u32) -> Bool {
        let prefix = u8::try_from(len).unwrap_or(128);
        self.enc.in_net(term, bits_addr(v, self.enc.family), prefix)
    }

    /// The values of `term` in `within` (and `base`) on the class's side (`inside`) or off it,
    /// as at most [`MAX_LIST`] pieces covering them exactly: None when there are more, or the
    /// solver does not answer. Addresses are grown to the widest prefix wholly on that side.
    fn pieces(
        &self,
        base: &Bool,
        within: &Bool,
        term: &BV,
        addr: bool,
        inside: bool,
        limit: usize,
    ) -> Option<Vec<Piece>> {
        let side = if inside {
            self.class.clone()
        } else {
            self.class.not()
        };
        let other = if inside {
            self.class.not()
        } else {
            self.class.clone()
        };
        let width = term.get_size();
        let mut found: Vec<Piece> = Vec::new();
        let mut blocks: Vec<Bool> = Vec::new();
        loop {
            let mut conds = vec![base.clone(), within.clone(), side.clone()];
            conds.extend(blocks.iter().cloned());
            let (r, m) = self.check(&conds);
            match r {
                SatResult::Unsat => return Some(found),
                SatResult::Unknown => return None,
                SatResult::Sat => {}
            }
            if found.len() >= limit {
                return None;
            }
            let v = value(&m?, term);
            if !addr {
                found.push(Piece::Value(v));
                blocks.push(term.eq(bv(v, width)).not());
                continue;
            }
            // The shortest prefix around v with nothing of the other side in it.
            let (mut lo, mut hi) = (0u32, width);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let net = self.net(term, v, mid);
                let clean = self
                    .check(&[base.clone(), within.clone(), other.clone(), net])
                    .0
                    == SatResult::Unsat;
                if clean {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let mask = if lo == 0 {
                0
            } else {
                (u128::MAX << (128 - lo)) >> (128 - width)
            };
            found.push(Piece::Net(v & mask, lo));
            blocks.push(self.net(term, v, lo).not());
        }
    }

    fn piece_words(&self, name: &str, p: Piece) -> String {
        let fam = self.enc.family;
        let width = self.enc.width;
        match p {
            Piece::Net(v, len) if len >= width => bits_addr(v, fam).to_string(),
            Piece::Net(v, len) => format!("{}/{len}", bits_addr(v, fam)),
            Piece::Value(v) if name == "proto" => match v {
                6 => "tcp".into(),
                17 => "udp".into(),
                n => format!("protocol {n}"),
            },
            Piece::Value(v) => v.to_string(),
        }
    }

    fn list(&self, name: &str, mut v: Vec<Piece>) -> String {
        v.sort_by_key(|p| match p {
            Piece::Value(x) | Piece::Net(x, _) => *x,
        });
        let words: Vec<String> = v.into_iter().map(|p| self.piece_words(name, p)).collect();
        or_list(&words)
    }

    /// The kinds of values a field's words may start from, narrowest first: (the kind, its
    /// words; "" for any value).
    fn kinds(&self, name: &str, term: &BV) -> Vec<(Bool, &'static str)> {
        let t = Bool::from_bool(true);
        let enc = self.enc;
        match name {
            "dst" => vec![
                (enc.is_pod_ip(term), "to a pod IP"),
                (enc.is_loopback(term), "to a loopback destination"),
                (enc.is_local(term), "to a local destination"),
                (enc.is_local(term).not(), "to a non-local destination"),
                (t, ""),
            ],
            "src" => vec![
                (enc.is_pod_ip(term), "from a pod IP"),
                (enc.is_loopback(term), "from a loopback source"),
                (enc.is_local(term), "from a local source"),
                (enc.is_local(term).not(), "from a non-local source"),
                (t, ""),
            ],
            _ => vec![(t, "")],
        }
    }

    /// One field's words: among the kinds that hold every value of the class (with the other
    /// fields at the witness's), the shortest exact words; else the witness's value and no
    /// claim.
    fn field(&self, name: &str, term: &BV) -> String {
        let addr = matches!(name, "src" | "dst");
        let base = self.fixed(name);
        let mut best: Option<(usize, String)> = None;
        for (kind, word) in self.kinds(name, term) {
            // A narrower kind's words are as short as any address's without a kind.
            if !truth(self.m, &kind) || (addr && word.is_empty() && best.is_some()) {
                continue;
            }
            // The kind holds every value of the class.
            if self
                .check(&[base.clone(), kind.not(), self.class.clone()])
                .0
                != SatResult::Unsat
            {
                continue;
            }
            let whole = if word.is_empty() {
                format!("any {name}")
            } else {
                word.to_string()
            };
            let most = if addr { MAX_PREFIXES } else { MAX_LIST };
            let limit = best.as_ref().map_or(most, |(n, _)| n.saturating_sub(1));
            let out = self.pieces(&base, &kind, term, addr, false, limit);
            if out.as_ref().is_some_and(Vec::is_empty) {
                return whole;
            }
            let limit = out.as_ref().map_or(limit, Vec::len).min(limit);
            let inn = self.pieces(&base, &kind, term, addr, true, limit);
            let head = if word.is_empty() { name } else { word };
            let words = match (out, inn) {
                (Some(o), Some(i)) if i.len() <= o.len() => {
                    Some((i.len(), self.set(name, head, i)))
                }
                (None, Some(i)) => Some((i.len(), self.set(name, head, i))),
                (Some(o), _) => Some((o.len(), format!("{head} {}", self.not_set(name, o)))),
                (None, None) => None,
            };
            if let Some((n, w)) = words {
                if best.as_ref().is_none_or(|(b, _)| n < *b) {
                    best = Some((n, w));
                }
            }
            // One entry is as short as words with a list get.
            if best.as_ref().is_some_and(|(n, _)| *n <= 1) {
                break;
            }
        }
        if let Some((_, w)) = best {
            return w;
        }
        let v = value(self.m, term);
        let shown = if addr {
            bits_addr(v, self.enc.family).to_string()
        } else {
            self.piece_words(name, Piece::Value(v))
        };
        format!("{name} {shown} among others")
    }

    fn single(&self, p: &Piece, width: u32) -> bool {
        match p {
            Piece::Value(_) => true,
            Piece::Net(_, l) => *l >= width,
        }
    }

    /// "dport 15001 or 15006", "dst in 10.0.0.0/8", "to a non-local destination in
    /// 10.0.0.0/8", "tcp": the values of the class within the kind `head` (a prefix may hold
    /// values outside the kind, so the kind stays in the words; a single value speaks for
    /// itself).
    fn set(&self, name: &str, head: &str, v: Vec<Piece>) -> String {
        let width = self.enc.width;
        let whole = v.iter().all(|p| self.single(p, width));
        let list = self.list(name, v);
        match name {
            "proto" => list,
            _ if whole => format!("{name} {list}"),
            _ => format!("{head} in {list}"),
        }
    }

    /// "not 15001 or 15006", "other than 127.0.0.1", "not in 10.0.0.0/8".
    fn not_set(&self, name: &str, v: Vec<Piece>) -> String {
        let width = self.enc.width;
        let whole = v.iter().all(|p| self.single(p, width));
        let list = self.list(name, v);
        match name {
            "src" | "dst" if whole => format!("other than {list}"),
            "src" | "dst" => format!("not in {list}"),
            _ => format!("not {list}"),
        }
    }

    /// The class in words: where it comes from, then each field.
    pub(super) fn words(&self) -> String {
        let from_outside = truth(self.m, self.outside);
        let mut parts = vec![if from_outside {
            "from outside".to_string()
        } else {
            "opened in the pod".to_string()
        }];
        // IPv4 goes without saying; an IPv6 class says so.
        if self.enc.family == sidecar_model::Family::Ipv6 {
            parts.push("IPv6".into());
        }
        for (name, term) in self.fields() {
            if from_outside && matches!(name, "uid" | "gid") {
                continue;
            }
            parts.push(self.field(name, term));
        }
        parts.join(", ")
    }
}

/// Where a journey's first hop takes the connection: dropped there, captured by a port, or
/// neither.
#[derive(Debug, PartialEq, Eq)]
enum Capture {
    Dropped,
    Uncaptured,
    By(u16),
}

fn capture(j: &Journey) -> Capture {
    let Some(h) = j.hops.first() else {
        return Capture::Uncaptured;
    };
    match (h.verdict, h.delivered_to) {
        (HopVerdict::Drop | HopVerdict::Reject, _) | (_, Delivery::Dropped) => Capture::Dropped,
        (HopVerdict::Redirect(p) | HopVerdict::Tproxy(p), _) => Capture::By(p),
        (HopVerdict::Dnat(_), Delivery::Listener(p)) => Capture::By(p),
        _ => Capture::Uncaptured,
    }
}

/// The proxy's own capture ports, as the profile says: the outbound and inbound listeners and
/// the DNS listener when DNS is captured.
pub fn capture_ports(p: &Profile) -> Vec<u16> {
    let mut v = vec![p.outbound_port, p.inbound_port];
    v.extend(p.dns_capture_port);
    v.sort_unstable();
    v.dedup();
    v
}

/// A class's impact (docs/diff.md): `application` whether it holds an application's
/// connection, `at_capture_ports` whether every connection of it is addressed to the proxy's
/// capture ports; `old`/`new` the witness's journeys.
pub(super) fn rank(
    application: bool,
    at_capture_ports: bool,
    old: &Journey,
    new: &Journey,
) -> Impact {
    if old.outcome == Outcome::Loop && new.outcome == Outcome::Loop && at_capture_ports {
        Impact::CapturePortLoop
    } else if !application {
        Impact::Proxy
    } else if capture(old) != capture(new) {
        Impact::Capture
    } else {
        Impact::Journey
    }
}
