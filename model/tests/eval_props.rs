//! Properties of the concrete evaluator:
//!
//! * it agrees with an independent, textbook recursive evaluator written here (hits, verdict and
//!   the packet's final state), on random valid rulesets and on the corpus;
//! * the traced and the fast path agree, and evaluation is deterministic;
//! * trace consistency: every hit's matches hold for the packet as it was at that moment, every
//!   rule tried and skipped does not match, and within a chain the rules are tried in order;
//! * it terminates without using the thread's stack on 10,000 nested chains.

#![cfg(test)]

mod common;

use std::net::IpAddr;

use proptest::prelude::*;
use sidecar_model::eval::{
    ConnState, Engine, Hit, HookVerdict, IfName, NoTrace, Observer, Packet, Scratch, Trace,
};
use sidecar_model::gen::strategy::{cases, config, ruleset_strategy};
use sidecar_model::gen::CONN_STATES;
use sidecar_model::*;

// ----- an independent reference: recursion, goto as a tail call -----

enum ChainEnd {
    /// Fell off the end or RETURN: back to the caller.
    Fallthrough,
    /// ACCEPT, or a terminal nat/TPROXY target: the table is done, the packet goes on.
    Accept,
    Drop,
    Reject,
}

struct Reference<'a> {
    engine: &'a Engine,
    table: &'a Table,
    hits: Vec<Hit>,
}

impl Reference<'_> {
    fn chain(&mut self, ci: usize, hook: Hook, p: &mut Packet, depth: usize) -> ChainEnd {
        assert!(depth < 1000, "reference recursion too deep");
        let chain = &self.table.chains[ci];
        for (ri, rule) in chain.rules.iter().enumerate() {
            if self.engine.rule_matches(rule, p, hook) != Some(true) {
                continue;
            }
            self.hits.push(Hit {
                table: self.table.kind,
                part: 0,
                chain: ci as u32,
                rule: ri as u32,
            });
            let Some(t) = &rule.target else { continue };
            match t {
                Target::Accept => return ChainEnd::Accept,
                Target::Drop => return ChainEnd::Drop,
                Target::Reject { .. } => return ChainEnd::Reject,
                Target::Return => return ChainEnd::Fallthrough,
                Target::Jump { chain } => {
                    let to = self.table.chain_index(chain).unwrap();
                    match self.chain(to, hook, p, depth + 1) {
                        ChainEnd::Fallthrough => {}
                        other => return other,
                    }
                }
                Target::Goto { chain } => {
                    let to = self.table.chain_index(chain).unwrap();
                    return self.chain(to, hook, p, depth + 1);
                }
                Target::Mark(m) => p.mark = (p.mark & !m.mask) ^ m.value,
                Target::ConnmarkSet(m) => p.ctmark = (p.ctmark & !m.mask) ^ m.value,
                Target::ConnmarkSave { nfmask, ctmask } => {
                    p.ctmark = (p.ctmark & !ctmask) ^ (p.mark & nfmask)
                }
                Target::ConnmarkRestore { nfmask, ctmask } => {
                    p.mark = (p.mark & !nfmask) ^ (p.ctmark & ctmask)
                }
                Target::Ct { notrack: true, .. } | Target::Notrack => {
                    p.ctstate = ConnState::Untracked
                }
                Target::Redirect { ports, .. } => {
                    // These engines know no pod address, so an incoming interface's primary address
                    // is unknown and REDIRECT falls back to loopback, as for local packets.
                    p.dst = if p.dst.is_ipv4() {
                        "127.0.0.1".parse().unwrap()
                    } else {
                        "::1".parse().unwrap()
                    };
                    if let Some(r) = ports {
                        p.dport = r.lo;
                    }
                    p.dnat_done = true;
                    return ChainEnd::Accept;
                }
                Target::Dnat { to, .. } => {
                    nat_to(to, &mut p.dst, &mut p.dport);
                    p.dnat_done = true;
                    return ChainEnd::Accept;
                }
                Target::Snat { to, .. } => {
                    nat_to(to, &mut p.src, &mut p.sport);
                    p.snat_done = true;
                    return ChainEnd::Accept;
                }
                Target::Masquerade { ports, .. } => {
                    if let Some(r) = ports {
                        p.sport = r.lo;
                    }
                    p.snat_done = true;
                    return ChainEnd::Accept;
                }
                Target::Tproxy { mark, .. } => {
                    p.mark = (p.mark & !mark.mask) ^ mark.value;
                    return ChainEnd::Accept;
                }
                Target::Ct { .. }
                | Target::Log { .. }
                | Target::Nflog { .. }
                | Target::Unknown { .. } => {}
            }
        }
        ChainEnd::Fallthrough
    }
}

