//! What several invariants share: the conditions their violations are built from (who the proxy
//! is, what counts as inbound, the preconditions of capture), the words their statements give
//! the profile's values, and the profile values they may use.

use sidecar_model::pod::{Credential, InboundSource, Profile};

use super::Dom;

/// `a, b, c`, or `none`.
pub fn list<T: std::fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`list`], or `all` when the profile gives no list.
pub fn opt_list<T: std::fmt::Display>(v: &Option<Vec<T>>) -> String {
    v.as_ref().map_or_else(|| "all".into(), |v| list(v))
}

/// The conditions over a connection that several violations are built from, each built once per
/// violation, in the order [`Conditions::new`] gives.
///
/// The fields are declared in the reverse of that order: they are dropped in declaration order,
/// so that the Z3 terms no violation keeps are released in the same order as when they were the
/// locals of one function (the solver's choices may depend on the terms' ids).
pub struct Conditions<B> {
    /// A non-proxy TCP connection leaving the pod that outbound capture concerns: opened here
    /// by a process in the profile's groups, or arriving on a virtual interface, to a
    /// non-local destination whose port and address the profile does not exclude (a DNS query
    /// the proxy's DNS listener takes aside).
    pub outbound_pre: B,
    /// A DNS query the profile lets the proxy's DNS listener take (false without DNS capture).
    pub dns_ok: B,
    /// A TCP connection from outside to the pod that inbound capture concerns: a source and a
    /// port the profile does not exclude.
    pub inbound_pre: B,
    /// From outside on an interface of the pod's own (not a VM's).
    pub inbound: B,
    /// Opened in the pod.
    pub local: B,
    /// Opened by anyone but the proxy.
    pub non_proxy: B,
    /// Opened by the proxy ([`Dom::proxy`]).
    pub proxy: B,
}

impl<B: Clone> Conditions<B> {
    /// The conditions over `d` with the profile's values.
    pub fn new<D: Dom<B = B>>(d: &D, p: &Profile) -> Conditions<B> {
        let proxy = d.proxy(p);
        let non_proxy = d.not(proxy.clone());
        let local = d.not(d.outside());
        let from_virtual = d.virtual_in(p);
        let inbound = d.and(vec![d.outside(), d.not(from_virtual.clone())]);
        let inbound_pre = d.and(vec![
            inbound.clone(),
            d.not(d.src_in_any(&p.exclude_inbound_cidrs)),
            d.tcp(),
            d.dst_local(),
            within(d, &p.inbound_ports, |v| d.dport_in(v)),
            d.not(d.dport_in(&p.exclude_inbound_ports)),
        ]);
        let dns_ok = p.dns_capture_port.map_or_else(
            || d.lit(false),
            |port| d.and(vec![d.dport_is(53), d.redirected(), d.delivered(port)]),
        );
        let local_outbound_pre = d.and(vec![
            local.clone(),
            d.not(dns_ok.clone()),
            d.tcp(),
            non_proxy.clone(),
            within(d, &p.outbound_gids, |v| d.gid_in(v)),
            d.not(d.gid_in(&p.exclude_outbound_gids)),
            d.not(d.dst_local()),
            within(d, &p.outbound_ports, |v| d.dport_in(v)),
            d.not(d.dport_in(&p.exclude_outbound_ports)),
            within(d, &p.outbound_cidrs, |v| d.dst_in_any(v)),
            d.not(d.dst_in_any(&p.exclude_outbound_cidrs)),
        ]);
        // A VM's connection through a virtual interface to a non-local destination is outbound
        // traffic of the pod's workload: the rules send its TCP to the outbound listener when
        // the destination is in the profile's include list (istio-iptables applies `-i` to it in
        // PREROUTING, `-i IFACE -d CIDR -j ISTIO_REDIRECT`; `-x` and the port and owner
        // exclusions live in ISTIO_OUTPUT, which a VM's traffic never crosses).
        let outbound_pre = d.or(vec![
            local_outbound_pre,
            d.and(vec![
                from_virtual,
                d.tcp(),
                d.not(d.src_in_any(&p.exclude_inbound_cidrs)),
                d.not(d.dst_local()),
                within(d, &p.outbound_cidrs, |v| d.dst_in_any(v)),
            ]),
        ]);
        Conditions {
            outbound_pre,
            dns_ok,
            inbound_pre,
            inbound,
            local,
            non_proxy,
            proxy,
        }
    }
}

/// `f` of the profile's list, or true when it gives none (every value counts).
pub fn within<D: Dom, T>(d: &D, list: &Option<Vec<T>>, f: impl Fn(&[T]) -> D::B) -> D::B {
    list.as_ref().map_or_else(|| d.lit(true), |v| f(v))
}

/// The proxy's capture listeners: a journey that starts at one of them is the proxy's business.
pub fn capture_ports(p: &Profile) -> [u16; 2] {
    [p.outbound_port, p.inbound_port]
}

/// The profile's values as the statements word them.
pub struct Words {
    /// Who the proxy is, as the profile identifies it: `uid U`, `uid U, or gid G`, `mark M/K`…
    pub who: String,
    /// Who is not: `uid ≠ U`, `uid ≠ U and gid ≠ G`, `mark ≠ M/K`…
    pub non_proxy: String,
    /// The groups outbound capture is limited to, when it is: ` in groups … excluding …`.
    pub groups: String,
    /// The virtual interfaces' clause of outbound capture, when there are any.
    pub virt: String,
    /// Where inbound capture applies, when not everywhere: ` (not on a virtual interface; …)`.
    pub inbound_where: String,
    /// DNS taken aside, when the profile captures it.
    pub dns: String,
}

