//! The flows a run sends: random ones over the pod's identities, destinations and ports, and
//! the hops of given journeys; seeded by [`SplitMix`], so that a seed gives the same flows on
//! every machine.

use std::net::{IpAddr, Ipv4Addr};

use sidecar_model::pod::{Connection, Delivery, Simulator};
use sidecar_model::Family;

use super::PEER_V6;

/// A small deterministic generator (SplitMix64), so that `--seed S` gives the same flows on every
/// machine and version.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// One of `v`.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        let i = usize::try_from(self.below(v.len() as u64)).ok()?;
        v.get(i).copied()
    }
}

/// Every hop of `journeys` as a flow for the oracle, and the ports those flows need listeners on
/// (each hop's destination port and the port it was delivered to).
pub fn journey_flows<'a>(
    journeys: impl IntoIterator<Item = &'a sidecar_model::pod::Journey>,
) -> (Vec<Connection>, Vec<u16>) {
    let mut flows = Vec::new();
    let mut ports = Vec::new();
    for h in journeys.into_iter().flat_map(|j| &j.hops) {
        flows.push(h.connection());
        ports.push(h.packet.dport);
        if let Delivery::App(port) | Delivery::Listener(port) = h.delivered_to {
            ports.push(port);
        }
    }
    (flows, ports)
}

/// The ports a run listens on: the profile's, common service ports, and a few random ones.
pub fn ports(sim: &Simulator, rng: &mut SplitMix) -> Vec<u16> {
    let mut v: Vec<u16> = sim.profile.proxy_ports.clone();
    v.extend([
        22, 53, 80, 443, 8080, 15012, 32000, 31000, 4000, 5000, 6000, 7000, 1111, 2222, 3333, 4444,
        5555, 6666,
    ]);
    for _ in 0..6 {
        v.push(u16::try_from(1024 + rng.below(60000)).unwrap_or(9999));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// `n` random flows over the pod's identities, destinations and `ports`; a quarter IPv6 when
/// the pod has an IPv6 address.
pub fn random_flows(
    sim: &Simulator,
    ports: &[u16],
    n: usize,
    rng: &mut SplitMix,
) -> Vec<Connection> {
    let pod_ip4 = sim
        .pod
        .primary(Family::Ipv4)
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)));
    let pod_ip6 = sim.pod.primary(Family::Ipv6);
    let pf = &sim.profile;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let v6 = pod_ip6.filter(|_| rng.below(4) == 0);
        let pod_ip = v6.unwrap_or(pod_ip4);
        let proto = if rng.below(5) == 0 { 17 } else { 6 };
        let dport = if proto == 17 && rng.below(2) == 0 {
            53
        } else {
            rng.pick(ports).unwrap_or(80)
        };
        if rng.below(4) == 0 {
            out.push(Connection {
                proto,
                src: Some(if v6.is_some() {
                    PEER_V6
                } else {
                    pf.remote_peer
                }),
                dst: pod_ip,
                sport: 40000,
                dport,
                uid: 0,
                gid: 0,
                from_outside: true,
                mark: 0,
                iface: None,
            });
            continue;
        }
        let r = u32::try_from(rng.below(2_000_000_000)).unwrap_or(7);
        let (uid, gid) = match rng.below(7) {
            0 => (0, 0),
            1 | 2 => (pf.app_uid, pf.app_gid),
            3 => (pf.proxy_uid, pf.proxy_gid),
            4 => (1_000_670_000, pf.proxy_gid),
            5 => (pf.proxy_uid, r),
            _ => (r, r / 2),
        };
        let byte = |rng: &mut SplitMix| u8::try_from(rng.below(256)).unwrap_or(1);
        let (dst, local) = match (rng.below(5), v6) {
            (0, _) => (pod_ip, true),
            (1, None) => (IpAddr::V4(Ipv4Addr::LOCALHOST), true),
            (2, None) => (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)), true),
            (_, Some(_)) if rng.below(3) == 0 => (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), true),
            (_, Some(_)) if rng.below(3) == 0 => (PEER_V6, false),
            (_, Some(_)) => {
                let a = u16::try_from(rng.below(65536)).unwrap_or(1);
                (
                    IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, a, 0, 0, 0, 1)),
                    false,
                )
            }
            (_, None) => {
                let (a, b) = (byte(rng), byte(rng));
                let d = match rng.below(4) {
                    0 => Ipv4Addr::new(10, 1, 0, 99),
                    1 => Ipv4Addr::new(10, 96, a, b),
                    2 => Ipv4Addr::new(1, 1, a, b),
                    _ => Ipv4Addr::new(9, 9, a, b),
                };
                (IpAddr::V4(d), false)
            }
        };
        // The passthrough source is bound only for local destinations (a loopback source cannot
        // leave by eth0).
        let passthrough = if v6.is_some() {
            IpAddr::V6(pf.passthrough_v6)
        } else {
            IpAddr::V4(pf.passthrough_v4)
        };
        let src = (local && rng.below(3) == 0).then_some(passthrough);
        out.push(Connection {
            proto,
            src,
            ..Connection::tcp(dst, 40000, dport, uid, gid)
        });
    }
    out
}