/// DNAT or SNAT to the first address and port of `to`, each only when given.
fn nat_to(to: &NatRange, addr: &mut IpAddr, port: &mut u16) {
    if let Some(a) = to.addr_lo {
        *addr = a;
    }
    if let Some(r) = to.ports {
        *port = r.lo;
    }
}

/// The reference's run of a whole hook.
fn reference_hook(engine: &Engine, hook: Hook, p: &mut Packet) -> (HookVerdict, Vec<Hit>) {
    let mut hits = Vec::new();
    for &kind in sidecar_model::eval::hook_tables(hook) {
        // nat sees a connection's first packet, and only while some rule turns conntrack on.
        if kind == TableKind::Nat
            && (p.ctstate != ConnState::New
                || !sidecar_model::eval::conntrack_active(engine.ruleset(), p.family()))
        {
            continue;
        }
        let Some(table) = engine.table(p.family(), kind) else {
            continue;
        };
        let Some(start) = table
            .chains
            .iter()
            .position(|c| c.is_builtin() && c.name == hook.name())
        else {
            continue;
        };
        let mut r = Reference {
            engine,
            table,
            hits: Vec::new(),
        };
        let end = r.chain(start, hook, p, 0);
        hits.extend(r.hits);
        match end {
            ChainEnd::Drop => return (HookVerdict::Drop, hits),
            ChainEnd::Reject => return (HookVerdict::Reject, hits),
            ChainEnd::Accept => {}
            ChainEnd::Fallthrough => {
                if table.chains[start].policy == Some(Policy::Drop) {
                    return (HookVerdict::Drop, hits);
                }
            }
        }
    }
    (HookVerdict::Accept, hits)
}

// ----- packets -----

