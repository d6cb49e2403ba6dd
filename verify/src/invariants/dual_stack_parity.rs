//! `dual-stack-parity`: a connection of one family and its counterpart in the other are
//! treated alike. The rules of a dual-stack pod come in two tables (iptables and ip6tables);
//! real meshes shipped IPv6 rules missing the inbound redirect, the include ports or the
//! include ranges (istio/istio #19940, #30868, #13980, #46625; kumahq/kuma #10799).

use ipnet::IpNet;
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{Family, Ruleset};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::pair::{Field, Pair, Relation};
use super::shared::capture_ports;
use super::{Dom, Part, Words};

/// Which address of a connection.
#[derive(Debug, Clone, Copy)]
enum End {
    Src,
    Dst,
}

/// The addresses that play a role in the pod, IPv4 with its IPv6 counterpart: the pod's
/// addresses (the n-th of one family with the n-th of the other), loopback (127.0.0.1, ::1)
/// the proxy's passthrough source, and the profile's nameservers (the n-th of one family with the
/// n-th of the other: Istio's `::127.0.0.53` is the counterpart of `127.0.0.53`, though it is no
/// loopback address). Every other non-local address is a remote one, paired by the profile's
/// ranges.
pub fn roles(pod: &Pod, p: &Profile) -> Vec<(IpAddr, IpAddr)> {
    let v4 = pod.ips.iter().filter(|a| a.is_ipv4());
    let v6 = pod.ips.iter().filter(|a| a.is_ipv6());
    let mut v: Vec<(IpAddr, IpAddr)> = v4.zip(v6).map(|(a, b)| (*a, *b)).collect();
    v.push((Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()));
    v.push((p.passthrough(Family::Ipv4), p.passthrough(Family::Ipv6)));
    let ns4 = p.nameservers.iter().filter(|a| a.is_ipv4());
    let ns6 = p.nameservers.iter().filter(|a| a.is_ipv6());
    v.extend(ns4.zip(ns6).map(|(a, b)| (*a, *b)));
    v
}

fn is<D: Dom>(d: &D, e: End, a: IpAddr) -> D::B {
    match e {
        End::Src => d.src_is(a),
        End::Dst => d.dst_in(&IpNet::from(a)),
    }
}

fn in_any<D: Dom>(d: &D, e: End, nets: &[IpNet]) -> D::B {
    match e {
        End::Src => d.src_in_any(nets),
        End::Dst => d.dst_in_any(nets),
    }
}

/// Neither local nor a role address.
fn remote<D: Dom>(d: &D, e: End, roles: &[IpAddr]) -> D::B {
    let local = match e {
        End::Src => d.src_local(),
        End::Dst => d.dst_local(),
    };
    let mut v = vec![local];
    v.extend(roles.iter().map(|r| is(d, e, *r)));
    d.not(d.or(v))
}

fn iff<D: Dom>(d: &D, x: D::B, y: D::B) -> D::B {
    d.or(vec![
        d.and(vec![x.clone(), y.clone()]),
        d.and(vec![d.not(x), d.not(y)]),
    ])
}

/// The profile's address ranges that concern an end: for the destination the outbound include
/// and exclude ranges, for the source the inbound exclude ranges.
fn ranges(p: &Profile, e: End) -> Vec<Vec<IpNet>> {
    match e {
        End::Dst => {
            let mut v = vec![p.exclude_outbound_cidrs.clone()];
            v.extend(p.outbound_cidrs.clone());
            v
        }
        End::Src => vec![p.exclude_inbound_cidrs.clone()],
    }
}

/// `a`'s address at `e` and `b`'s are counterparts: one role's two addresses, or both remote
/// and in the same ranges of the profile (per range list, in one of its IPv4 ranges iff in one
/// of its IPv6 ranges: a range given for one family only leaves its addresses without
/// counterpart, the asymmetry the profile declares).
fn counterparts<P: Pair>(pr: &P, e: End, pod: &Pod, p: &Profile) -> <P::D as Dom>::B {
    let (a, b) = (pr.a(), pr.b());
    let rs = roles(pod, p);
    let mut v: Vec<_> = rs
        .iter()
        .map(|(r4, r6)| a.and(vec![is(a, e, *r4), is(b, e, *r6)]))
        .collect();
    let r4: Vec<IpAddr> = rs.iter().map(|r| r.0).collect();
    let r6: Vec<IpAddr> = rs.iter().map(|r| r.1).collect();
    let mut rem = vec![remote(a, e, &r4), remote(b, e, &r6)];
    for nets in ranges(p, e) {
        let (n4, n6): (Vec<IpNet>, Vec<IpNet>) =
            nets.into_iter().partition(|n| matches!(n, IpNet::V4(_)));
        rem.push(iff(a, in_any(a, e, &n4), in_any(b, e, &n6)));
    }
    v.push(a.and(rem));
    a.or(v)
}

/// A connection and its counterpart in the other family have journeys of the same shape.
///
/// These assertions are unsatisfiable if and only if there is no IPv4 connection and IPv6
/// connection, alike in protocol, ports, owner, mark, interfaces and direction, whose
/// addresses are counterparts ([`roles`]; remote ones in the same ranges of the profile),
/// whose journeys differ in shape ([`crate::smt::shape`]; where a hop leaves the pod compared
/// as "to the connection's own destination" or not); connections to the proxy's capture ports
/// aside.
pub struct DualStackParity;

