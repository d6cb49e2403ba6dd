//! istio-iptables' flags and environment, and the Istio sidecar injector's pod annotations, read
//! into the profile values they determine ([`IstioFlags::apply`]).
//!
//! # Where each meaning was taken from
//! Istio at the commit `../shared/corpus/istio/INDEX.md` names (the corpus's HEAD; older
//! versions' rules differ in what no flag says, which `corpus/istio-profiles.toml` gives per
//! version):
//! - the flags, their one-letter names and their variables: `tools/istio-iptables/pkg/cmd/root.go`
//!   (`flag.BindEnv`: a flag `--foo-bar` is also read from `FOO_BAR`, the flag winning;
//!   `--envoy-port` has no variable) and `pkg/flag/flag.go`; `ISTIO_META_DNS_CAPTURE`,
//!   `INVALID_DROP` and `ISTIO_DUAL_STACK` as further variables of `--redirect-dns`,
//!   `--drop-invalid` and `--dual-stack` (root.go, `flag.AdditionalEnv`);
//! - the defaults and the variables that are no flag's (`ISTIO_OUTBOUND_OWNER_GROUPS`,
//!   `ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE`, `ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR`, `ENVOY_USER`):
//!   `tools/common/config/config.go` (`DefaultConfig`, `FillConfigFromEnvironment`: no `-u` means
//!   `ENVOY_USER`'s uid, 1337 when the image has no such user; no `-g` means `-u`'s value) and
//!   `tools/istio-iptables/pkg/constants/constants.go`;
//! - what each value does to the rules: `tools/istio-iptables/pkg/capture/run.go` (`-b '*'` with
//!   `-d` exclusions, a `-b` list without them, `-b ''` no inbound capture; `-i '*'` every
//!   destination, a list those only, `''` none; `-x '*'` refused; the tunnel port always left
//!   alone inbound; DNS redirected to the agent's 15053, to the resolv.conf servers unless
//!   `--capture-all-dns`, and not at all without servers) and `capture/filter.go` (owner groups:
//!   the exclude list counts only when the include list is `*`);
//! - the annotations: the sidecar injector's template
//!   (`manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`, istio-init's
//!   `istio-iptables -p 15001 -z 15006 -u 1337 -m … -i … -x … -b … -d 15090,15021,<status port
//!   and excludeInboundPorts> [-q …] [-o …] [-k …] [-c …]`) and, with `--istio-cni`, the CNI
//!   plugin's (`cni/pkg/plugin/sidecar_redirect.go` `NewRedirect` and
//!   `sidecar_iptables_linux.go` `Program`: `-d` always ends with 15020,15021,15090, `-o`
//!   defaults to 15020, the proxy container's `runAsUser`/`runAsGroup` give `-u`/`-g`, and its
//!   `ISTIO_META_DNS_CAPTURE=true` gives `--redirect-dns --capture-all-dns`: those are no
//!   annotations, so they are given as the flags the plugin derives from them).
//!
//! `DNS_SERVERS=IP,…` is ours: istio-iptables reads the pod's nameservers from
//! `/etc/resolv.conf` (with `--redirect-dns` and without `--capture-all-dns`); the word stands
//! for that file's `nameserver` lines (the name is the one istio-iptables' configuration dump
//! prints). `--redirect-dns` without `--capture-all-dns` needs it, empty when the file names no
//! server (DNS capture is then off, as istio-iptables leaves it).
//!
//! Flags accepted that set nothing a profile says: `-m` (REDIRECT or TPROXY: how inbound
//! connections reach 15006, not whether), `-t`, `-r` (TPROXY's mark and route table), `-c` (the
//! interfaces left alone: the checks range over eth0 and the `-k` interfaces), `--drop-invalid`,
//! `--dual-stack` (the pod's families are `--pod-ip`'s), and the run-time flags (`-n`,
//! `--network-namespace`, `--cni-mode`, `--reconcile`, `--cleanup-only`, `--force-apply`,
//! `--skip-rule-apply`, `--run-validation`, `--iptables-probe-port`, `--probe-timeout`,
//! `--native-nftables`, `--force-iptables-binary`, `--force-legacy-iptables`, the `--log_*`
//! options), and, from the corpus's older versions, `--iptables-trace-logging` and `-f`.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    addresses, bad, bool_of, cidrs, dedup, interfaces, items, number, owners, ports,
    replace_listeners, resolve, split_words, FlagError, Given, Grammar, OwnerWord, Spec, Takes,
};
use crate::profile::Profile;

