//! The mesh profile: what the proxy is and does (who it runs as, where it listens, how it
//! re-connects) and what the rules must capture, as data. Two profiles are built in
//! ([`BUILTIN`]: `istio` and `ambient`); a TOML file overrides any value of the one its `base`
//! key names.
//!
//! # Who the proxy is, and how it re-connects
//! Two things are kept apart. *Who the rules must recognise as the proxy* is
//! `proxy_identity`: which of the proxy's credentials identify it, any non-empty combination of
//! `"uid"` (every uid of `proxy_uid` and `proxy_uids`), `"gid"` (every gid of `proxy_gid` and
//! `proxy_gids`) and `"mark"` (`proxy_mark` under `proxy_mark_mask`). A connection opened with
//! any one of them is the proxy's; nothing else is. *The credentials the proxy re-connects
//! with* are `proxy_uid`, `proxy_gid` and, when given, `proxy_mark`, whatever identifies it.
//! So Kuma's kuma-dp (uid 5678, the rules match `--uid-owner` only) is
//! `proxy_uid = 5678`, `proxy_identity = ["uid"]`: an application whose gid happens to be 5678
//! is not the proxy. Without `proxy_identity` the meaning is the one profiles had before the key
//! existed: `["mark"]` when `proxy_mark` is given, else `["uid", "gid"]` (the `istio` profile:
//! uid 1337 or gid 1337; `ambient`: mark 0x539/0xfff). A profile naming `"mark"` without a
//! `proxy_mark`, or naming nothing, is refused ([`ProfileError::Identity`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::ast::{Family, Ruleset};

/// A built-in profile: the name `--profile` and `base` know it by, how to make it, and what it
/// is in one line.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its name (the profile's own `name`).
    pub name: &'static str,
    /// Makes it.
    pub make: fn() -> Profile,
    /// Our ruleset of its generator's defaults (file name under corpus/, text): what a
    /// command checks under this profile when no RULES are given. None: the classic ruleset
    /// ([`crate::DEFAULT_RULESET`]), istio's own, and ambient's (whose rules vary with DNS and
    /// virtual interfaces more than one default can say), as for a profile file.
    pub rules: Option<(&'static str, &'static str)>,
    /// What it is, in one line.
    pub about: &'static str,
}

/// Every built-in profile; the first is the default.
pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "istio",
        make: Profile::istio,
        rules: None,
        about: "Istio's sidecar: Envoy as uid and gid 1337",
    },
    Builtin {
        name: "ambient",
        make: Profile::ambient,
        rules: None,
        about: "Istio ambient's in-pod redirection: ztunnel, identified by mark 0x539",
    },
    Builtin {
        name: "kuma",
        make: Profile::kuma,
        rules: Some((
            "rulesets/kuma.rules",
            include_str!("../../corpus/rulesets/kuma.rules"),
        )),
        about: "Kuma's transparent proxy: kuma-dp as uid 5678, DNS to 15053",
    },
    Builtin {
        name: "linkerd",
        make: Profile::linkerd,
        rules: Some((
            "rulesets/linkerd.rules",
            include_str!("../../corpus/rulesets/linkerd.rules"),
        )),
        about: "Linkerd's proxy-init: linkerd2-proxy as uid 2102 on 4140/4143",
    },
    Builtin {
        name: "consul",
        make: Profile::consul,
        rules: Some((
            "rulesets/consul.rules",
            include_str!("../../corpus/rulesets/consul.rules"),
        )),
        about: "Consul's redirect-traffic: Envoy as uid 5995 on 15001/20000, DNS to 127.0.0.1:8600",
    },
];

/// The built-in profiles' names: `istio, ambient, … or consul`.
pub fn builtin_names() -> String {
    or_list(BUILTIN.iter().map(|b| b.name.to_string()).collect())
}