fn packet_strategy(family: Family) -> impl Strategy<Value = (Hook, Packet)> {
    let addrs4 = [
        "10.1.0.5",
        "127.0.0.1",
        "127.0.0.6",
        "10.1.0.99",
        "10.96.0.1",
        "1.1.1.1",
        "9.9.1.1",
        "169.254.7.127",
    ];
    let addrs6 = [
        "fd00::5",
        "::1",
        "::6",
        "fd00::99",
        "2001:db8::1",
        "e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164",
    ];
    let pool: Vec<IpAddr> = match family {
        Family::Ipv4 => addrs4.iter().map(|a| a.parse().unwrap()).collect(),
        Family::Ipv6 => addrs6.iter().map(|a| a.parse().unwrap()).collect(),
    };
    let ports = [
        15001u16, 15006, 15008, 15090, 15020, 15021, 53, 80, 22, 8080, 32000,
    ];
    let ids = [0u32, 1000, 1337, 1_000_670_000, 3, 4];
    (
        any::<[u32; 12]>(),
        prop::sample::select(pool.clone()),
        prop::sample::select(pool),
    )
        .prop_map(move |(s, src, dst)| {
            let hook = [
                Hook::Prerouting,
                Hook::Input,
                Hook::Output,
                Hook::Postrouting,
                Hook::Forward,
            ][s[0] as usize % 5];
            let local = matches!(hook, Hook::Output | Hook::Postrouting);
            let mut p = Packet::tcp_out(
                src,
                dst,
                if s[1] % 2 == 0 {
                    ports[s[2] as usize % ports.len()]
                } else {
                    s[2] as u16
                },
                if s[3] % 3 != 0 {
                    ports[s[4] as usize % ports.len()]
                } else {
                    s[4] as u16
                },
                ids[s[5] as usize % ids.len()],
                ids[s[6] as usize % ids.len()],
            );
            p.proto = [6u8, 6, 17, 1][s[7] as usize % 4];
            p.has_socket = local && s[8] % 5 != 0;
            let ifaces = ["lo", "eth0", "eth1", "not-istio-nic"];
            if matches!(hook, Hook::Prerouting | Hook::Input | Hook::Forward) {
                p.in_iface = Some(IfName::new(ifaces[s[9] as usize % 4]));
            }
            if matches!(hook, Hook::Output | Hook::Postrouting | Hook::Forward) {
                p.out_iface = Some(IfName::new(ifaces[(s[9] >> 4) as usize % 4]));
            }
            p.mark = [0, 0x539, 0x53a, 0x111, s[10]][s[10] as usize % 5];
            p.ctmark = [0, 0x539, 0x111, s[11]][s[11] as usize % 4];
            p.ctstate = CONN_STATES[(s[11] >> 8) as usize % 4];
            p.tcp_flags = if p.proto == 6 {
                (s[10] >> 8) as u8 & 0x3f
            } else {
                0
            };
            (hook, p)
        })
}

/// Records every rule tried, with the packet as it was.
#[derive(Default)]
struct Checker {
    hits: Vec<Hit>,
    tried: Vec<(Hit, Packet, Option<bool>)>,
}

impl Observer for Checker {
    fn hit(&mut self, hit: Hit) {
        self.hits.push(hit);
    }
    fn undecided(&mut self, _: Hit) {}
    fn tried(&mut self, hit: Hit, pkt: &Packet, matched: Option<bool>) {
        self.tried.push((hit, *pkt, matched));
    }
}

fn check_one(rs: &Ruleset, engine: &Engine, hook: Hook, p0: Packet) -> Result<(), TestCaseError> {
    let mut scratch = Scratch::default();
    // Traced.
    let mut p1 = p0;
    let mut trace = Trace::default();
    let r1 = engine.run_hook(hook, &mut p1, &mut scratch, &mut trace);
    // Fast path, and again (determinism).
    let mut p2 = p0;
    let r2 = engine.run_hook(hook, &mut p2, &mut scratch, &mut NoTrace);
    let mut p3 = p0;
    let mut trace3 = Trace::default();
    let r3 = engine.run_hook(hook, &mut p3, &mut Scratch::default(), &mut trace3);
    prop_assert_eq!(r1, r2);
    prop_assert_eq!(p1, p2);
    prop_assert_eq!(r1, r3);
    prop_assert_eq!(&trace, &trace3);
    // The reference (only where every match is decidable: it treats undecided as no match too).
    let mut p4 = p0;
    let (v4, hits4) = reference_hook(engine, hook, &mut p4);
    prop_assert_eq!(r1.0, v4, "verdict differs from the reference");
    prop_assert_eq!(&trace.hits, &hits4, "hits differ from the reference");
    prop_assert_eq!(p1, p4, "final packet differs from the reference");
    // Consistency of what was tried.
    let mut c = Checker::default();
    let mut p5 = p0;
    engine.run_hook(hook, &mut p5, &mut scratch, &mut c);
    prop_assert_eq!(&c.hits, &trace.hits);
    let mut prev: Option<Hit> = None;
    for (h, pkt, m) in &c.tried {
        let table = engine.table_at(pkt.family(), h.table, h.part).unwrap();
        let rule = &table.chains[h.chain as usize].rules[h.rule as usize];
        prop_assert_eq!(engine.rule_matches(rule, pkt, hook), *m);
        if let Some(pr) = prev {
            // Same table and chain: the next rule, unless the previous one was a hit that
            // jumped, returned or ended the chain.
            if (pr.table, pr.part, pr.chain) == (h.table, h.part, h.chain) && h.rule != pr.rule + 1
            {
                let was_hit = c.hits.contains(&pr);
                prop_assert!(
                    was_hit,
                    "rule {} of chain {} skipped without a hit before it",
                    pr.rule + 1,
                    h.chain
                );
            }
        }
        prev = Some(*h);
    }
    // Every hit was tried and matched.
    for h in &trace.hits {
        prop_assert!(c.tried.iter().any(|(t, _, m)| t == h && *m == Some(true)));
    }
    let _ = rs;
    Ok(())
}