/// What a setting sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    EnvoyPort,
    CapturePort,
    TunnelPort,
    ProxyUid,
    ProxyGid,
    Mode,
    InboundPorts,
    ExcludeInbound,
    ExcludeInterfaces,
    OutboundCidrs,
    ExcludeCidrs,
    OutboundPorts,
    ExcludeOutbound,
    VirtualInterfaces,
    TproxyMark,
    TproxyTable,
    RedirectDns,
    CaptureAllDns,
    OwnerGroups,
    OwnerGroupsExclude,
    LoopbackCidr,
    DnsServers,
    EnvoyUser,
    /// A boolean that sets nothing a profile says (checked to be one).
    NoEffectBool,
    /// A value that sets nothing a profile says.
    NoEffect,
}

const fn v(long: &'static str, short: Option<char>, key: Key, env: &'static str) -> Spec<Key> {
    Spec {
        long,
        short,
        takes: Takes::Value,
        key,
        env: if env.is_empty() { None } else { Some(env) },
    }
}

const fn b(long: &'static str, short: Option<char>, key: Key, env: &'static str) -> Spec<Key> {
    Spec {
        long,
        short,
        takes: Takes::Bool,
        key,
        env: if env.is_empty() { None } else { Some(env) },
    }
}

/// istio-iptables' flags (root.go), with their variables.
const FLAGS: &[Spec<Key>] = &[
    v("envoy-port", Some('p'), Key::EnvoyPort, ""),
    v(
        "inbound-capture-port",
        Some('z'),
        Key::CapturePort,
        "INBOUND_CAPTURE_PORT",
    ),
    v(
        "inbound-tunnel-port",
        Some('e'),
        Key::TunnelPort,
        "INBOUND_TUNNEL_PORT",
    ),
    v("proxy-uid", Some('u'), Key::ProxyUid, "PROXY_UID"),
    v("proxy-gid", Some('g'), Key::ProxyGid, "PROXY_GID"),
    v(
        "istio-inbound-interception-mode",
        Some('m'),
        Key::Mode,
        "ISTIO_INBOUND_INTERCEPTION_MODE",
    ),
    v(
        "istio-inbound-ports",
        Some('b'),
        Key::InboundPorts,
        "ISTIO_INBOUND_PORTS",
    ),
    v(
        "istio-local-exclude-ports",
        Some('d'),
        Key::ExcludeInbound,
        "ISTIO_LOCAL_EXCLUDE_PORTS",
    ),
    v(
        "istio-exclude-interfaces",
        Some('c'),
        Key::ExcludeInterfaces,
        "ISTIO_EXCLUDE_INTERFACES",
    ),
    v(
        "istio-service-cidr",
        Some('i'),
        Key::OutboundCidrs,
        "ISTIO_SERVICE_CIDR",
    ),
    v(
        "istio-service-exclude-cidr",
        Some('x'),
        Key::ExcludeCidrs,
        "ISTIO_SERVICE_EXCLUDE_CIDR",
    ),
    v(
        "istio-outbound-ports",
        Some('q'),
        Key::OutboundPorts,
        "ISTIO_OUTBOUND_PORTS",
    ),
    v(
        "istio-local-outbound-ports-exclude",
        Some('o'),
        Key::ExcludeOutbound,
        "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE",
    ),
    v(
        "kube-virt-interfaces",
        Some('k'),
        Key::VirtualInterfaces,
        "KUBE_VIRT_INTERFACES",
    ),
    v(
        "istio-inbound-tproxy-mark",
        Some('t'),
        Key::TproxyMark,
        "ISTIO_INBOUND_TPROXY_MARK",
    ),
    v(
        "istio-inbound-tproxy-route-table",
        Some('r'),
        Key::TproxyTable,
        "ISTIO_INBOUND_TPROXY_ROUTE_TABLE",
    ),
    b("dry-run", Some('n'), Key::NoEffectBool, "DRY_RUN"),
    v(
        "iptables-probe-port",
        None,
        Key::NoEffect,
        "IPTABLES_PROBE_PORT",
    ),
    v("probe-timeout", None, Key::NoEffect, "PROBE_TIMEOUT"),
    b(
        "skip-rule-apply",
        None,
        Key::NoEffectBool,
        "SKIP_RULE_APPLY",
    ),
    b("run-validation", None, Key::NoEffectBool, "RUN_VALIDATION"),
    b("redirect-dns", None, Key::RedirectDns, "REDIRECT_DNS"),
    b("drop-invalid", None, Key::NoEffectBool, "DROP_INVALID"),
    b("dual-stack", None, Key::NoEffectBool, "DUAL_STACK"),
    b(
        "capture-all-dns",
        None,
        Key::CaptureAllDns,
        "CAPTURE_ALL_DNS",
    ),
    v(
        "network-namespace",
        None,
        Key::NoEffect,
        "NETWORK_NAMESPACE",
    ),
    b("cni-mode", None, Key::NoEffectBool, "CNI_MODE"),
    b("reconcile", None, Key::NoEffectBool, "RECONCILE"),
    b("cleanup-only", None, Key::NoEffectBool, "CLEANUP_ONLY"),
    b("force-apply", None, Key::NoEffectBool, "FORCE_APPLY"),
    b(
        "native-nftables",
        None,
        Key::NoEffectBool,
        "NATIVE_NFTABLES",
    ),
    v(
        "force-iptables-binary",
        None,
        Key::NoEffect,
        "FORCE_IPTABLES_BINARY",
    ),
    b(
        "force-legacy-iptables",
        None,
        Key::NoEffectBool,
        "FORCE_LEGACY_IPTABLES",
    ),
    // Older versions' (the corpus's 1.12 to 1.24).
    b("iptables-trace-logging", None, Key::NoEffectBool, ""),
    b("restore-format", Some('f'), Key::NoEffectBool, ""),
    // Istio's logging options (pkg/log), which the injector passes.
    v("log_output_level", None, Key::NoEffect, ""),
    b("log_as_json", None, Key::NoEffectBool, ""),
    v("log_caller", None, Key::NoEffect, ""),
    v("log_stacktrace_level", None, Key::NoEffect, ""),
    v("log_target", None, Key::NoEffect, ""),
    v("log_rotate", None, Key::NoEffect, ""),
    v("log_rotate_max_age", None, Key::NoEffect, ""),
    v("log_rotate_max_size", None, Key::NoEffect, ""),
    v("log_rotate_max_backups", None, Key::NoEffect, ""),
];

