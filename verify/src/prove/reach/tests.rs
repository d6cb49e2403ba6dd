//! The reachability of [`super::reachability`] against the plain definition: one query per
//! rule, in each scope, as `check` asked before (quadratic, so only on the corpus).

use std::path::Path;

use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::{parse, Family, Ruleset};
use z3::ast::Bool;
use z3::SatResult;

use crate::results::check::RuleStatus;
use crate::smt::solve::{query, solver};
use crate::smt::{any, Encoder, SymPacket};

/// Each rule's status, one query per rule and scope.
fn per_rule(rs: &Ruleset, fam: Family, pod: &Pod, profile: &Profile) -> Vec<RuleStatus> {
    let mut enc = Encoder::new(rs, fam, pod, profile).unwrap();
    let first = SymPacket::fresh("c", enc.width);
    let c_out = Bool::new_const("c_outside");
    let journey = enc.journey(&first, &c_out).unwrap();
    let routed = solver(30_000);
    routed.assert(enc.scope(&first, &c_out, true));
    let p = SymPacket::fresh("any", enc.width);
    let outside = Bool::new_const("any_outside");
    let hop = enc.hop(&p, &outside, true).unwrap();
    let s = solver(30_000);
    s.assert(super::any_packet(&enc, &p, &outside));
    let routed_hits = &journey.hops[0].hits;
    let mut out = Vec::new();
    for (ti, t) in rs.tables(fam).iter().enumerate() {
        let part = rs.part_of(fam, ti);
        for (ci, c) in t.chains.iter().enumerate() {
            for ri in 0..c.rules.len() {
                let id = crate::smt::RuleId {
                    table: t.kind,
                    part,
                    chain: ci,
                    rule: ri,
                };
                let of = |hits: &[crate::smt::SymHit], reach: bool| {
                    any(&hits
                        .iter()
                        .filter(|h| h.id == id)
                        .map(|h| {
                            if reach {
                                h.reach.clone()
                            } else {
                                h.fires.clone()
                            }
                        })
                        .collect::<Vec<_>>())
                };
                let st = if !hop.hits.iter().any(|h| h.id == id) {
                    RuleStatus::Unreachable
                } else if query(&routed, &of(routed_hits, false)).0 == SatResult::Sat {
                    RuleStatus::Live
                } else if query(&s, &of(&hop.hits, false)).0 == SatResult::Sat {
                    RuleStatus::Unroutable
                } else if query(&s, &of(&hop.hits, true)).0 == SatResult::Sat {
                    RuleStatus::Shadowed
                } else {
                    RuleStatus::Unreachable
                };
                out.push(st);
            }
        }
    }
    out
}

/// Every ruleset of the corpus that parses, with its path, in path order.
fn corpus() -> Vec<(std::path::PathBuf, Ruleset)> {
    let mut files = Vec::new();
    rules_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus"),
        &mut files,
    );
    files.sort();
    files
        .into_iter()
        .filter_map(|f| {
            let bytes = std::fs::read(&f).ok()?;
            let rs = parse(&f.display().to_string(), &bytes).ok()?.ruleset;
            Some((f, rs))
        })
        .collect()
}

fn rules_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rules_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rules") {
            out.push(p);
        }
    }
}

/// Every rule of every ruleset of the corpus gets the status one query per rule gives it
/// (under each ruleset's profile when its TOML names one, else istio's).
#[test]
fn seeds_and_grouped_queries_agree_with_one_query_per_rule() {
    let rulesets = corpus();
    assert!(rulesets.len() >= 20, "{} rulesets", rulesets.len());
    let mut compared = 0;
    for (f, rs) in rulesets {
        let profile = std::fs::read_to_string(f.with_extension("toml"))
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("profile").cloned())
            .map_or_else(Profile::istio, |v| {
                Profile::from_toml(&toml::to_string(&v).unwrap()).unwrap()
            });
        let rs = profile.resolve_names(&rs).into_owned();
        let pod = Pod::for_rulesets(&[], &[&rs]);
        let sim = Simulator::new(&rs, pod.clone(), profile.clone());
        for fam in pod.families() {
            let want = per_rule(&rs, fam, &pod, &profile);
            let mut enc = Encoder::new(&rs, fam, &pod, &profile).unwrap();
            let first = SymPacket::fresh("c", enc.width);
            let c_out = Bool::new_const("c_outside");
            let journey = enc.journey(&first, &c_out).unwrap();
            let routed = solver(30_000);
            routed.assert(enc.scope(&first, &c_out, true));
            let hits = journey.hops[0].hits.clone();
            let got = super::reachability(
                &rs,
                fam,
                &mut enc,
                &routed,
                &hits,
                &sim,
                &crate::prove::Options::default(),
            )
            .unwrap();
            let got: Vec<RuleStatus> = got.iter().map(|r| r.status).collect();
            assert_eq!(got, want, "{} {fam:?}", f.display());
            compared += got.len();
        }
    }
    assert!(compared > 500, "{compared} rules compared");
}

