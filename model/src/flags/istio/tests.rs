//! Unit tests of the istio-iptables flags and the injector's annotations.
use super::*;
use crate::profile::Credential;

fn flags(s: &str) -> IstioFlags {
    IstioFlags::read(s, &[], Installer::Flags).unwrap()
}

fn profile(s: &str) -> Profile {
    flags(s).profile(Profile::istio()).unwrap()
}

fn err(s: &str) -> String {
    IstioFlags::read(s, &[], Installer::Flags)
        .and_then(|f| f.profile(Profile::istio()))
        .unwrap_err()
        .to_string()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

#[test]
fn no_flags_is_istio_iptables_defaults() {
    let p = profile("");
    assert_eq!((p.outbound_port, p.inbound_port), (15001, 15006));
    assert_eq!((p.proxy_uid, p.proxy_gid), (1337, 1337));
    assert!(p.proxy_uids.is_empty() && p.proxy_gids.is_empty());
    // No -b: no inbound capture; no -i: no outbound capture; the tunnel port left alone.
    assert_eq!(p.inbound_ports, Some(vec![]));
    assert_eq!(p.outbound_cidrs, Some(vec![]));
    assert_eq!(p.exclude_inbound_ports, vec![15008]);
    assert!(p.metrics_ports.is_empty());
    assert_eq!(p.outbound_ports, None);
    assert_eq!(p.dns_capture_port, None);
    assert_eq!(p.loopback_cidr, "127.0.0.1/32".parse().unwrap());
    // The program's name may lead.
    assert_eq!(flags("istio-iptables"), flags(""));
}

#[test]
fn every_capture_flag() {
    let p = profile(
        "-p 16001 -z 16006 -e 16008 -u 3,4 -g 1,2 -m TPROXY -b 80,443 -d 15090,9000 -i 10.0.0.0/8,fd00::/8 -x 10.9.0.0/16 -o 25,26 -k eth1,eth2 -c eth9 -t 1337 -r 133",
    );
    assert_eq!((p.outbound_port, p.inbound_port), (16001, 16006));
    assert_eq!((p.proxy_uid, p.proxy_uids.clone()), (3, vec![3, 4]));
    assert_eq!((p.proxy_gid, p.proxy_gids.clone()), (1, vec![1, 2]));
    assert_eq!(p.inbound_ports, Some(vec![80, 443]));
    assert_eq!(p.exclude_inbound_ports, vec![16008, 15090, 9000]);
    assert_eq!(p.metrics_ports, vec![15090]);
    assert_eq!(
        p.outbound_cidrs,
        Some(vec![net("10.0.0.0/8"), net("fd00::/8")])
    );
    assert_eq!(p.exclude_outbound_cidrs, vec![net("10.9.0.0/16")]);
    assert_eq!(p.outbound_ports, None);
    assert_eq!(p.exclude_outbound_ports, vec![25, 26]);
    assert_eq!(p.virtual_interfaces, vec!["eth1", "eth2"]);
    // The listeners replace the istio profile's 15001 and 15006; the agent's ports stay.
    assert_eq!(
        p.proxy_ports,
        vec![15000, 16001, 16006, 15008, 15020, 15021, 15053, 15090, 16008]
    );
    // Long names say the same.
    let long = profile(
        "--envoy-port=16001 --inbound-capture-port 16006 --inbound-tunnel-port 16008 --proxy-uid 3,4 --proxy-gid 1,2 --istio-inbound-interception-mode TPROXY --istio-inbound-ports 80,443 --istio-local-exclude-ports 15090,9000 --istio-service-cidr 10.0.0.0/8,fd00::/8 --istio-service-exclude-cidr 10.9.0.0/16 --istio-local-outbound-ports-exclude 25,26 --kube-virt-interfaces eth1,eth2 --istio-exclude-interfaces eth9 --istio-inbound-tproxy-mark 1337 --istio-inbound-tproxy-route-table 133",
    );
    assert_eq!(long, p);
}

#[test]
fn outbound_ports_and_ranges() {
    // -q alone (no -i): the ports decide, whatever the destination.
    let p = profile("-q 8080,9090");
    assert_eq!(
        (p.outbound_ports, p.outbound_cidrs),
        (Some(vec![8080, 9090]), None)
    );
    // -q with -i '*': everything is captured anyway.
    let p = profile("-q 8080 -i '*'");
    assert_eq!((p.outbound_ports, p.outbound_cidrs), (None, None));
    // -q with an -i list captures either: a profile cannot say that.
    assert!(err("-q 8080 -i 10.0.0.0/8").starts_with("`-q` with an `-i` list"));
    // Nor -q with VM interfaces and no -i (their traffic is captured by range alone).
    assert!(err("-q 8080 -k eth1").starts_with("`-q` with an `-i` list"));
    assert_eq!(err("-q 80,x"), "`-q`: `x` is not a port (1-65535)");
    assert_eq!(profile("-o 25").exclude_outbound_ports, vec![25]);
}

#[test]
fn wildcards_and_empty_lists() {
    let p = profile("-b '*' -i '*' -x ''");
    assert_eq!((p.inbound_ports, p.outbound_cidrs), (None, None));
    assert!(p.exclude_outbound_cidrs.is_empty());
    let p = profile("-b '' -i ''");
    assert_eq!(p.inbound_ports, Some(vec![]));
    assert_eq!(p.outbound_cidrs, Some(vec![]));
    // -u alone gives -g too, read as groups.
    let p = profile("-u 5");
    assert_eq!((p.proxy_uid, p.proxy_gid), (5, 5));
}

#[test]
fn the_identity_is_uid_and_gid_whatever_the_base() {
    let p = flags("-u 7").profile(Profile::ambient()).unwrap();
    assert_eq!(p.proxy_mark, None);
    assert_eq!(p.identity_kinds(), vec![Credential::Uid, Credential::Gid]);
    assert_eq!(p.identity().uids, vec![7]);
}

#[test]
fn dns_capture_follows_the_servers_and_capture_all() {
    let p = profile("DNS_SERVERS=127.0.0.53,::127.0.0.53 --redirect-dns");
    assert_eq!(p.dns_capture_port, Some(15053));
    let servers: Vec<IpAddr> = vec![
        "127.0.0.53".parse().unwrap(),
        "::127.0.0.53".parse().unwrap(),
    ];
    assert_eq!(p.dns_servers, Some(servers.clone()));
    assert_eq!(p.nameservers, servers);
    assert!(!p.dns_capture_local);
    // No server: capture silently off, as istio-iptables leaves it.
    let p = profile("DNS_SERVERS= --redirect-dns");
    assert_eq!((p.dns_capture_port, p.dns_servers), (None, None));
    // Capture-all: every query, the pod's own addresses too.
    let p = profile("--redirect-dns --capture-all-dns");
    assert_eq!((p.dns_capture_port, p.dns_servers), (Some(15053), None));
    assert!(p.dns_capture_local);
    // The variables say it too; the flag wins over its variable.
    assert_eq!(
        profile("ISTIO_META_DNS_CAPTURE=true CAPTURE_ALL_DNS=1"),
        profile("--redirect-dns --capture-all-dns")
    );
    assert_eq!(
        profile("REDIRECT_DNS=true --redirect-dns=false").dns_capture_port,
        None
    );
    // ISTIO_META_DNS_CAPTURE is read after REDIRECT_DNS, whatever the words' order.
    assert_eq!(
        profile("ISTIO_META_DNS_CAPTURE=true REDIRECT_DNS=false --capture-all-dns")
            .dns_capture_port,
        Some(15053)
    );
    // Without servers or capture-all, the resolv.conf servers must be said.
    assert!(
        err("--redirect-dns").contains("DNS_SERVERS"),
        "{}",
        err("--redirect-dns")
    );
    assert_eq!(
        err("DNS_SERVERS=x --redirect-dns"),
        "`DNS_SERVERS`: `x` is not an IP address"
    );
}

#[test]
fn owner_groups_loopback_and_names() {
    let mut base = Profile::istio();
    base.groups.insert("java".into(), 2001);
    base.users.insert("envoy".into(), 101);
    base.groups.insert("envoy".into(), 102);
    let f =
        |s: &str| IstioFlags::read(s, &[], Installer::Flags).and_then(|x| x.profile(base.clone()));
    let p = f("ISTIO_OUTBOUND_OWNER_GROUPS=java,202").unwrap();
    assert_eq!(p.outbound_gids, Some(vec![2001, 202]));
    // The exclude list counts only under `*`.
    let p = f("ISTIO_OUTBOUND_OWNER_GROUPS=202 ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=888").unwrap();
    assert_eq!(
        (p.outbound_gids, p.exclude_outbound_gids),
        (Some(vec![202]), vec![])
    );
    let p = f("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=888,java").unwrap();
    assert_eq!(
        (p.outbound_gids, p.exclude_outbound_gids),
        (None, vec![888, 2001])
    );
    assert_eq!(
        f("ISTIO_OUTBOUND_OWNER_GROUPS=ftp").unwrap_err().to_string(),
        "`ISTIO_OUTBOUND_OWNER_GROUPS`: group `ftp` is not a number and the profile's `groups` does not name it (give `groups = { ftp = ID }` in a --profile file, as the pod image resolves it)"
    );
    // ENVOY_USER names the proxy's user when -u does not; -g then reads the same name.
    let p = f("ENVOY_USER=envoy").unwrap();
    assert_eq!((p.proxy_uid, p.proxy_gid), (101, 102));
    let p = f("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1/8").unwrap();
    assert_eq!(p.loopback_cidr, "127.0.0.0/8".parse().unwrap());
    assert!(f("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=10.0.0.0/8").is_err());
    assert!(f("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.0/7").is_err());
    assert_eq!(
        f("-u istio-proxy").unwrap_err().to_string(),
        "`-u`: user `istio-proxy` is not a number and the profile's `users` does not name it (give `users = { istio-proxy = ID }` in a --profile file, as the pod image resolves it)"
    );
}

#[test]
fn bad_values_name_the_flag() {
    assert_eq!(err("-p x"), "`-p`: `x` is not a port (1-65535)");
    assert_eq!(
        err("--envoy-port=70000"),
        "`--envoy-port`: `70000` is not a port (1-65535)"
    );
    assert_eq!(err("-z 0"), "`-z`: `0` is not a port (1-65535)");
    assert_eq!(err("-b 80,x"), "`-b`: `x` is not a port (1-65535)");
    assert_eq!(err("-d '*'"), "`-d`: `*` is not a port (1-65535)");
    assert_eq!(
        err("-m FOO"),
        "`-m`: `FOO` is not an interception mode (REDIRECT or TPROXY)"
    );
    assert_eq!(
        err("-i 10.0.0.1"),
        "`-i`: `10.0.0.1` is not a CIDR (address/prefix length)"
    );
    assert!(err("-x '*'").starts_with("`-x`: `*` is refused by istio-iptables"));
    assert_eq!(err("-t x"), "`-t`: `x` is not a number");
    assert_eq!(err("-u ''"), "`-u`: `` names no user or group");
    assert_eq!(err("-k a/b"), "`-k`: `a/b` is not an interface name");
    assert_eq!(
        err("--drop-invalid=maybe"),
        "`--drop-invalid`: `maybe` is not a boolean (true or false)"
    );
    assert_eq!(
        err("INBOUND_CAPTURE_PORT=x"),
        "`INBOUND_CAPTURE_PORT`: `x` is not a port (1-65535)"
    );
}

#[test]
fn unknown_flags_and_words_are_refused() {
    assert_eq!(
        err("--tproxy-mark 1"),
        "unknown istio-iptables flag `--tproxy-mark`"
    );
    assert_eq!(err("-y"), "unknown istio-iptables flag `-y`");
    assert_eq!(
        err("ENVOY_PORT=1"),
        "`ENVOY_PORT` is not an environment variable istio-iptables reads"
    );
    assert_eq!(
        err("-p 15001 extra"),
        "unexpected argument `extra`: istio-iptables takes flags only"
    );
    assert!(err("--redirect-dns true").contains("`--redirect-dns=true`"));
    assert!(err("-p '15001").contains("cannot split"));
}

#[test]
fn flags_that_set_nothing_a_profile_says_are_accepted() {
    let p = profile(
        "INVALID_DROP=true ISTIO_DUAL_STACK=false -n -f --dry-run --skip-rule-apply --run-validation --drop-invalid --dual-stack --cni-mode --reconcile --cleanup-only --force-apply --native-nftables --force-legacy-iptables --iptables-trace-logging --network-namespace /var/run/netns/x --force-iptables-binary iptables-legacy --iptables-probe-port 15002 --probe-timeout 5s --log_output_level=default:info --log_as_json -m REDIRECT -c eth9 -t 1337 -r 133",
    );
    assert_eq!(p, profile(""));
}

#[test]
fn only_the_determined_values_are_set() {
    // Two bases that differ everywhere: what the flags set agrees, the rest stays each
    // base's.
    let f = flags("DNS_SERVERS=10.96.0.10 -u 3 -b '*' -d 15090 --redirect-dns");
    let a = f.profile(Profile::istio()).unwrap();
    let mut other = Profile::ambient();
    other.app_uid = 4242;
    other.pod_local_direct_ports = vec![15008];
    other.outbound_port = 1;
    other.inbound_port = 2;
    let b = f.profile(other.clone()).unwrap();
    let ta = toml::Table::try_from(&a).unwrap();
    let tb = toml::Table::try_from(&b).unwrap();
    let to = toml::Table::try_from(&other).unwrap();
    let tbase = toml::Table::try_from(Profile::istio()).unwrap();
    for (k, va) in &ta {
        let vb = tb.get(k);
        if DETERMINES.contains(&k.as_str()) {
            // proxy_ports keeps a base's ports other than its listeners.
            if k != "proxy_ports" {
                assert_eq!(Some(va), vb, "{k}");
            }
        } else {
            assert_eq!(Some(va), tbase.get(k), "{k} set from istio's base");
            assert_eq!(vb, to.get(k), "{k} set from the other base");
        }
    }
}

fn ann(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_injectors_defaults() {
    // istio-init without annotations: the template's flags.
    let init = IstioFlags::read("", &ann(&[(SIDECAR_STATUS, "{}")]), Installer::Init).unwrap();
    assert_eq!(
        init,
        flags("-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020")
    );
    // The CNI plugin: the same, and outbound 15020 left alone.
    let cni = IstioFlags::read("", &[], Installer::Cni).unwrap();
    assert_eq!(
        cni,
        flags("-p 15001 -u 1337 -g 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15020,15021,15090 -o 15020")
    );
    let p = cni.profile(Profile::istio()).unwrap();
    assert_eq!(p.exclude_inbound_ports, vec![15008, 15020, 15021, 15090]);
    assert_eq!(p.metrics_ports, vec![15020, 15021, 15090]);
    assert_eq!(p.exclude_outbound_ports, vec![15020]);
}

#[test]
fn every_annotation() {
    let a = ann(&[
        (INTERCEPTION_MODE, "TPROXY"),
        (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0/8"),
        (EXCLUDE_OUTBOUND_IP_RANGES, "10.96.0.0/16"),
        (INCLUDE_INBOUND_PORTS, "80,8080"),
        (EXCLUDE_INBOUND_PORTS, "3333,4444"),
        (STATUS_PORT, "15021"),
        (INCLUDE_OUTBOUND_PORTS, "443"),
        (EXCLUDE_OUTBOUND_PORTS, "5555"),
        (KUBEVIRT_INTERFACES, "net1"),
        (EXCLUDE_INTERFACES, "eth9"),
        (SIDECAR_INJECT, "true"),
    ]);
    assert_eq!(
        IstioFlags::read("", &a, Installer::Init).unwrap(),
        flags("-p 15001 -z 15006 -u 1337 -m TPROXY -i 10.0.0.0/8 -x 10.96.0.0/16 -b 80,8080 -d 15090,15021,3333,4444,15021 -q 443 -o 5555 -k net1 -c eth9")
    );
    assert_eq!(
        IstioFlags::read("", &a, Installer::Cni).unwrap(),
        flags("-p 15001 -u 1337 -g 1337 -m TPROXY -i 10.0.0.0/8 -x 10.96.0.0/16 -b 80,8080 -d 3333,4444,15020,15021,15090 -q 443 -o 5555 -k net1 -c eth9")
    );
    // A status port of 0 adds nothing; the newer virtual-interfaces key wins.
    let b = ann(&[
        (STATUS_PORT, "0"),
        (KUBEVIRT_INTERFACES, "net1"),
        (REROUTE_VIRTUAL_INTERFACES, "net2"),
    ]);
    assert_eq!(
        IstioFlags::read("", &b, Installer::Init).unwrap(),
        flags("-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021 -k net2")
    );
    // Flags given after the annotations override the injector's (the proxy's runAsUser).
    let p = IstioFlags::read("-u 1000670000 -g 1000670001", &[], Installer::Cni)
        .unwrap()
        .profile(Profile::istio())
        .unwrap();
    assert_eq!((p.proxy_uid, p.proxy_gid), (1000670000, 1000670001));
}

#[test]
fn bad_annotations_name_the_annotation() {
    let e = |pairs: &[(&str, &str)]| {
        IstioFlags::read("", &ann(pairs), Installer::Init)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(&[(INCLUDE_INBOUND_PORTS, "80,x")]),
        "`traffic.sidecar.istio.io/includeInboundPorts`: `x` is not a port (1-65535)"
    );
    assert_eq!(
        e(&[(EXCLUDE_INBOUND_PORTS, "*")]),
        "`traffic.sidecar.istio.io/excludeInboundPorts`: `*` is not a port (1-65535)"
    );
    assert_eq!(
        e(&[(INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0")]),
        "`traffic.sidecar.istio.io/includeOutboundIPRanges`: `10.0.0.0` is not a CIDR (address/prefix length)"
    );
    assert_eq!(
        e(&[(INTERCEPTION_MODE, "FOO")]),
        "`sidecar.istio.io/interceptionMode`: `FOO` is not an interception mode (REDIRECT or TPROXY)"
    );
    assert!(e(&[(INTERCEPTION_MODE, "NONE")]).contains("installs no rules"));
    assert!(e(&[("traffic.sidecar.istio.io/includeInboundPort", "80")])
        .starts_with("unknown annotation `traffic.sidecar.istio.io/includeInboundPort`: the injector derives istio-iptables flags from `sidecar.istio.io/interceptionMode`"));
    assert!(e(&[("proxy.istio.io/config", "{}")]).contains("ISTIO_META_DNS_CAPTURE=true"));
}
