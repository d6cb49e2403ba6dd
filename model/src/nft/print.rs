//! The nft tables of a ruleset as `nft list ruleset` prints them after `nft -f` (nftables 1.0.6):
//! tables and chains in the order they were created, a base chain's registration with nft's
//! priority names, each rule's expressions in the order written but as nft writes them back:
//! `meta l4proto tcp` dropped before a `tcp` port test (which implies it), host prefixes without
//! `/32`, marks in 8-digit hex, `ct state` in the kernel's bit order, counters with their values.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::script::standard_priority;
use super::{Item, Layout, ProtoWord, VERBATIM};
use crate::ast::{
    BaseChain, Chain, Cidr, Family, Iface, MarkMask, NatRange, Neg, NftFamily, NftTable, Policy,
    PortRange, Protocol, Rule, Ruleset, Table, Target,
};
use crate::matches::{AddrType, CtState, IdSpec, Match, PortDir};
use crate::print::{ip, ports as port_text, protocol_name};

/// The ruleset's nft tables as `nft list ruleset` prints them (an `inet` table once, from the
/// IPv4 side, which holds it whole).
pub fn print_nft(rs: &Ruleset) -> String {
    let mut s = String::new();
    // nft lists tables in the order they were created, across families.
    let mut tables: Vec<(&NftTable, &Table)> = rs
        .ipv4
        .iter()
        .chain(rs.ipv6.iter())
        .filter_map(|t| t.nft.as_ref().map(|n| (n, t)))
        .collect();
    tables.sort_by_key(|(n, _)| n.seq);
    tables.dedup_by(|a, b| a.0 == b.0);
    for (n, t) in tables {
        print_table(&mut s, n.family, &n.name, t);
    }
    s
}

fn print_table(s: &mut String, family: NftFamily, name: &str, t: &Table) {
    let _ = writeln!(s, "table {} {name} {{", family.name());
    for (i, c) in t.chains.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        print_chain(s, family, c);
    }
    s.push_str("}\n");
}

fn print_chain(s: &mut String, family: NftFamily, c: &Chain) {
    let _ = writeln!(s, "\tchain {} {{", c.name);
    if let Some(b) = &c.base {
        let policy = match c.policy {
            Some(Policy::Drop) => "drop",
            _ => "accept",
        };
        let _ = writeln!(
            s,
            "\t\ttype {} hook {} priority {}; policy {policy};",
            b.ty.name(),
            b.hook.name().to_lowercase(),
            priority_name(b)
        );
    }
    for r in &c.rules {
        s.push_str("\t\t");
        s.push_str(&rule_text(family, r));
        s.push('\n');
    }
    s.push_str("\t}\n");
}

fn priority_name(b: &BaseChain) -> String {
    const NAMES: [&str; 6] = ["raw", "mangle", "dstnat", "filter", "security", "srcnat"];
    for n in NAMES {
        if standard_priority(n, b.hook) == Some(b.priority) {
            return n.to_string();
        }
    }
    b.priority.to_string()
}