/// Variables read after the flags' own (a later one overrides an earlier one of the same key).
const EXTRA_ENV: &[(&str, Key)] = &[
    ("ISTIO_META_DNS_CAPTURE", Key::RedirectDns),
    ("INVALID_DROP", Key::NoEffectBool),
    ("ISTIO_DUAL_STACK", Key::NoEffectBool),
    ("ISTIO_OUTBOUND_OWNER_GROUPS", Key::OwnerGroups),
    (
        "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE",
        Key::OwnerGroupsExclude,
    ),
    ("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", Key::LoopbackCidr),
    ("ENVOY_USER", Key::EnvoyUser),
    ("DNS_SERVERS", Key::DnsServers),
];

const GRAMMAR: Grammar<'static, Key> = Grammar {
    generator: "istio-iptables",
    programs: &["istio-iptables", "istio-iptables-nft"],
    specs: FLAGS,
    extra_env: EXTRA_ENV,
};

/// The Istio agent's DNS listener (constants.go `IstioAgentDNSListenerPort`): where
/// `--redirect-dns` sends queries, whatever the flags.
pub const DNS_LISTENER: u16 = 15053;

/// The ports of the proxy's own servers that `-d` may leave alone (the agent's status port
/// 15020, Envoy's health 15021 and Prometheus 15090): the `metrics_ports` of a profile are those
/// of them `-d` names.
pub const AGENT_SERVER_PORTS: &[u16] = &[15020, 15021, 15090];

