//! The vocabulary an invariant's violation is written in: facts about a connection (its first
//! hop) and its journey, in some domain of truth values. [`super::Concrete`] reads them off the
//! evaluator's journey, [`super::Symbolic`] builds them as Z3 terms.

use std::net::IpAddr;

use ipnet::IpNet;
use sidecar_model::pod::Profile;
use sidecar_model::Family;

/// Facts about a connection (its first hop) and its journey, in some domain of truth values.
pub trait Dom {
    /// A truth value.
    type B: Clone;
    /// A constant.
    fn lit(&self, b: bool) -> Self::B;
    /// Conjunction.
    fn and(&self, v: Vec<Self::B>) -> Self::B;
    /// Disjunction.
    fn or(&self, v: Vec<Self::B>) -> Self::B;
    /// Negation.
    fn not(&self, b: Self::B) -> Self::B;
    /// The family of the connection.
    fn family(&self) -> Family;
    /// It arrives from outside (on eth0) instead of being opened here.
    fn outside(&self) -> Self::B;
    /// It is TCP.
    fn tcp(&self) -> Self::B;
    /// It is UDP.
    fn udp(&self) -> Self::B;
    /// The opening process's uid is `v`.
    fn uid_is(&self, v: u32) -> Self::B;
    /// The opening process's gid is `v`.
    fn gid_is(&self, v: u32) -> Self::B;
    /// The source address is `a`.
    fn src_is(&self, a: IpAddr) -> Self::B;
    /// The source lies in `net`.
    fn src_in(&self, net: &IpNet) -> Self::B;
    /// The first packet's mark, masked with `mask`, equals `value & mask`.
    fn mark_is(&self, value: u32, mask: u32) -> Self::B;
    /// It arrives from outside on the interface `name`.
    fn in_iface(&self, name: &str) -> Self::B;
    /// The destination lies in `net`.
    fn dst_in(&self, net: &IpNet) -> Self::B;
    /// The destination is the pod's (loopback or a pod IP).
    fn dst_local(&self) -> Self::B;
    /// The destination is in the loopback range.
    fn dst_loopback(&self) -> Self::B;
    /// The source is the pod's (loopback or a pod IP).
    fn src_local(&self) -> Self::B;
    /// The destination port is `p`.
    fn dport_is(&self, p: u16) -> Self::B;
    /// The first packet leaves by lo.
    fn out_lo(&self) -> Self::B;
    /// The first hop was translated or taken by TPROXY (and not dropped).
    fn redirected(&self) -> Self::B;
    /// The first hop was delivered in the pod to `port`.
    fn delivered(&self, port: u16) -> Self::B;
    /// The journey loops (a hop state repeats, or the hop bound is passed).
    fn loops(&self) -> Self::B;
    /// Exactly `n` hops of the journey reach the proxy listener `port`.
    fn passes(&self, port: u16, n: u8) -> Self::B;

    /// The destination is one of the pod's IPs (local, not in the loopback range).
    fn dst_pod_ip(&self) -> Self::B {
        self.and(vec![self.dst_local(), self.not(self.dst_loopback())])
    }
    /// The destination port is one of `ports`.
    fn dport_in(&self, ports: &[u16]) -> Self::B {
        self.or(ports.iter().map(|p| self.dport_is(*p)).collect())
    }
    /// The destination lies in one of `nets`.
    fn dst_in_any(&self, nets: &[IpNet]) -> Self::B {
        self.or(nets.iter().map(|n| self.dst_in(n)).collect())
    }
    /// The source lies in one of `nets`.
    fn src_in_any(&self, nets: &[IpNet]) -> Self::B {
        self.or(nets.iter().map(|n| self.src_in(n)).collect())
    }
    /// The opening process's gid is one of `gids`.
    fn gid_in(&self, gids: &[u32]) -> Self::B {
        self.or(gids.iter().map(|g| self.gid_is(*g)).collect())
    }
    /// It arrives from outside on one of the profile's virtual interfaces.
    fn virtual_in(&self, p: &Profile) -> Self::B {
        self.and(vec![
            self.outside(),
            self.or(p
                .virtual_interfaces
                .iter()
                .map(|i| self.in_iface(i))
                .collect()),
        ])
    }
    /// The connection is the proxy's: opened with one of the credentials the profile
    /// identifies the proxy by ([`Profile::identity`]: any of its uids, any of its gids, its
    /// mark), and nothing else.
    fn proxy(&self, p: &Profile) -> Self::B {
        let id = p.identity();
        self.or(id
            .uids
            .iter()
            .map(|u| self.uid_is(*u))
            .chain(id.gids.iter().map(|g| self.gid_is(*g)))
            .chain(id.mark.map(|(m, k)| self.mark_is(m, k)))
            .collect())
    }
}