/// One rule of a table of `family` as `nft list` prints it, without indentation.
pub fn rule_text(family: NftFamily, r: &Rule) -> String {
    let default = Layout {
        family,
        items: Vec::new(),
    };
    let layout: &Layout = r.nft.as_deref().unwrap_or(&default);
    let stmts = statements(family, r);
    let mut parts: Vec<String> = Vec::new();
    let has = |it: fn(&Item) -> bool| layout.items.iter().any(it);
    // Parts of the rule its layout does not place (a mutant's), first.
    let matches: Vec<&Match> = r
        .matches
        .iter()
        .filter(|m| !matches!(m, Match::Comment(_)))
        .collect();
    if r.proto.is_some()
        && !has(|i| matches!(i, Item::Proto(_)))
        && !matches.iter().any(|m| names_protocol(r, m, false))
    {
        parts.extend(proto_text(r, ProtoWord::L4proto));
    }
    if r.in_iface.is_some() && !has(|i| matches!(i, Item::InIface { .. })) {
        parts.extend(iface_text("iifname", &r.in_iface));
    }
    if r.out_iface.is_some() && !has(|i| matches!(i, Item::OutIface { .. })) {
        parts.extend(iface_text("oifname", &r.out_iface));
    }
    if !has(|i| matches!(i, Item::Src)) {
        parts.extend(addr_text("saddr", &r.src));
    }
    if !has(|i| matches!(i, Item::Dst)) {
        parts.extend(addr_text("daddr", &r.dst));
    }
    let mut next_match = 0usize;
    let mut printed_stmts = vec![false; stmts.len()];
    let mut counter = false;
    // nft prints a comment last; a part kept verbatim takes the rest of the rule when read, so
    // the comment goes before it.
    let mut comments_done = false;
    for (k, item) in layout.items.iter().enumerate() {
        match *item {
            Item::Proto(word) => {
                if !suppressed_proto(r, layout, &matches, k) {
                    parts.extend(proto_text(r, word));
                }
            }
            Item::NfProto => {
                if let Some(f) = r.family {
                    let later_header = layout.items.get(k + 1..).is_some_and(|rest| {
                        rest.iter().any(|i| matches!(i, Item::Src | Item::Dst))
                    });
                    if !later_header {
                        parts.push(format!(
                            "meta nfproto {}",
                            if f == Family::Ipv4 { "ipv4" } else { "ipv6" }
                        ));
                    }
                }
            }
            Item::Src => parts.extend(addr_text("saddr", &r.src)),
            Item::Dst => parts.extend(addr_text("daddr", &r.dst)),
            Item::InIface { index } => parts.extend(iface_text(
                if index { "iif" } else { "iifname" },
                &r.in_iface,
            )),
            Item::OutIface { index } => parts.extend(iface_text(
                if index { "oif" } else { "oifname" },
                &r.out_iface,
            )),
            Item::Match | Item::Th => {
                if let Some(m) = matches.get(next_match) {
                    if is_verbatim_match(m) {
                        comments_before_verbatim(r, &mut parts, &mut comments_done);
                    }
                    parts.push(match_text(r, m, *item == Item::Th));
                }
                next_match += 1;
            }
            Item::Counter => {
                counter = true;
                parts.push(format!(
                    "counter packets {} bytes {}",
                    r.counters.packets, r.counters.bytes
                ));
            }
            Item::Stmt(i) => {
                if let Some(st) = stmts.get(i) {
                    if matches!(&r.target, Some(Target::Unknown { name, .. }) if name == VERBATIM) {
                        comments_before_verbatim(r, &mut parts, &mut comments_done);
                    }
                    parts.push(st.clone());
                    if let Some(p) = printed_stmts.get_mut(i) {
                        *p = true;
                    }
                }
            }
        }
    }
    for m in matches.iter().skip(next_match) {
        parts.push(match_text(r, m, false));
    }
    if r.nft.is_none() && !counter {
        parts.push(format!(
            "counter packets {} bytes {}",
            r.counters.packets, r.counters.bytes
        ));
    }
    for (i, st) in stmts.iter().enumerate() {
        if !printed_stmts.get(i).copied().unwrap_or(true) {
            parts.push(st.clone());
        }
    }
    if !comments_done {
        comments_before_verbatim(r, &mut parts, &mut comments_done);
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

fn is_verbatim_match(m: &Match) -> bool {
    matches!(m, Match::Unknown { name, .. } if name == VERBATIM)
}

/// The rule's comment, once.
fn comments_before_verbatim(r: &Rule, parts: &mut Vec<String>, done: &mut bool) {
    if *done {
        return;
    }
    *done = true;
    for m in &r.matches {
        if let Match::Comment(c) = m {
            parts.push(format!("comment \"{}\"", c.text));
        }
    }
}

/// Whether `m`, printed in `r` (with `th` when `th`), names the rule's protocol (`tcp dport …`),
/// which nft's dependency killing then leaves out of the print: a port test of TCP or UDP.
fn names_protocol(r: &Rule, m: &Match, th: bool) -> bool {
    let proto = r.proto.filter(|p| !p.negated).map(|p| p.value);
    !th && match m {
        Match::Tcp(t) => (t.sport.is_some() || t.dport.is_some()) && proto == Some(Protocol::TCP),
        Match::Udp(u) => (u.sport.is_some() || u.dport.is_some()) && proto == Some(Protocol::UDP),
        Match::Multiport(_) => proto == Some(Protocol::TCP) || proto == Some(Protocol::UDP),
        _ => false,
    }
}

/// Whether a written protocol test at layout item `at` is left out: a later match names it.
fn suppressed_proto(r: &Rule, layout: &Layout, matches: &[&Match], at: usize) -> bool {
    let mut idx = layout
        .items
        .iter()
        .take(at)
        .filter(|i| matches!(i, Item::Match | Item::Th))
        .count();
    for item in layout.items.iter().skip(at + 1) {
        if matches!(item, Item::Match | Item::Th) {
            if matches
                .get(idx)
                .is_some_and(|m| names_protocol(r, m, *item == Item::Th))
            {
                return true;
            }
            idx += 1;
        }
    }
    false
}

fn proto_text(r: &Rule, word: ProtoWord) -> Option<String> {
    let p = r.proto?;
    let w = match word {
        ProtoWord::L4proto => "meta l4proto",
        ProtoWord::IpProtocol => "ip protocol",
        ProtoWord::Ip6Nexthdr => "ip6 nexthdr",
    };
    Some(format!("{w} {}{}", ne(p.negated), protocol_name(p.value)))
}

fn ne(negated: bool) -> &'static str {
    if negated {
        "!= "
    } else {
        ""
    }
}

fn addr_text(field: &str, a: &Option<Neg<Cidr>>) -> Option<String> {
    let n = a.as_ref()?;
    let (fam, width) = match n.value.addr {
        IpAddr::V4(_) => ("ip", 32),
        IpAddr::V6(_) => ("ip6", 128),
    };
    let addr = if n.value.prefix == width {
        ip(n.value.addr)
    } else {
        format!("{}/{}", ip(n.value.addr), n.value.prefix)
    };
    Some(format!("{fam} {field} {}{addr}", ne(n.negated)))
}

fn iface_text(word: &str, i: &Option<Box<Neg<Iface>>>) -> Option<String> {
    let n = i.as_ref()?;
    let name = match n.value.0.strip_suffix('+') {
        Some(p) => format!("{p}*"),
        None => n.value.0.clone(),
    };
    Some(format!("{word} {}\"{name}\"", ne(n.negated)))
}

fn hex(v: u32) -> String {
    format!("0x{v:08x}")
}

fn mark_text(key: &str, m: &Neg<MarkMask>) -> String {
    if m.value.mask == u32::MAX {
        format!("{key} {}{}", ne(m.negated), hex(m.value.value))
    } else {
        let op = if m.negated { "!=" } else { "==" };
        format!("{key} & {} {op} {}", hex(m.value.mask), hex(m.value.value))
    }
}

fn id_text(id: &IdSpec) -> String {
    match id {
        IdSpec::Range { lo, hi } if lo == hi => lo.to_string(),
        IdSpec::Range { lo, hi } => format!("{lo}-{hi}"),
        IdSpec::Name(n) => n.clone(),
    }
}

fn match_text(r: &Rule, m: &Match, th: bool) -> String {
    let l4 = |default: &str| -> String {
        if th {
            return "th".into();
        }
        match r.proto.filter(|p| !p.negated).map(|p| p.value) {
            Some(Protocol::TCP) => "tcp".into(),
            Some(Protocol::UDP) => "udp".into(),
            _ => default.into(),
        }
    };
    let port_parts = |w: &str, sport: &Option<Neg<PortRange>>, dport: &Option<Neg<PortRange>>| {
        let mut v = Vec::new();
        for (f, p) in [("sport", sport), ("dport", dport)] {
            if let Some(p) = p {
                v.push(format!(
                    "{w} {f} {}{}",
                    ne(p.negated),
                    port_text(&p.value, '-')
                ));
            }
        }
        v.join(" ")
    };
    match m {
        // `-m tcp` without a port: the protocol alone.
        Match::Tcp(t) if t.sport.is_none() && t.dport.is_none() => "meta l4proto tcp".into(),
        Match::Udp(u) if u.sport.is_none() && u.dport.is_none() => "meta l4proto udp".into(),
        Match::Tcp(t) => port_parts("tcp", &t.sport, &t.dport),
        Match::Udp(u) => port_parts("udp", &u.sport, &u.dport),
        Match::Multiport(mp) => {
            let f = match mp.dir {
                PortDir::Source => "sport",
                PortDir::Destination | PortDir::Either => "dport",
            };
            let set: Vec<String> = mp.ports.iter().map(|p| port_text(p, '-')).collect();
            let v = match set.as_slice() {
                [one] if th => one.clone(),
                _ => format!("{{ {} }}", set.join(", ")),
            };
            format!("{} {f} {}{v}", l4("th"), ne(mp.negated))
        }
        Match::Owner(o) => {
            let mut v = Vec::new();
            if let Some(u) = &o.uid {
                v.push(format!("meta skuid {}{}", ne(u.negated), id_text(&u.value)));
            }
            if let Some(g) = &o.gid {
                v.push(format!("meta skgid {}{}", ne(g.negated), id_text(&g.value)));
            }
            v.join(" ")
        }
        Match::Mark(mm) => mark_text("meta mark", &mm.0),
        Match::Connmark(mm) => mark_text("ct mark", &mm.0),
        Match::Conntrack(ct) => states_text(&ct.ctstate),
        Match::State(st) => states_text(&st.0),
        Match::Addrtype(a) => {
            let t = a.dst.as_ref().or(a.src.as_ref());
            let dir = if a.dst.is_some() { "daddr" } else { "saddr" };
            match t {
                Some(n) => {
                    let names: Vec<&str> = n.value.iter().map(addr_type_name).collect();
                    format!("fib {dir} type {}{}", ne(n.negated), names.join(","))
                }
                None => String::new(),
            }
        }
        Match::Socket(so) => {
            let mut v = Vec::new();
            if so.transparent {
                v.push("socket transparent 1".to_string());
            }
            v.join(" ")
        }
        Match::Iprange(ir) => {
            let mut v = Vec::new();
            for (f, x) in [("saddr", &ir.src), ("daddr", &ir.dst)] {
                if let Some(n) = x {
                    let fam = if n.value.lo.is_ipv4() { "ip" } else { "ip6" };
                    let range = if n.value.lo == n.value.hi {
                        ip(n.value.lo)
                    } else {
                        format!("{}-{}", ip(n.value.lo), ip(n.value.hi))
                    };
                    v.push(format!("{fam} {f} {}{range}", ne(n.negated)));
                }
            }
            v.join(" ")
        }
        Match::Comment(c) => format!("comment \"{}\"", c.text),
        Match::Unknown { name, args } if name == VERBATIM => args.join(" "),
        other => format!("<{} not expressible in nft>", other.name()),
    }
}

fn addr_type_name(t: &AddrType) -> &'static str {
    match t {
        AddrType::Local => "local",
        AddrType::Unicast => "unicast",
        AddrType::Broadcast => "broadcast",
        AddrType::Multicast => "multicast",
        AddrType::Anycast => "anycast",
        AddrType::Blackhole => "blackhole",
        AddrType::Unreachable => "unreachable",
        AddrType::Prohibit => "prohibit",
        AddrType::Unspec => "unspec",
        AddrType::Throw => "throw",
        AddrType::Nat => "nat",
        AddrType::Xresolve => "xresolve",
    }
}