/// The profile values the flags determine ([`IstioFlags::apply`] sets these and no other;
/// `nameservers` only when `DNS_SERVERS` is given).
pub const DETERMINES: &[&str] = &[
    "proxy_uid",
    "proxy_gid",
    "proxy_uids",
    "proxy_gids",
    "proxy_mark",
    "proxy_identity",
    "outbound_port",
    "inbound_port",
    "proxy_ports",
    "metrics_ports",
    "inbound_ports",
    "exclude_inbound_ports",
    "outbound_ports",
    "exclude_outbound_ports",
    "outbound_cidrs",
    "exclude_outbound_cidrs",
    "virtual_interfaces",
    "outbound_gids",
    "exclude_outbound_gids",
    "loopback_cidr",
    "dns_capture_port",
    "dns_servers",
    "dns_capture_local",
    "nameservers",
];

/// Which ports inbound capture takes (`-b`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inbound {
    /// `*`: every port but the `-d` ones.
    All,
    /// These (none: no inbound capture).
    Only(Vec<u16>),
}

/// A list of users or groups as given, with the flag or variable that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owners {
    spelled: String,
    words: Vec<OwnerWord>,
}

/// An istio-iptables configuration, read from its flags, variables and the injector's
/// annotations ([`IstioFlags::read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioFlags {
    outbound_port: u16,
    inbound_port: u16,
    tunnel_port: u16,
    uids: Option<Owners>,
    gids: Option<Owners>,
    envoy_user: Option<Owners>,
    inbound: Inbound,
    exclude_inbound: Vec<u16>,
    outbound_ports: Vec<u16>,
    exclude_outbound_ports: Vec<u16>,
    /// None: `*`.
    outbound_cidrs: Option<Vec<ipnet::IpNet>>,
    exclude_cidrs: Vec<ipnet::IpNet>,
    virtual_interfaces: Vec<String>,
    /// None: `*`.
    owner_groups: Option<Owners>,
    owner_groups_exclude: Option<Owners>,
    loopback: ipnet::Ipv4Net,
    redirect_dns: bool,
    capture_all_dns: bool,
    dns_servers: Option<Vec<IpAddr>>,
}

impl Default for IstioFlags {
    /// istio-iptables run without flags (config.go `DefaultConfig`).
    fn default() -> IstioFlags {
        IstioFlags {
            outbound_port: 15001,
            inbound_port: 15006,
            tunnel_port: 15008,
            uids: None,
            gids: None,
            envoy_user: None,
            inbound: Inbound::Only(Vec::new()),
            exclude_inbound: Vec::new(),
            outbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
            outbound_cidrs: Some(Vec::new()),
            exclude_cidrs: Vec::new(),
            virtual_interfaces: Vec::new(),
            owner_groups: None,
            owner_groups_exclude: None,
            loopback: ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 1), 32).unwrap_or_default(),
            redirect_dns: false,
            capture_all_dns: false,
            dns_servers: None,
        }
    }
}

/// The annotations the injector derives istio-iptables flags from, and the ones it reads for
/// nothing here.
pub const ANNOTATIONS: &[&str] = &[
    INTERCEPTION_MODE,
    INCLUDE_OUTBOUND_IP_RANGES,
    EXCLUDE_OUTBOUND_IP_RANGES,
    INCLUDE_INBOUND_PORTS,
    EXCLUDE_INBOUND_PORTS,
    STATUS_PORT,
    INCLUDE_OUTBOUND_PORTS,
    EXCLUDE_OUTBOUND_PORTS,
    KUBEVIRT_INTERFACES,
    REROUTE_VIRTUAL_INTERFACES,
    EXCLUDE_INTERFACES,
    SIDECAR_STATUS,
    SIDECAR_INJECT,
];