fn corpus() -> Vec<Ruleset> {
    let root = common::workspace().join("corpus");
    let mut v = Vec::new();
    for f in [
        "istio-classic.rules",
        "rulesets/mixed-features.rules",
        "rulesets/mixed-features-ipv6.rules",
    ] {
        v.push(
            parse(f, &std::fs::read(root.join(f)).unwrap())
                .unwrap()
                .ruleset,
        );
    }
    let istio = common::istio_dir().map(|d| d.join("tools/istio-iptables/pkg/capture/testdata"));
    if let Some(Ok(dir)) = istio.map(std::fs::read_dir) {
        for e in dir.flatten() {
            if let Ok(p) = parse("istio", &std::fs::read(e.path()).unwrap()) {
                v.push(p.ruleset);
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(config(cases(512)))]

    #[test]
    fn random_rulesets_agree_with_reference(rs in ruleset_strategy(5, 8), pkts in prop::collection::vec(packet_strategy(Family::Ipv4), 1..8), pkts6 in prop::collection::vec(packet_strategy(Family::Ipv6), 1..4)) {
        let engine = Engine::new(&rs.0);
        for (hook, p) in pkts.into_iter().chain(pkts6) {
            check_one(&rs.0, &engine, hook, p)?;
        }
    }

    #[test]
    fn corpus_rulesets_agree_with_reference(idx in any::<prop::sample::Index>(), pkts in prop::collection::vec(packet_strategy(Family::Ipv4), 1..16), pkts6 in prop::collection::vec(packet_strategy(Family::Ipv6), 1..8)) {
        thread_local!(static CORPUS: Vec<(Ruleset, Engine)> = corpus().into_iter().map(|r| { let e = Engine::new(&r); (r, e) }).collect());
        CORPUS.with(|c| {
            let (rs, engine) = &c[idx.index(c.len())];
            for (hook, p) in pkts.iter().chain(&pkts6) {
                check_one(rs, engine, *hook, *p)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// 10,000 user chains, each jumping to the next, the last one redirecting: evaluated on a
/// thread with a 64 KiB stack, it must finish with all 10,001 hits (no recursion on depth).
#[test]
fn deep_chains_do_not_use_the_stack() {
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    let n = 10_000;
    for i in 0..n {
        text.push_str(&format!(":C{i:05} - [0:0]\n"));
    }
    // The kernel refuses a line of jumps more than 15 deep below a built-in chain, and so does
    // the parser (validate::MAX_CHAIN_LEVEL): parse the line unreached, then add OUTPUT's jump
    // to the model, as a generated ruleset could have it.
    for i in 0..n - 1 {
        text.push_str(&format!("-A C{i:05} -p tcp -j C{:05}\n", i + 1));
        text.push_str(&format!("-A C{i:05} -j RETURN\n"));
    }
    text.push_str(&format!(
        "-A C{:05} -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n",
        n - 1
    ));
    let mut rs = parse("deep", text.as_bytes()).unwrap().ruleset;
    let entry = parse(
        "entry",
        b"*nat\n:C00000 - [0:0]\n-A OUTPUT -j C00000\nCOMMIT\n",
    )
    .unwrap()
    .ruleset;
    let jump = entry.ipv4[0]
        .chains
        .iter()
        .find(|c| c.name == "OUTPUT")
        .unwrap()
        .rules[0]
        .clone();
    rs.ipv4[0]
        .chains
        .iter_mut()
        .find(|c| c.name == "OUTPUT")
        .unwrap()
        .rules
        .push(jump);
    let handle = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let engine = Engine::new(&rs);
            let mut p = common::app_to_remote();
            let mut t = Trace::default();
            let (v, fx) = engine.run_hook(Hook::Output, &mut p, &mut Scratch::default(), &mut t);
            // UDP takes the RETURN in every chain on the way back up.
            let mut u = Packet { proto: 17, ..p };
            u.dst = "10.1.0.99".parse().unwrap();
            u.dport = 80;
            let mut tu = Trace::default();
            engine.run_hook(Hook::Output, &mut u, &mut Scratch::default(), &mut tu);
            (v, fx.dnat, t.hits.len(), p.dport, tu.hits.len())
        })
        .unwrap();
    let (v, dnat, hits, dport, udp_hits) = handle.join().unwrap();
    assert_eq!(v, HookVerdict::Accept);
    assert!(dnat);
    assert_eq!(dport, 15001);
    assert_eq!(hits, n + 1);
    // OUTPUT's jump, then C00000's RETURN (UDP does not take the -p tcp jump).
    assert_eq!(udp_hits, 2);
}

/// Goto: RETURN from a chain entered by goto goes back to the caller of the chain that did the
/// goto (here the built-in chain, whose policy then applies).
#[test]
fn goto_returns_to_the_caller_of_the_goto_chain() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n\
-A OUTPUT -j A\n-A OUTPUT -p tcp -j ACCEPT\n-A A -g B\n-A A -j ACCEPT\n-A B -j RETURN\nCOMMIT\n";
    let rs = parse("goto", text.as_bytes()).unwrap().ruleset;
    let engine = Engine::new(&rs);
    let tcp = common::app_to_remote();
    let mut p = tcp;
    let mut t = Trace::default();
    let (v, _) = engine.run_hook(Hook::Output, &mut p, &mut Scratch::default(), &mut t);
    // OUTPUT 1 (-j A), A 1 (-g B), B 1 (RETURN) -> back in OUTPUT at rule 2 (ACCEPT), not A 2.
    assert_eq!(v, HookVerdict::Accept);
    let rules: Vec<(u32, u32)> = t.hits.iter().map(|h| (h.chain, h.rule)).collect();
    let a = rs.ipv4[0].chain_index("A").unwrap() as u32;
    let b = rs.ipv4[0].chain_index("B").unwrap() as u32;
    let out = rs.ipv4[0].chain_index("OUTPUT").unwrap() as u32;
    assert_eq!(rules, vec![(out, 0), (a, 0), (b, 0), (out, 1)]);
    // UDP: back in OUTPUT rule 2 does not match, so the DROP policy applies.
    let mut u = Packet { proto: 17, ..tcp };
    let (v, _) = engine.run_hook(Hook::Output, &mut u, &mut Scratch::default(), &mut NoTrace);
    assert_eq!(v, HookVerdict::Drop);
}

proptest! {
    #![proptest_config(config(cases(512) / 4))]

    /// Many user chains jumping forward (up to 60 deep): evaluation ends, traced and fast agree.
    #[test]
    fn random_deep_rulesets_terminate(rs in ruleset_strategy(60, 3), pkts in prop::collection::vec(packet_strategy(Family::Ipv4), 1..4)) {
        let engine = Engine::new(&rs.0);
        for (hook, p) in pkts {
            check_one(&rs.0, &engine, hook, p)?;
        }
    }
}