fn states_text(n: &Neg<Vec<CtState>>) -> String {
    // nft's bit order: invalid, established, related, new, untracked.
    const ORDER: [(CtState, &str); 5] = [
        (CtState::Invalid, "invalid"),
        (CtState::Established, "established"),
        (CtState::Related, "related"),
        (CtState::New, "new"),
        (CtState::Untracked, "untracked"),
    ];
    let names: Vec<&str> = ORDER
        .iter()
        .filter(|(s, _)| n.value.contains(s))
        .map(|(_, w)| *w)
        .collect();
    format!("ct state {}{}", ne(n.negated), names.join(","))
}

fn nat_text(family: NftFamily, verb: &str, to: &NatRange) -> String {
    let fam = match (family, to.addr_lo) {
        (NftFamily::Inet, Some(IpAddr::V4(_))) => " ip",
        (NftFamily::Inet, Some(IpAddr::V6(_))) => " ip6",
        _ => "",
    };
    let v6 = matches!(to.addr_lo, Some(IpAddr::V6(_)));
    let mut a = match (to.addr_lo, to.addr_hi) {
        (Some(lo), Some(hi)) => format!("{}-{}", ip(lo), ip(hi)),
        (Some(lo), None) => ip(lo),
        _ => String::new(),
    };
    if v6 && to.ports.is_some() {
        a = format!("[{a}]");
    }
    if let Some(p) = &to.ports {
        a = format!("{a}:{}", port_text(p, '-'));
    }
    format!("{verb}{fam} to {a}")
}