/// The built-in profiles with what each is: `` `istio` (…), `ambient` (…) ``.
pub fn builtin_list() -> String {
    BUILTIN
        .iter()
        .map(|b| format!("`{}` ({})", b.name, b.about))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(mut items: Vec<String>) -> String {
    match items.pop() {
        Some(last) if !items.is_empty() => format!("{} or {last}", items.join(", ")),
        last => last.unwrap_or_default(),
    }
}

/// Why a profile could not be had.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProfileError {
    /// Not TOML, or a key a profile does not have, or a value of the wrong type (with its line
    /// and column).
    #[error("{}", .0.to_string().trim_end())]
    Toml(#[from] toml::de::Error),
    /// The base profile could not be written out to merge the overrides into.
    #[error("{}", .0.to_string().trim_end())]
    Base(#[from] toml::ser::Error),
    /// `base` names no built-in profile.
    #[error("unknown base profile `{0}` ({names})", names = builtin_names())]
    UnknownBase(String),
    /// `base` is not a string.
    #[error("`base` must be a profile name ({names})", names = builtin_names())]
    BaseNotAName,
    /// Neither a built-in profile's name nor a file.
    #[error("unknown profile `{0}`: no such file, and the built-in profiles are {list}", list = builtin_list())]
    #[diagnostic(help("give a built-in profile's name, or a TOML file whose `base` names one"))]
    Unknown(String),
    /// The file could not be read.
    #[error("cannot read profile `{path}`: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// `proxy_identity` contradicts the rest of the profile (at its line and column when the
    /// text gives it).
    #[error("{}{reason}", at.map_or_else(String::new, |(l, c)| format!("line {l}, column {c}: ")))]
    Identity {
        /// Line and column of the `proxy_identity` key, when the text has one.
        at: Option<(usize, usize)>,
        /// What is wrong.
        reason: String,
    },
    /// The file is not a profile.
    #[error("{path}: {source}")]
    File {
        /// The path given.
        path: String,
        /// What is wrong with it.
        source: Box<ProfileError>,
    },
}

/// What the mesh's proxy is and does: who it runs as, where it listens, how it re-connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// The built-in profile this one is built on (its own name for a built-in one; a file's
    /// `base`, `istio` when it has none): which mesh's conventions it follows, e.g. whether
    /// `scenarios` compares the article's Istio claims. Not a key of its own.
    #[serde(skip)]
    pub base: String,
    /// The proxy's uid.
    pub proxy_uid: u32,
    /// The proxy's gid.
    pub proxy_gid: u32,
    /// The outbound listener: connections redirected here are re-opened to their original
    /// destination, as the proxy.
    pub outbound_port: u16,
    /// The inbound listener: connections redirected here are re-opened from the passthrough
    /// source to their original destination, as the proxy.
    pub inbound_port: u16,
    /// Every port the proxy (and its agent) listens on in the pod.
    pub proxy_ports: Vec<u16>,
    /// Ports of the proxy's own servers that must be reached untouched (metrics, health).
    pub metrics_ports: Vec<u16>,
    /// The source the proxy binds for inbound re-connections (IPv4).
    pub passthrough_v4: Ipv4Addr,
    /// The source the proxy binds for inbound re-connections (IPv6).
    pub passthrough_v6: Ipv6Addr,
    /// The application's uid and gid.
    pub app_uid: u32,
    /// The application's gid.
    pub app_gid: u32,
    /// The remote peer that IPv4 connections "from outside" come from.
    pub remote_peer: IpAddr,
    /// The remote peer that IPv6 connections "from outside" come from.
    pub remote_peer_v6: Ipv6Addr,
    /// The most hops a journey may take before it is reported as a loop.
    pub max_hops: usize,
    /// Inbound ports captured (istio-iptables `-b`): none given means every port, an empty
    /// list means no inbound capture.
    pub inbound_ports: Option<Vec<u16>>,
    /// Inbound ports never captured (`-d`, plus the ports the mesh always excludes).
    pub exclude_inbound_ports: Vec<u16>,
    /// Outbound ports captured (`-q`): none given means every port.
    pub outbound_ports: Option<Vec<u16>>,
    /// Outbound ports never captured (`-o`).
    pub exclude_outbound_ports: Vec<u16>,
    /// Outbound destinations captured (`-i`): none given means every destination.
    pub outbound_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Outbound destinations never captured (`-x`).
    pub exclude_outbound_cidrs: Vec<ipnet::IpNet>,
    /// Further uids the proxy's processes run as (istio-iptables `-u 3,4`): they count as the
    /// proxy in the invariants when uids identify it (`proxy_identity`); the proxy re-connects
    /// as `proxy_uid`. Empty: `proxy_uid` only.
    pub proxy_uids: Vec<u32>,
    /// Further gids the proxy's processes run as (`-g 1,2`), as `proxy_uids`.
    pub proxy_gids: Vec<u32>,
    /// The proxy's DNS listener when the rules capture DNS (istio-iptables `-r`, CNI
    /// `ISTIO_META_DNS_CAPTURE`): a connection to port 53 redirected there counts as handled by
    /// the proxy. None (the istio profile): DNS is not captured.
    pub dns_capture_port: Option<u16>,
    /// The proxy's packet mark (`(mark & proxy_mark_mask) == proxy_mark`), as ambient's ztunnel
    /// sets it (SO_MARK 0x539): its re-connections carry it; it identifies the proxy when
    /// `proxy_identity` names `mark`, or (`proxy_identity` absent) alone, uid and gid no longer
    /// counting. Applications' connections carry no mark. None: the proxy sets no mark.
    pub proxy_mark: Option<u32>,
    /// The mask of `proxy_mark` (ambient: 0xfff).
    pub proxy_mark_mask: u32,
    /// Which credentials identify the proxy to the rules: any non-empty combination of `uid`,
    /// `gid` and `mark` (see the module doc). None: `mark` when `proxy_mark` is given, else
    /// `uid` and `gid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_identity: Option<Vec<Credential>>,
    /// Where the inbound listener's re-connection to the application comes from.
    pub inbound_source: InboundSource,
    /// Inbound sources never captured (ambient: the node's probe address 169.254.7.127).
    pub exclude_inbound_cidrs: Vec<ipnet::IpNet>,
    /// The pod's nameservers (istio-iptables `DNS_SERVERS`), of either family: the n-th IPv4
    /// one and the n-th IPv6 one are counterparts for `dual-stack-parity`. Empty: none named.
    pub nameservers: Vec<IpAddr>,
    /// Interfaces whose incoming traffic is outbound traffic of the pod's workload (KubeVirt
    /// VMs; istio-iptables `-k`): TCP arriving on them must go to the outbound listener, and
    /// only traffic arriving on other interfaces counts as inbound.
    pub virtual_interfaces: Vec<String>,
    /// Outbound capture limited to processes whose gid is one of these (istio-iptables
    /// `--include-outbound-owner-groups`, as numbers): none given means every group.
    pub outbound_gids: Option<Vec<u32>>,
    /// Processes whose gid is one of these are never captured outbound
    /// (`--exclude-outbound-owner-groups`).
    pub exclude_outbound_gids: Vec<u32>,
    /// User names as the pod's image resolves them, for `-m owner --uid-owner NAME`.
    pub users: std::collections::BTreeMap<String, u32>,
    /// Group names as the pod's image resolves them, for `-m owner --gid-owner NAME`.
    pub groups: std::collections::BTreeMap<String, u32>,
    /// What the proxy's own TCP connections to its pod address (a pod IP, not loopback) do
    /// (invariant `pod-local`): `inbound` (Istio's sidecar: ISTIO_OUTPUT's
    /// `! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT` sends them
    /// through the inbound listener once, so that a call to a service of the pod itself gets
    /// the inbound policy) or `direct` (ambient: ztunnel's connections into the pod are not
    /// captured).
    pub pod_local_proxy: PodLocalProxy,
    /// What an application's (non-proxy) connection to its own pod IP does (invariant
    /// `pod-local`): `direct` (Istio, ambient, Kuma, Linkerd: never redirected) or `outbound`
    /// (Consul's rules have no `-o lo` exception: it passes the outbound listener exactly once
    /// and the inbound listener never).
    pub pod_local_app: PodLocalApp,
    /// Ports of the pod address the `pod-local` invariant makes no claim about for the proxy's
    /// connections (istio: 15008, HBONE, which Istio's rules leave to the proxy since 1.18
    /// (`! --dport 15008`) and captured before; the profile's `exclude_outbound_ports` and,
    /// with DNS capture, port 53 are aside too).
    pub pod_local_exempt_ports: Vec<u16>,
    /// The IPv4 addresses the rules treat as the pod's loopback, where the proxy's connections
    /// end (Istio's `! -d 127.0.0.1/32 -o lo` pod-local rule and `-d 127.0.0.1/32 -j RETURN`;
    /// istio-iptables' HostIPv4LoopbackCidr): the proxy's connections to another address of
    /// 127.0.0.0/8 are pod-local like those to its pod IP (invariant `pod-local`). IPv6's is
    /// ::1. Default 127.0.0.1/32.
    pub loopback_cidr: ipnet::Ipv4Net,
    /// Ports of the pod address the proxy's own connections reach directly, never through a
    /// listener (invariant `pod-local`): Istio's sidecar rules since 1.18 leave the proxy's
    /// connections to its own HBONE port 15008 alone (`! --dport 15008`), so a profile of such
    /// rules says `pod_local_direct_ports = [15008]` and `pod_local_exempt_ports = []`. Built-in
    /// profiles: none (the classic rules predate the exception). A port also in
    /// `pod_local_exempt_ports` is exempt.
    pub pod_local_direct_ports: Vec<u16>,
    /// The nameservers of the pod's resolv.conf whose DNS queries the rules capture
    /// (istio-iptables `DNS_SERVERS`, the `-d` of ISTIO_OUTPUT_DNS): an application's query to
    /// one of them must reach the DNS listener (invariant `dns`). None: every DNS query to an
    /// address outside the pod is captured (`ISTIO_META_DNS_CAPTURE` capture-all, ambient).
    pub dns_servers: Option<Vec<IpAddr>>,
    /// Destinations whose DNS queries the DNS listener never takes, from any process (invariant
    /// `dns`): ambient's rules leave a query to a resolver on the loopback address alone (UDP
    /// over lo, TCP to 127.0.0.1/::1), so the built-in `ambient` profile names 127.0.0.1/32
    /// and ::1/128. None: no claim.
    pub dns_uncaptured_cidrs: Vec<ipnet::IpNet>,
    /// Without `dns_servers` (capture-all), whether an application's queries to the pod's own
    /// addresses are captured too (invariant `dns`): istio-iptables' capture-all keeps port 53
    /// out of the `-o lo … -j RETURN` rules (`! --dport 53`) so that ISTIO_OUTPUT_DNS takes
    /// queries over lo as well; ambient's UDP rule leaves lo alone. Default false: no claim.
    pub dns_capture_local: bool,
    /// The uid of a resolver running in the pod or VM (systemd-resolved, dnsmasq) whose
    /// upstream queries, to addresses that are not among `dns_servers`, must not be captured
    /// back into the DNS listener (istio/istio #30309). None: the pod runs no local resolver.
    pub dns_resolver_uid: Option<u32>,
    /// How the DNS listener forwards a query it cannot answer (invariants `dns` and
    /// `proxy-not-recaptured`): `dns` (default: as a DNS query the proxy opens to port 53, as
    /// Istio's agent and Kuma's embedded DNS do, so the proxy's own queries captured back into
    /// the listener come round again and must never be) or `other` (by another protocol:
    /// consul-dataplane's DNS proxy asks the Consul servers over gRPC, so a query of the proxy
    /// answered by the listener cannot loop, and Consul's rules send the whole pod's queries
    /// there, the proxy's included; the invariants make no claim about the proxy's queries).
    pub dns_upstream: DnsUpstream,
}

/// How the DNS listener forwards what it cannot answer ([`Profile::dns_upstream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsUpstream {
    /// A DNS query (port 53) opened by the proxy: its own queries must not be captured.
    Dns,
    /// Another protocol (consul-dataplane: gRPC to the Consul servers): no DNS query of the
    /// proxy's can come round again.
    Other,
}