/// No journey of the corpus reaches a fifth hop (index 4) when unrolled to the profile's bound:
/// the journey's state repeats by hop 3 ([`crate::smt::encode::journey::REPEAT_BY`]), so the
/// shorter unrolling the proofs use loses nothing.
#[test]
fn journeys_never_need_a_fifth_hop() {
    let mut asked = 0;
    for (f, rs) in corpus() {
        let pod = Pod::for_rulesets(&[], &[&rs]);
        for profile in [Profile::istio(), Profile::ambient(), Profile::linkerd()] {
            for fam in pod.families() {
                let mut enc = Encoder::new(&rs, fam, &pod, &profile).unwrap();
                let first = SymPacket::fresh("c", enc.width);
                let out = Bool::new_const("c_outside");
                let j = enc.journey_within(&first, &out, usize::MAX).unwrap();
                assert!(
                    j.exists.len() > 4,
                    "{}: unrolled to {}",
                    f.display(),
                    j.exists.len()
                );
                let s = solver(30_000);
                s.assert(enc.scope(&first, &out, false));
                assert_eq!(
                    query(&s, &j.exists[4]).0,
                    SatResult::Unsat,
                    "{} {fam:?} {}: a journey reaches hop 4",
                    f.display(),
                    profile.name
                );
                asked += 1;
            }
        }
    }
    assert!(asked > 60, "{asked}");
}

/// [`super::routable`], the scope in Rust that decides whether a seed proves a rule live, says
/// of every packet of a grid (protocols, addresses of every role, interfaces, owners, marks,
/// conntrack states, flags; generated here and from outside; with and without routing) what
/// the encoding's scope says of it, under a profile identified by owner and one by mark.
#[test]
fn routable_is_the_encodings_scope() {
    use sidecar_model::eval::{ConnState, IfName, Packet};
    use std::net::{IpAddr, Ipv4Addr};
    let rs = parse("classic", sidecar_model::DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let ip = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let ip6 = |s: &str| s.parse::<IpAddr>().unwrap();
    let pod = Pod::new(&[ip(10, 1, 0, 5), ip6("fd00::5")]);
    let grids = [
        (
            Family::Ipv4,
            [
                ip(10, 1, 0, 5),
                ip(127, 0, 0, 1),
                ip(127, 0, 0, 6),
                ip(127, 0, 0, 9),
                ip(10, 1, 0, 99),
            ],
        ),
        (
            Family::Ipv6,
            [
                ip6("fd00::5"),
                ip6("::1"),
                ip6("::6"),
                ip6("fd00::7"),
                ip6("fd00::99"),
            ],
        ),
    ];
    let ifaces: [Option<&str>; 3] = [None, Some("eth0"), Some("lo")];
    let m = z3::Model::new();
    let mut agreed = 0;
    for ((fam, addrs), profile) in grids
        .into_iter()
        .flat_map(|g| [(g, Profile::istio()), (g, Profile::ambient())])
    {
        let enc = Encoder::new(&rs, fam, &pod, &profile).unwrap();
        for proto in [6u8, 17, 1] {
            for src in addrs {
                for dst in addrs {
                    for iif in ifaces {
                        for oif in ifaces {
                            for (uid, mark, socket) in
                                [(0, 0, false), (1000, 0, true), (1337, 0x539, true)]
                            {
                                for (ct, flags) in [
                                    (ConnState::New, 2u8),
                                    (ConnState::New, 0),
                                    (ConnState::Established, 2),
                                ] {
                                    let mut p = Packet::tcp_out(src, dst, 40000, 80, uid, uid);
                                    p.proto = proto;
                                    p.in_iface = iif.map(IfName::new);
                                    p.out_iface = oif.map(IfName::new);
                                    p.has_socket = socket;
                                    p.mark = mark;
                                    p.ctstate = ct;
                                    p.tcp_flags = flags;
                                    let sym = SymPacket::concrete(&p, &enc.ifaces, enc.width);
                                    for outside in [false, true] {
                                        for routing in [false, true] {
                                            let want = crate::smt::truth(
                                                &m,
                                                &enc.scope(
                                                    &sym,
                                                    &Bool::from_bool(outside),
                                                    routing,
                                                ),
                                            );
                                            let got = super::routable(
                                                &p, outside, &pod, &profile, fam, routing,
                                            );
                                            assert_eq!(
                                                got, want,
                                                "{} outside={outside} routing={routing} {p:?}",
                                                profile.name
                                            );
                                            agreed += usize::from(want);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(agreed > 100, "{agreed} packets in scope");
}

/// kube-proxy reaches its node ports through `-m addrtype --dst-type LOCAL`: the seeds of a
/// node port's rule include the application's connection to the pod's own address, a routable
/// one (without it each node port was left to a solver query: 5.9 s of 8.6 at 100 services).
#[test]
fn a_node_port_is_seeded_from_the_pods_own_address() {
    use sidecar_model::eval::Packet;
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:NODEPORTS - [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j NODEPORTS\n-A NODEPORTS -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.244.0.9:80\nCOMMIT\n";
    let rs = parse("node-port", text.as_bytes()).unwrap().ruleset;
    let pod = Pod::default();
    let profile = Profile::istio();
    let sim = Simulator::new(&rs, pod.clone(), profile.clone());
    let fam = Family::Ipv4;
    let rules = super::Rules::new(&rs, fam);
    let callers = super::callers(&rs, fam, &rules);
    let k = (0..rules.ids.len())
        .find(|&k| {
            rules
                .at
                .get(k)
                .is_some_and(|&(ti, ci)| rs.tables(fam)[ti].chains[ci].name == "NODEPORTS")
        })
        .unwrap();
    let path = super::path_to(&rs, fam, &rules, &callers, k).unwrap();
    let seeds = super::seeds(&rs, fam, &sim, &rules, &path, true);
    let to_pod = |p: &Packet| Some(p.dst) == pod.primary(fam) && p.dport == 30080;
    assert!(
        seeds
            .iter()
            .any(|(hook, p, routable)| *hook == sidecar_model::Hook::Output
                && to_pod(p)
                && *routable),
        "{seeds:?}"
    );
}