impl DualStackParity {
    /// The pairs it speaks about: an IPv4 connection and an IPv6 one. The proof runs it only
    /// when the ruleset has tables of both families and the pod an address of each (otherwise
    /// it is vacuous).
    pub fn premise<P: Pair>(pr: &P, _p: &Profile) -> <P::D as Dom>::B {
        let (a, b) = (pr.a(), pr.b());
        a.lit(a.family() == Family::Ipv4 && b.family() == Family::Ipv6)
    }

}

impl Relation for DualStackParity {
    const ID: &'static str = "dual-stack-parity";
    const ALSO_USES: &'static [Part] = &[Part::ExcludeInboundCidrs];
    const CROSS_FAMILY: bool = true;

    fn violation<P: Pair>(pr: &P, p: &Profile, pod: &Pod) -> <P::D as Dom>::B {
        let a = pr.a();
        a.and(vec![
            Self::premise(pr, p),
            // A journey to the proxy's capture listeners is the proxy's business.
            a.not(a.dport_in(&capture_ports(p))),
            pr.same_all(&[
                Field::Outside,
                Field::Proto,
                Field::Sport,
                Field::Dport,
                Field::Uid,
                Field::Gid,
                Field::Mark,
                Field::Ifaces,
            ]),
            counterparts(pr, End::Src, pod, p),
            counterparts(pr, End::Dst, pod, p),
            pr.differ(),
        ])
    }

    fn statement(p: &Profile, _w: &Words) -> String {
        format!(
            "an IPv4 connection and its IPv6 counterpart (the same protocol, ports, owner, mark and interfaces; addresses mapped by role: the pod's address to the pod's, 127.0.0.1 to ::1, the passthrough source {} to {}{}, a remote address to one in the same profile ranges) have journeys of the same shape (hop by hop: dropped, delivered to which port, leaving for the destination asked or elsewhere, looping); a range the profile gives for one family only is a declared asymmetry; ports {} and {} themselves aside",
            p.passthrough(Family::Ipv4),
            p.passthrough(Family::Ipv6),
            if p.nameservers.is_empty() {
                String::new()
            } else {
                format!(
                    ", the nameservers {} n-th to n-th",
                    super::shared::list(&p.nameservers)
                )
            },
            p.outbound_port,
            p.inbound_port
        )
    }

    fn vacuous(rs: &Ruleset, pod: &Pod, _p: &Profile) -> Option<String> {
        let missing: Vec<&str> = [(Family::Ipv4, "IPv4"), (Family::Ipv6, "IPv6")]
            .into_iter()
            .filter(|(f, _)| {
                rs.tables(*f).is_empty()
                    || !pod.ips.iter().any(|a| a.is_ipv4() == (*f == Family::Ipv4))
            })
            .map(|(_, n)| n)
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "vacuous: nothing to compare, {} has no tables in the ruleset or no address in the pod (--pod-ip)",
                missing.join(" and ")
            )
        })
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = vec![
            format!("passthrough_v4 = {}", p.passthrough_v4),
            format!("passthrough_v6 = {}", p.passthrough_v6),
        ];
        if !p.nameservers.is_empty() {
            v.push(format!(
                "nameservers = [{}]",
                super::shared::list(&p.nameservers)
            ));
        }
        if let Some(c) = &p.outbound_cidrs {
            v.push(format!("outbound_cidrs = [{}]", super::shared::list(c)));
        }
        if !p.exclude_outbound_cidrs.is_empty() {
            v.push(format!(
                "exclude_outbound_cidrs = [{}]",
                super::shared::list(&p.exclude_outbound_cidrs)
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::{roles, DualStackParity, Relation};
    use sidecar_model::pod::{Pod, Profile};
    use sidecar_model::{parse, DEFAULT_RULESET};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn roles_pair_the_pod_loopback_passthrough_and_nameservers() {
        let pod = Pod::new(&[ip("10.1.0.5"), ip("fd00::5")]);
        let p = Profile {
            nameservers: vec![ip("127.0.0.53"), ip("::127.0.0.53"), ip("10.96.0.10")],
            ..Profile::istio()
        };
        assert_eq!(
            roles(&pod, &p),
            [
                (ip("10.1.0.5"), ip("fd00::5")),
                (ip("127.0.0.1"), ip("::1")),
                (ip("127.0.0.6"), ip("::6")),
                (ip("127.0.0.53"), ip("::127.0.0.53")),
            ]
        );
    }

    #[test]
    fn one_family_is_nothing_to_compare() {
        let classic = parse("classic", DEFAULT_RULESET.as_bytes()).unwrap().ruleset;
        let dual = Pod::new(&[ip("10.1.0.5"), ip("fd00::5")]);
        let p = Profile::istio();
        // IPv4 tables only, whatever the pod.
        assert!(DualStackParity::vacuous(&classic, &dual, &p).is_some());
        assert!(DualStackParity::vacuous(&classic, &Pod::default(), &p).is_some());
    }
}