/// What the proxy's own connections to its pod address do ([`Profile::pod_local_proxy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodLocalProxy {
    /// Through the inbound listener exactly once (and never the outbound one).
    Inbound,
    /// Not captured: the first hop is not redirected.
    Direct,
}

/// What an application's connections to its pod IP do ([`Profile::pod_local_app`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodLocalApp {
    /// Not captured: the first hop is not redirected.
    Direct,
    /// Through the outbound listener exactly once (and never the inbound one).
    Outbound,
}

/// The 1-based line and column of the top-level key `key` in `text`, when it is there.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .enumerate()
        .find_map(|(n, l)| {
            let t = l.trim_start();
            let rest = t.strip_prefix(key)?;
            rest.trim_start()
                .starts_with('=')
                .then(|| (n + 1, l.len() - t.len() + 1))
        })
}

/// `text` with its top-level `base = …` line blanked (line numbers stay), for error positions.
fn blank_base(text: &str) -> String {
    let mut top = true;
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            top &= !t.starts_with('[');
            if top
                && t.starts_with("base")
                && t.get(4..).is_some_and(|r| r.trim_start().starts_with('='))
            {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A kind of credential a proxy can be recognised by (`proxy_identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    /// The opening process's uid.
    Uid,
    /// The opening process's gid.
    Gid,
    /// The socket's mark (SO_MARK).
    Mark,
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Uid => "uid",
            Credential::Gid => "gid",
            Credential::Mark => "mark",
        })
    }
}

/// Who the rules must recognise as the proxy: a connection opened with any of these uids, any
/// of these gids, or the mark is the proxy's ([`Profile::identity`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Uids that identify the proxy (empty: uids do not).
    pub uids: Vec<u32>,
    /// Gids that identify the proxy (empty: gids do not).
    pub gids: Vec<u32>,
    /// The mark and its mask, when the mark identifies the proxy.
    pub mark: Option<(u32, u32)>,
}

/// Where the proxy's re-connection after the inbound listener comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundSource {
    /// The passthrough address (127.0.0.6 / ::6), as Envoy binds it.
    Passthrough,
    /// The original client's address, spoofed transparently, as ztunnel does.
    Original,
    /// Whatever the kernel's route gives (the proxy binds no address: the pod's own address
    /// towards the original destination), as linkerd2-proxy and Consul's Envoy do.
    Route,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::istio()
    }
}

impl Profile {
    /// Istio's sidecar as the classic ruleset was generated: proxy uid/gid 1337, outbound 15001,
    /// inbound 15006, passthrough from 127.0.0.6 / ::6, every inbound port captured but 15008
    /// (HBONE), 22, 15090, 15021 and 15020, every outbound destination captured; the proxy's
    /// own connections to its pod IP go through the inbound listener once (15008 aside), no DNS
    /// capture, no local resolver.
    pub fn istio() -> Profile {
        Profile {
            name: "istio".into(),
            base: "istio".into(),
            proxy_uid: 1337,
            proxy_gid: 1337,
            outbound_port: 15001,
            inbound_port: 15006,
            proxy_ports: vec![15000, 15001, 15006, 15008, 15020, 15021, 15053, 15090],
            metrics_ports: vec![15090, 15020, 15021],
            passthrough_v4: Ipv4Addr::new(127, 0, 0, 6),
            passthrough_v6: Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6),
            app_uid: 1000,
            app_gid: 1000,
            remote_peer: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 99)),
            remote_peer_v6: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99),
            max_hops: 8,
            inbound_ports: None,
            exclude_inbound_ports: vec![15008, 22, 15090, 15021, 15020],
            outbound_ports: None,
            exclude_outbound_ports: Vec::new(),
            outbound_cidrs: None,
            exclude_outbound_cidrs: Vec::new(),
            proxy_uids: Vec::new(),
            proxy_gids: Vec::new(),
            dns_capture_port: None,
            proxy_mark: None,
            proxy_mark_mask: u32::MAX,
            proxy_identity: None,
            inbound_source: InboundSource::Passthrough,
            exclude_inbound_cidrs: Vec::new(),
            nameservers: Vec::new(),
            virtual_interfaces: Vec::new(),
            outbound_gids: None,
            exclude_outbound_gids: Vec::new(),
            users: std::collections::BTreeMap::new(),
            groups: std::collections::BTreeMap::new(),
            pod_local_proxy: PodLocalProxy::Inbound,
            pod_local_app: PodLocalApp::Direct,
            pod_local_exempt_ports: vec![15008],
            pod_local_direct_ports: Vec::new(),
            loopback_cidr: ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 1), 32).unwrap_or_default(),
            dns_servers: None,
            dns_uncaptured_cidrs: Vec::new(),
            dns_capture_local: false,
            dns_resolver_uid: None,
            dns_upstream: DnsUpstream::Dns,
        }
    }

    /// Istio ambient's in-pod redirection (ztunnel): the proxy is whoever marks its packets
    /// 0x539/0xfff, listens on 15001 (outbound), 15006 (inbound, re-connecting from the client's
    /// own address), 15008 (HBONE) and 15053 (DNS); every inbound port but 15008 is captured,
    /// except from the node's probe addresses (169.254.7.127, e9ac:…:3164), which outbound
    /// connections also leave alone. ztunnel's own connections to the pod IP are not captured
    /// (`! -d 127.0.0.1/32 -o lo -j ACCEPT`). DNS capture is off here; profiles that capture it
    /// set `dns_capture_port` (ambient captures every query to an address outside the pod, and
    /// none to the loopback address: `dns_uncaptured_cidrs` 127.0.0.1/32, ::1/128).
    pub fn ambient() -> Profile {
        // Istio's ambient probe SNAT addresses (cni/pkg/iptables: ProbeIP, ProbeIPv6).
        let probes: Vec<ipnet::IpNet> = [
            IpAddr::V4(Ipv4Addr::new(169, 254, 7, 127)),
            IpAddr::V6(Ipv6Addr::new(
                0xe9ac, 0x1e77, 0x90ca, 0x399f, 0x4d6d, 0xece2, 0x2f9b, 0x3164,
            )),
        ]
        .into_iter()
        .map(ipnet::IpNet::from)
        .collect();
        Profile {
            name: "ambient".into(),
            base: "ambient".into(),
            proxy_ports: vec![15001, 15006, 15008, 15053],
            metrics_ports: Vec::new(),
            exclude_inbound_ports: vec![15008],
            exclude_inbound_cidrs: probes.clone(),
            exclude_outbound_cidrs: probes,
            proxy_mark: Some(0x539),
            proxy_mark_mask: 0xfff,
            inbound_source: InboundSource::Original,
            pod_local_proxy: PodLocalProxy::Direct,
            pod_local_exempt_ports: Vec::new(),
            dns_uncaptured_cidrs: ["127.0.0.1/32", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            ..Profile::istio()
        }
    }

    /// Kuma's transparent proxy as kuma-init (or `kumactl install transparent-proxy`) sets it
    /// up on Kubernetes, from Kuma's documented defaults (pkg/transparentproxy/config): kuma-dp
    /// runs as uid 5678 and the rules know it by that uid alone (`--uid-owner 5678`, never the
    /// gid); outbound listener 15001, inbound 15006, DNS 15053 with every query captured (the
    /// injector's built-in DNS, `--redirect-all-dns-traffic`, so queries to the pod's own
    /// addresses too); the inbound listener re-connects from 127.0.0.6 / ::6 and the proxy's
    /// own connections to its pod IP pass it once (`! -d 127.0.0.1/32 -o lo -m owner
    /// --uid-owner 5678 -j KUMA_MESH_INBOUND_REDIRECT`), as Istio's do. No inbound port is
    /// excluded; Envoy's admin 9901 listens on 127.0.0.1 only. Kuma before 2.9 used inbound
    /// port 15010 for IPv6; a profile for such rules sets `inbound_port` per ruleset.
    pub fn kuma() -> Profile {
        Profile {
            name: "kuma".into(),
            base: "kuma".into(),
            proxy_uid: 5678,
            proxy_gid: 5678,
            proxy_identity: Some(vec![Credential::Uid]),
            proxy_ports: vec![15001, 15006, 15053, 9901],
            metrics_ports: Vec::new(),
            exclude_inbound_ports: Vec::new(),
            dns_capture_port: Some(15053),
            dns_capture_local: true,
            pod_local_exempt_ports: Vec::new(),
            ..Profile::istio()
        }
    }

    /// Linkerd's proxy-init (linkerd2-proxy-init, with the injector's defaults): the proxy
    /// runs as uid 2102 and the rules know it by that uid alone; TCP only, outbound listener
    /// 4140, inbound 4143; inbound ports 4190 (tap) and 4191 (admin: metrics and health) and
    /// the default `ignoreInboundPorts`/`ignoreOutboundPorts` 4567, 4568 are never captured;
    /// every connection over lo is left alone (`-o lo -j RETURN`), so the proxy's own
    /// connections to its pod IP and the applications' are not captured. The proxy binds no
    /// source for its inbound re-connection (`inbound_source = "route"`).
    pub fn linkerd() -> Profile {
        Profile {
            name: "linkerd".into(),
            base: "linkerd".into(),
            proxy_uid: 2102,
            proxy_gid: 2102,
            proxy_identity: Some(vec![Credential::Uid]),
            outbound_port: 4140,
            inbound_port: 4143,
            proxy_ports: vec![4140, 4143, 4190, 4191],
            metrics_ports: vec![4191],
            exclude_inbound_ports: vec![4190, 4191, 4567, 4568],
            exclude_outbound_ports: vec![4567, 4568],
            inbound_source: InboundSource::Route,
            pod_local_proxy: PodLocalProxy::Direct,
            pod_local_exempt_ports: Vec::new(),
            ..Profile::istio()
        }
    }

    /// Consul's transparent proxy as `consul connect redirect-traffic` (Consul's sdk/iptables)
    /// sets it up with consul-k8s' values: Envoy runs as uid 5995 and the rules know it by that
    /// uid alone; outbound listener 15001 (the sdk's default), inbound 20000 (consul-k8s'
    /// public listener; the sdk requires it to be given); DNS queries to 127.0.0.1:53 are
    /// DNATed to Consul's DNS at 127.0.0.1:8600 (`dns_servers = ["127.0.0.1"]`), the proxy's
    /// own queries too: consul-dataplane's DNS proxy answers them over gRPC to the Consul
    /// servers, never through port 53 (`dns_upstream = "other"`). There is no
    /// `-o lo` exception: an application's connection to its own pod IP passes the outbound
    /// listener once (`pod_local_app = "outbound"`), and the proxy's are returned by its uid.
    /// The proxy binds no source for its inbound re-connection (`inbound_source = "route"`);
    /// Envoy sends it to the application's port on 127.0.0.1 where the model keeps the
    /// original destination: both are returned by the uid rule before any other.
    pub fn consul() -> Profile {
        Profile {
            name: "consul".into(),
            base: "consul".into(),
            proxy_uid: 5995,
            proxy_gid: 5995,
            proxy_identity: Some(vec![Credential::Uid]),
            outbound_port: 15001,
            inbound_port: 20000,
            proxy_ports: vec![15001, 20000, 8600, 19000],
            metrics_ports: Vec::new(),
            exclude_inbound_ports: Vec::new(),
            dns_capture_port: Some(8600),
            dns_servers: Some(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            dns_upstream: DnsUpstream::Other,
            inbound_source: InboundSource::Route,
            pod_local_proxy: PodLocalProxy::Direct,
            pod_local_app: PodLocalApp::Outbound,
            pod_local_exempt_ports: Vec::new(),
            ..Profile::istio()
        }
    }

    /// `rs` with the owner names the profile's `users` and `groups` give replaced by ids
    /// ([`Ruleset::resolve_owner_names`]); `rs` itself when the profile names none.
    pub fn resolve_names<'r>(&self, rs: &'r Ruleset) -> std::borrow::Cow<'r, Ruleset> {
        if self.users.is_empty() && self.groups.is_empty() {
            return std::borrow::Cow::Borrowed(rs);
        }
        let mut r = rs.clone();
        r.resolve_owner_names(&self.users, &self.groups);
        std::borrow::Cow::Owned(r)
    }

    /// The mark the proxy's own connections carry (0 when identity is by owner).
    pub fn reconnect_mark(&self) -> u32 {
        self.proxy_mark.unwrap_or(0)
    }

    /// The credentials that identify the proxy: `proxy_identity`, or (not given) `mark` when
    /// `proxy_mark` is given, else `uid` and `gid`; sorted, without repeats.
    pub fn identity_kinds(&self) -> Vec<Credential> {
        let mut v = self.proxy_identity.clone().unwrap_or_else(|| {
            if self.proxy_mark.is_some() {
                vec![Credential::Mark]
            } else {
                vec![Credential::Uid, Credential::Gid]
            }
        });
        v.sort();
        v.dedup();
        v
    }

    /// Who the rules must recognise as the proxy ([`Profile::identity_kinds`] with their
    /// values). A `mark` without `proxy_mark` identifies nobody ([`Profile::from_toml`] refuses
    /// such a profile).
    pub fn identity(&self) -> Identity {
        let kinds = self.identity_kinds();
        Identity {
            uids: if kinds.contains(&Credential::Uid) {
                self.all_proxy_uids()
            } else {
                Vec::new()
            },
            gids: if kinds.contains(&Credential::Gid) {
                self.all_proxy_gids()
            } else {
                Vec::new()
            },
            mark: self
                .proxy_mark
                .filter(|_| kinds.contains(&Credential::Mark))
                .map(|m| (m, self.proxy_mark_mask)),
        }
    }

    /// Whether `proxy_identity` is consistent: non-empty, and `mark` only with a `proxy_mark`.
    fn check_identity(&self, text: &str) -> Result<(), ProfileError> {
        let Some(kinds) = &self.proxy_identity else {
            return Ok(());
        };
        let reason = if kinds.is_empty() {
            Some("`proxy_identity` is empty: the rules could not recognise the proxy by anything (give `uid`, `gid` and/or `mark`)".to_string())
        } else if kinds.contains(&Credential::Mark) && self.proxy_mark.is_none() {
            Some("`proxy_identity` names `mark` but the profile gives no `proxy_mark`".to_string())
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(ProfileError::Identity {
                at: key_position(text, "proxy_identity"),
                reason,
            }),
        }
    }

    /// Every uid that counts as the proxy: `proxy_uid`, then `proxy_uids`.
    pub fn all_proxy_uids(&self) -> Vec<u32> {
        let mut v = vec![self.proxy_uid];
        v.extend(self.proxy_uids.iter().filter(|u| **u != self.proxy_uid));
        v
    }

    /// Every gid that counts as the proxy: `proxy_gid`, then `proxy_gids`.
    pub fn all_proxy_gids(&self) -> Vec<u32> {
        let mut v = vec![self.proxy_gid];
        v.extend(self.proxy_gids.iter().filter(|g| **g != self.proxy_gid));
        v
    }

    /// A built-in profile by name ([`BUILTIN`]).
    pub fn named(name: &str) -> Option<Profile> {
        BUILTIN.iter().find(|b| b.name == name).map(|b| (b.make)())
    }

    /// Reads a profile from TOML; every value not given keeps the built-in profile that `base`
    /// names (`istio` when there is no `base`).
    ///
    /// # Example
    /// ```
    /// use sidecar_model::pod::Profile;
    ///
    /// let p = Profile::from_toml("base = \"ambient\"\ndns_capture_port = 15053\n").unwrap();
    /// assert_eq!((p.proxy_mark, p.dns_capture_port), (Some(0x539), Some(15053)));
    /// ```
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        // Checked on its own first (the `base` line blanked, so positions stay), so that an
        // unknown key or a wrong type is reported with its position in the text.
        toml::from_str::<Profile>(&blank_base(text))?;
        let mut given: toml::Table = toml::from_str(text)?;
        let base = match given.remove("base") {
            None => Profile::istio(),
            Some(toml::Value::String(b)) => {
                Profile::named(&b).ok_or(ProfileError::UnknownBase(b))?
            }
            Some(_) => return Err(ProfileError::BaseNotAName),
        };
        let base_name = base.base.clone();
        let mut merged = toml::Table::try_from(&base)?;
        // A file giving `proxy_mark` without `proxy_identity` means what it meant before the key
        // existed: the mark identifies the proxy (whatever its base said).
        if given.contains_key("proxy_mark") && !given.contains_key("proxy_identity") {
            merged.remove("proxy_identity");
        }
        merged.extend(given);
        let mut p: Profile = toml::Table::try_into(merged)?;
        p.base = base_name;
        p.check_identity(text)?;
        Ok(p)
    }

    /// The profile `--profile` names: a built-in profile's name, or the path of a TOML file
    /// ([`Profile::from_toml`]). A word that is neither (no file of that name, and no `/` or
    /// `.` in it) is an unknown profile, and the error lists the built-in ones.
    pub fn load(spec: &str) -> Result<Profile, ProfileError> {
        if let Some(p) = Profile::named(spec) {
            return Ok(p);
        }
        let text = std::fs::read_to_string(spec).map_err(|source| {
            let a_name = !spec.contains(['/', '.', std::path::MAIN_SEPARATOR]);
            if a_name && source.kind() == std::io::ErrorKind::NotFound {
                ProfileError::Unknown(spec.to_string())
            } else {
                ProfileError::Read {
                    path: spec.to_string(),
                    source,
                }
            }
        })?;
        Profile::from_toml(&text).map_err(|e| ProfileError::File {
            path: spec.to_string(),
            source: Box::new(e),
        })
    }

    /// The passthrough source of `family`.
    pub fn passthrough(&self, family: Family) -> IpAddr {
        match family {
            Family::Ipv4 => IpAddr::V4(self.passthrough_v4),
            Family::Ipv6 => IpAddr::V6(self.passthrough_v6),
        }
    }
}