const INTERCEPTION_MODE: &str = "sidecar.istio.io/interceptionMode";
const INCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
const EXCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
const INCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeInboundPorts";
const EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
const STATUS_PORT: &str = "status.sidecar.istio.io/port";
const INCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeOutboundPorts";
const EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
const KUBEVIRT_INTERFACES: &str = "traffic.sidecar.istio.io/kubevirtInterfaces";
const REROUTE_VIRTUAL_INTERFACES: &str = "istio.io/reroute-virtual-interfaces";
const EXCLUDE_INTERFACES: &str = "traffic.sidecar.istio.io/excludeInterfaces";
const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
const SIDECAR_INJECT: &str = "sidecar.istio.io/inject";

/// Who ran istio-iptables with the pod's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// Nobody: istio-iptables with the given flags alone.
    Flags,
    /// The sidecar injector's istio-init container.
    Init,
    /// The istio-cni plugin.
    Cni,
}

/// The settings the installer derives from `annotations`, before the given flags.
fn annotation_settings(
    annotations: &[(String, String)],
    installer: Installer,
) -> Result<Vec<Given<Key>>, FlagError> {
    if installer == Installer::Flags {
        return Ok(Vec::new());
    }
    for (k, _) in annotations {
        if !ANNOTATIONS.contains(&k.as_str()) {
            let reason = if k == "proxy.istio.io/config" {
                "the proxy's configuration is not read here: give what it sets for istio-iptables (e.g. `ISTIO_META_DNS_CAPTURE=true`) in --istio-args".to_string()
            } else {
                format!(
                    "the injector derives istio-iptables flags from {}",
                    ANNOTATIONS
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(FlagError::UnknownAnnotation {
                key: k.clone(),
                reason,
            });
        }
    }
    // The last of a key given twice wins, as in a pod's map of annotations.
    let get = |key: &str| {
        annotations
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let set = |key: Key, spelled: &str, value: &str| Given {
        key,
        spelled: spelled.to_string(),
        value: value.to_string(),
    };
    let with_default =
        |key: Key, ann: &str, default: &str| set(key, ann, get(ann).unwrap_or(default));
    let mut out = vec![
        set(Key::EnvoyPort, "-p", "15001"),
        set(Key::ProxyUid, "-u", "1337"),
    ];
    if let Some(mode) = get(INTERCEPTION_MODE) {
        if mode == "NONE" {
            return Err(FlagError::BadValue {
                flag: INTERCEPTION_MODE.to_string(),
                value: mode.to_string(),
                reason: "installs no rules (the injector adds no istio-init container): there is no profile of them".to_string(),
            });
        }
    }
    out.push(with_default(Key::Mode, INTERCEPTION_MODE, "REDIRECT"));
    out.push(with_default(
        Key::OutboundCidrs,
        INCLUDE_OUTBOUND_IP_RANGES,
        "*",
    ));
    out.push(with_default(
        Key::ExcludeCidrs,
        EXCLUDE_OUTBOUND_IP_RANGES,
        "",
    ));
    out.push(with_default(Key::InboundPorts, INCLUDE_INBOUND_PORTS, "*"));
    let excluded = get(EXCLUDE_INBOUND_PORTS);
    match installer {
        Installer::Cni => {
            out.push(set(Key::ProxyGid, "-g", "1337"));
            // `<excludeInboundPorts, default 15020>,15020,15021,15090`, without repeats.
            let mut d: Vec<&str> = items(excluded.unwrap_or("15020"));
            d.extend(["15020", "15021", "15090"]);
            out.push(set(
                Key::ExcludeInbound,
                EXCLUDE_INBOUND_PORTS,
                &dedup(d).join(","),
            ));
            out.push(with_default(
                Key::ExcludeOutbound,
                EXCLUDE_OUTBOUND_PORTS,
                "15020",
            ));
            out.push(with_default(Key::OutboundPorts, INCLUDE_OUTBOUND_PORTS, ""));
        }
        Installer::Init | Installer::Flags => {
            out.push(set(Key::CapturePort, "-z", "15006"));
            // `15090,15021,` then excludeInboundPorts with the status port added unless it is
            // 0 or already there (the template's `excludeInboundPort`).
            let status = get(STATUS_PORT).unwrap_or("15020").trim();
            let mut d: Vec<&str> = vec!["15090", "15021"];
            let listed = items(excluded.unwrap_or(""));
            d.extend(&listed);
            if !status.is_empty() && status != "0" && !listed.contains(&status) {
                d.push(status);
            }
            let spelled = if excluded.is_some() {
                EXCLUDE_INBOUND_PORTS
            } else {
                STATUS_PORT
            };
            out.push(set(Key::ExcludeInbound, spelled, &d.join(",")));
            if let Some(q) = get(INCLUDE_OUTBOUND_PORTS) {
                out.push(set(Key::OutboundPorts, INCLUDE_OUTBOUND_PORTS, q));
            }
            if let Some(o) = get(EXCLUDE_OUTBOUND_PORTS) {
                out.push(set(Key::ExcludeOutbound, EXCLUDE_OUTBOUND_PORTS, o));
            }
        }
    }
    // The plugin prefers the newer key; the template reads the older one.
    let virt = get(REROUTE_VIRTUAL_INTERFACES)
        .map(|v| (REROUTE_VIRTUAL_INTERFACES, v))
        .or_else(|| get(KUBEVIRT_INTERFACES).map(|v| (KUBEVIRT_INTERFACES, v)));
    if let Some((k, v)) = virt {
        out.push(set(Key::VirtualInterfaces, k, v));
    }
    if let Some(c) = get(EXCLUDE_INTERFACES) {
        out.push(set(Key::ExcludeInterfaces, EXCLUDE_INTERFACES, c));
    }
    Ok(out)
}

impl IstioFlags {
    /// Reads istio-iptables' words `args` (flags, and leading `NAME=VALUE` variables), after the
    /// flags `installer` derives from `annotations` (none for [`Installer::Flags`]): a flag in
    /// `args` overrides the installer's.
    ///
    /// # Example
    /// ```
    /// use sidecar_model::flags::istio::{Installer, IstioFlags};
    /// use sidecar_model::pod::Profile;
    ///
    /// let f = IstioFlags::read("-p 15001 -z 15006 -u 1337 -b '*' -d 15090,15021,15020", &[], Installer::Flags).unwrap();
    /// let p = f.profile(Profile::istio()).unwrap();
    /// assert_eq!((p.inbound_ports, p.metrics_ports), (None, vec![15090, 15021, 15020]));
    /// assert_eq!(p.exclude_inbound_ports, vec![15008, 15090, 15021, 15020]);
    /// ```
    pub fn read(
        args: &str,
        annotations: &[(String, String)],
        installer: Installer,
    ) -> Result<IstioFlags, FlagError> {
        let mut settings = annotation_settings(annotations, installer)?;
        settings.extend(GRAMMAR.read(&split_words("`--istio-args`", args)?)?);
        let mut f = IstioFlags::default();
        for g in &settings {
            f.set(g)?;
        }
        if f.redirect_dns && !f.capture_all_dns && f.dns_servers.is_none() {
            return Err(FlagError::Conflict(
                "`--redirect-dns` without `--capture-all-dns` captures DNS to the nameservers of the pod's /etc/resolv.conf: give them as `DNS_SERVERS=IP,…` before the flags (`DNS_SERVERS=` when it names none)".to_string(),
            ));
        }
        Ok(f)
    }

    fn set(&mut self, g: &Given<Key>) -> Result<(), FlagError> {
        let one_port = |g: &Given<Key>| super::port(g, &g.value);
        let owner_list = |g: &Given<Key>| {
            owners(g).map(|words| Owners {
                spelled: g.spelled.clone(),
                words,
            })
        };
        match g.key {
            Key::EnvoyPort => self.outbound_port = one_port(g)?,
            Key::CapturePort => self.inbound_port = one_port(g)?,
            Key::TunnelPort => self.tunnel_port = one_port(g)?,
            Key::ProxyUid => self.uids = Some(owner_list(g)?),
            Key::ProxyGid => self.gids = Some(owner_list(g)?),
            Key::EnvoyUser => self.envoy_user = Some(owner_list(g)?),
            Key::Mode => {
                if !matches!(g.value.as_str(), "" | "REDIRECT" | "TPROXY") {
                    return Err(bad(
                        g,
                        &g.value,
                        "is not an interception mode (REDIRECT or TPROXY)",
                    ));
                }
            }
            Key::InboundPorts => {
                self.inbound = if g.value.trim() == "*" {
                    Inbound::All
                } else {
                    Inbound::Only(ports(g)?)
                }
            }
            Key::ExcludeInbound => self.exclude_inbound = ports(g)?,
            Key::OutboundPorts => self.outbound_ports = ports(g)?,
            Key::ExcludeOutbound => self.exclude_outbound_ports = ports(g)?,
            Key::OutboundCidrs => {
                self.outbound_cidrs = if g.value.trim() == "*" {
                    None
                } else {
                    Some(cidrs(g)?)
                }
            }
            Key::ExcludeCidrs => {
                if g.value.trim() == "*" {
                    return Err(bad(g, &g.value, "is refused by istio-iptables (`*` excludes every destination: give no -i instead)"));
                }
                self.exclude_cidrs = cidrs(g)?;
            }
            Key::VirtualInterfaces => self.virtual_interfaces = interfaces(g)?,
            Key::ExcludeInterfaces => {
                interfaces(g)?;
            }
            Key::TproxyMark | Key::TproxyTable => {
                number(g)?;
            }
            Key::RedirectDns => self.redirect_dns = bool_of(g)?,
            Key::CaptureAllDns => self.capture_all_dns = bool_of(g)?,
            Key::OwnerGroups => {
                self.owner_groups = if g.value.trim() == "*" {
                    None
                } else {
                    Some(owner_list(g)?)
                }
            }
            Key::OwnerGroupsExclude => {
                self.owner_groups_exclude = if items(&g.value).is_empty() {
                    None
                } else {
                    Some(owner_list(g)?)
                }
            }
            Key::LoopbackCidr => {
                // config.go ValidateIPv4LoopbackCidr: an IPv4 loopback prefix, /8 to /32.
                let net = g
                    .value
                    .trim()
                    .parse::<ipnet::Ipv4Net>()
                    .map_err(|_| bad(g, &g.value, "is not an IPv4 CIDR"))?;
                if !net.addr().is_loopback() || net.prefix_len() < 8 {
                    return Err(bad(
                        g,
                        &g.value,
                        "is not a loopback range (within 127.0.0.0/8, prefix /8 to /32)",
                    ));
                }
                self.loopback = net.trunc();
            }
            Key::DnsServers => self.dns_servers = Some(addresses(g)?),
            Key::NoEffectBool => {
                bool_of(g)?;
            }
            Key::NoEffect => {}
        }
        Ok(())
    }

    /// `base` with the values the flags determine ([`DETERMINES`]) set from them; every other
    /// value stays `base`'s. Names of users and groups resolve through `base`'s `users` and
    /// `groups`.
    pub fn profile(&self, mut base: Profile) -> Result<Profile, FlagError> {
        self.apply(&mut base)?;
        Ok(base)
    }

    /// Sets the values of `p` the flags determine ([`DETERMINES`]).
    pub fn apply(&self, p: &mut Profile) -> Result<(), FlagError> {
        // No -u: ENVOY_USER's uid (the image's istio-proxy is 1337, the fallback too).
        let uids = match (&self.uids, &self.envoy_user) {
            (Some(o), _) | (None, Some(o)) => resolve(&o.words, &p.users, &o.spelled, "user")?,
            (None, None) => vec![1337],
        };
        // No -g: -u's words, read as groups.
        let gid_words = self
            .gids
            .as_ref()
            .or(self.uids.as_ref())
            .or(self.envoy_user.as_ref());
        let gids = match gid_words {
            Some(o) => resolve(&o.words, &p.groups, &o.spelled, "group")?,
            None => vec![1337],
        };
        let (Some(&uid), Some(&gid)) = (uids.first(), gids.first()) else {
            return Err(FlagError::Conflict(
                "istio-iptables was given no proxy uid or gid".to_string(),
            ));
        };
        p.proxy_uid = uid;
        p.proxy_uids = if uids.len() > 1 { uids } else { Vec::new() };
        p.proxy_gid = gid;
        p.proxy_gids = if gids.len() > 1 { gids } else { Vec::new() };
        // The rules know the proxy by its uids and gids.
        p.proxy_mark = None;
        p.proxy_identity = None;

        p.proxy_ports = replace_listeners(
            &p.proxy_ports,
            &[
                (Some(p.outbound_port), self.outbound_port),
                (Some(p.inbound_port), self.inbound_port),
                (None, self.tunnel_port),
            ],
        );
        p.outbound_port = self.outbound_port;
        p.inbound_port = self.inbound_port;

        p.inbound_ports = match &self.inbound {
            Inbound::All => None,
            Inbound::Only(v) => Some(v.clone()),
        };
        p.exclude_inbound_ports =
            dedup(std::iter::once(self.tunnel_port).chain(self.exclude_inbound.iter().copied()));
        p.metrics_ports = dedup(
            self.exclude_inbound
                .iter()
                .copied()
                .filter(|x| AGENT_SERVER_PORTS.contains(x)),
        );
        // run.go sends `-q` ports to the outbound listener before the `-i` ranges: a connection
        // is captured when its port is one of `-q` *or* its destination is in `-i`. A profile's
        // include lists must both hold, so only `-q` with `-i ''` (the ports alone decide) or
        // `-i '*'` (everything is captured) can be said.
        let (outbound_ports, outbound_cidrs) = match (&self.outbound_ports[..], &self.outbound_cidrs)
        {
            ([], c) => (None, c.clone()),
            (_, None) => (None, None),
            (q, Some(c)) if c.is_empty() && self.virtual_interfaces.is_empty() => {
                (Some(q.to_vec()), None)
            }
            (_, Some(_)) => {
                return Err(FlagError::Conflict(
                    "`-q` with an `-i` list (or with `-k` and no `-i`) captures connections to those ports or to those ranges (a VM's by range alone), which a profile cannot say: its `outbound_ports` and `outbound_cidrs` must both hold".to_string(),
                ))
            }
        };
        p.outbound_ports = outbound_ports;
        p.outbound_cidrs = outbound_cidrs;
        p.exclude_outbound_ports = self.exclude_outbound_ports.clone();
        p.exclude_outbound_cidrs = self.exclude_cidrs.clone();
        p.virtual_interfaces = self.virtual_interfaces.clone();
        // The exclude list counts only when every group is captured (filter.go).
        match &self.owner_groups {
            Some(o) => {
                p.outbound_gids = Some(resolve(&o.words, &p.groups, &o.spelled, "group")?);
                p.exclude_outbound_gids = Vec::new();
            }
            None => {
                p.outbound_gids = None;
                p.exclude_outbound_gids = match &self.owner_groups_exclude {
                    Some(o) => resolve(&o.words, &p.groups, &o.spelled, "group")?,
                    None => Vec::new(),
                };
            }
        }
        p.loopback_cidr = self.loopback;

        let servers = self.dns_servers.clone().unwrap_or_default();
        let captured = self.redirect_dns && (self.capture_all_dns || !servers.is_empty());
        p.dns_capture_port = captured.then_some(DNS_LISTENER);
        p.dns_servers = (captured && !self.capture_all_dns).then(|| servers.clone());
        p.dns_capture_local = captured && self.capture_all_dns;
        if self.dns_servers.is_some() {
            p.nameservers = servers;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