/// The target as nft statements, in order.
fn statements(family: NftFamily, r: &Rule) -> Vec<String> {
    let Some(t) = &r.target else {
        return Vec::new();
    };
    let one = |s: String| vec![s];
    match t {
        Target::Accept => one("accept".into()),
        Target::Drop => one("drop".into()),
        Target::Return => one("return".into()),
        Target::Jump { chain } => one(format!("jump {chain}")),
        Target::Goto { chain } => one(format!("goto {chain}")),
        Target::Reject { .. } => one("reject".into()),
        Target::Redirect { ports, .. } => one(match ports {
            Some(p) => format!("redirect to :{}", port_text(p, '-')),
            None => "redirect".into(),
        }),
        Target::Tproxy {
            on_port,
            on_ip,
            mark,
        } => {
            let fam = match (r.family, on_ip) {
                (Some(Family::Ipv6), _) | (_, Some(IpAddr::V6(_))) => "ip6",
                _ => "ip",
            };
            let to = match on_ip {
                Some(a @ IpAddr::V6(_)) => format!("[{}]:{on_port}", ip(*a)),
                Some(a) => format!("{a}:{on_port}"),
                None => format!(":{on_port}"),
            };
            let mut v = vec![format!("tproxy {fam} to {to}")];
            if mark.mask != 0 {
                v.push(set_text("meta mark", mark));
            }
            v.push("accept".into());
            v
        }
        Target::Mark(m) => one(set_text("meta mark", m)),
        Target::ConnmarkSet(m) => one(set_text("ct mark", m)),
        Target::ConnmarkSave { nfmask, ctmask } if *nfmask == u32::MAX && *ctmask == u32::MAX => {
            one("ct mark set meta mark".into())
        }
        Target::ConnmarkRestore { nfmask, ctmask }
            if *nfmask == u32::MAX && *ctmask == u32::MAX =>
        {
            one("meta mark set ct mark".into())
        }
        Target::Ct {
            notrack: false,
            zone: Some(z),
        } if z.orig.is_none() => one(format!("ct zone set {}", z.id)),
        Target::Ct {
            notrack: true,
            zone: None,
        }
        | Target::Notrack => one("notrack".into()),
        Target::Dnat { to, .. } => one(nat_text(family, "dnat", to)),
        Target::Snat { to, .. } => one(nat_text(family, "snat", to)),
        Target::Masquerade { ports, .. } => one(match ports {
            Some(p) => format!("masquerade to :{}", port_text(p, '-')),
            None => "masquerade".into(),
        }),
        Target::Log { prefix, level, .. } => {
            let mut s = "log".to_string();
            if let Some(p) = prefix {
                let _ = write!(s, " prefix \"{p}\"");
            }
            if *level != 4 {
                let names = [
                    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
                ];
                let _ = write!(
                    s,
                    " level {}",
                    names.get(usize::from(*level)).unwrap_or(&"warn")
                );
            }
            one(s)
        }
        Target::Unknown { name, args } if name == VERBATIM => one(args.join(" ")),
        other => one(format!("<{} not expressible in nft>", other.name())),
    }
}

/// `KEY set V`, or `KEY set KEY & A | V` for a masked write: `(old & !mask) ^ value`.
fn set_text(key: &str, m: &MarkMask) -> String {
    if m.mask == u32::MAX {
        return format!("{key} set {}", hex(m.value));
    }
    if m.value & !m.mask != 0 {
        // Bits both kept and flipped: not an and/or form; nft writes it with `^`.
        return format!("{key} set {key} & {} ^ {}", hex(!m.mask), hex(m.value));
    }
    format!(
        "{key} set {key} & {} | {}",
        hex(!m.mask | m.value),
        hex(m.value)
    )
}