impl Words {
    /// The words for the profile `p`.
    pub fn new(p: &Profile) -> Words {
        let id = p.identity();
        let mut is = Vec::new();
        let mut is_not = Vec::new();
        if !id.uids.is_empty() {
            is.push(format!("uid {}", list(&id.uids)));
            is_not.push(format!("uid ≠ {}", list(&id.uids)));
        }
        if !id.gids.is_empty() {
            is.push(format!("gid {}", list(&id.gids)));
            is_not.push(format!("gid ≠ {}", list(&id.gids)));
        }
        if let Some((m, k)) = id.mark {
            is.push(format!("mark {m:#x}/{k:#x}"));
            is_not.push(format!("mark ≠ {m:#x}/{k:#x}"));
        }
        let (who, non_proxy) = if is.is_empty() {
            ("nobody".to_string(), "anyone".to_string())
        } else {
            (is.join(", or "), is_not.join(" and "))
        };
        let groups = match (&p.outbound_gids, p.exclude_outbound_gids.is_empty()) {
            (None, true) => String::new(),
            (gids, _) => format!(
                " in groups {} excluding {}",
                opt_list(gids),
                list(&p.exclude_outbound_gids)
            ),
        };
        let virt = if p.virtual_interfaces.is_empty() {
            String::new()
        } else {
            format!(
                "; every TCP connection arriving on the virtual interfaces {} from a source not excluded, for a non-local destination in the included addresses ({}; exclusions apply to the pod's own connections only), is redirected to {}",
                list(&p.virtual_interfaces),
                opt_list(&p.outbound_cidrs),
                p.outbound_port
            )
        };
        let inbound_where = if p.virtual_interfaces.is_empty() && p.exclude_inbound_cidrs.is_empty()
        {
            String::new()
        } else {
            format!(
                " (not on a virtual interface; sources excluded: {})",
                list(&p.exclude_inbound_cidrs)
            )
        };
        let dns = p.dns_capture_port.map_or_else(String::new, |port| {
            format!(" (DNS, port 53, redirected to the proxy's DNS listener {port} aside)")
        });
        Words {
            who,
            non_proxy,
            groups,
            virt,
            inbound_where,
            dns,
        }
    }
}

/// The lines that identify the proxy ([`Profile::identity`]): `proxy_identity` when the
/// profile gives it, then the uids, gids and mark it names.
pub fn proxy_uses(p: &Profile) -> Vec<String> {
    let kinds = p.identity_kinds();
    let mut proxy = Vec::new();
    if let Some(k) = &p.proxy_identity {
        proxy.push(format!("proxy_identity = [{}]", list(k)));
    }
    let (uid, gid) = (
        kinds.contains(&Credential::Uid),
        kinds.contains(&Credential::Gid),
    );
    if uid {
        proxy.push(format!("proxy_uid = {}", p.proxy_uid));
    }
    if gid {
        proxy.push(format!("proxy_gid = {}", p.proxy_gid));
    }
    if uid && !p.proxy_uids.is_empty() {
        proxy.push(format!("proxy_uids = [{}]", list(&p.proxy_uids)));
    }
    if gid && !p.proxy_gids.is_empty() {
        proxy.push(format!("proxy_gids = [{}]", list(&p.proxy_gids)));
    }
    if let (Some(m), true) = (p.proxy_mark, kinds.contains(&Credential::Mark)) {
        proxy.push(format!("proxy_mark = {m:#x}"));
        proxy.push(format!("proxy_mark_mask = {:#x}", p.proxy_mark_mask));
    }
    proxy
}

/// A profile value an invariant uses only when the profile sets it; [`Part::ALL`] is the order
/// its line follows the invariant's own lines in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `virtual_interfaces`, when there are any.
    VirtualInterfaces,
    /// `exclude_inbound_cidrs`, when there are any.
    ExcludeInboundCidrs,
    /// `outbound_gids`, when given.
    OutboundGids,
    /// `exclude_outbound_gids`, when there are any.
    ExcludeOutboundGids,
    /// `inbound_source = original` (every invariant that follows the journey uses it).
    InboundSource,
    /// `dns_capture_port`, when given.
    DnsCapturePort,
}

impl Part {
    /// Every part, in the order of the lines.
    pub const ALL: [Part; 6] = [
        Part::VirtualInterfaces,
        Part::ExcludeInboundCidrs,
        Part::OutboundGids,
        Part::ExcludeOutboundGids,
        Part::InboundSource,
        Part::DnsCapturePort,
    ];

    /// Its `name = value` line, when the profile sets it.
    pub fn line(self, p: &Profile) -> Option<String> {
        match self {
            Part::VirtualInterfaces => (!p.virtual_interfaces.is_empty())
                .then(|| format!("virtual_interfaces = [{}]", list(&p.virtual_interfaces))),
            Part::ExcludeInboundCidrs => (!p.exclude_inbound_cidrs.is_empty()).then(|| {
                format!(
                    "exclude_inbound_cidrs = [{}]",
                    list(&p.exclude_inbound_cidrs)
                )
            }),
            Part::OutboundGids => p
                .outbound_gids
                .as_ref()
                .map(|g| format!("outbound_gids = [{}]", list(g))),
            Part::ExcludeOutboundGids => (!p.exclude_outbound_gids.is_empty()).then(|| {
                format!(
                    "exclude_outbound_gids = [{}]",
                    list(&p.exclude_outbound_gids)
                )
            }),
            Part::InboundSource => match p.inbound_source {
                InboundSource::Passthrough => None,
                InboundSource::Original => Some("inbound_source = original".into()),
                InboundSource::Route => Some("inbound_source = route".into()),
            },
            Part::DnsCapturePort => p
                .dns_capture_port
                .map(|port| format!("dns_capture_port = {port}")),
        }
    }
}
