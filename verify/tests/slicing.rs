//! Proofs sliced by destination (`prove/slice.rs`, `prove/regions.rs`) give every invariant the
//! status the whole ruleset's proof gives it: kube-proxy tables with each mesh in front, with
//! odd services among alike ones (an endpoint that is the pod, one on loopback, one DNATed to
//! the proxy's listeners, a cluster IP in the loopback range, a service port the mesh
//! excludes), and the meshes' own rulesets sliced at every rule with a key. The slicing is
//! forced with `slice_min_keys: 1`; the whole proof is `usize::MAX`.

#![cfg(test)]

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::synth::kube_proxy::{generate, Mesh, Spec};
use sidecar_model::{parse, Family, Ruleset};
use sidecar_verify::prove::{self, slice};
use sidecar_verify::results::Status;

fn statuses(rs: &Ruleset, profile: &Profile, min_keys: usize) -> Vec<(&'static str, Status)> {
    let opts = prove::Options {
        slice_min_keys: min_keys,
        ..prove::Options::default()
    };
    prove::invariants(rs, &Pod::default(), profile, &opts)
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.status))
        .collect()
}

/// The whole proof and the sliced one agree on `text`; returns the slicing's classes (how many
/// keys each holds), so a caller can check alike regions were proved once.
fn agree(name: &str, text: &str, profile: &Profile) -> Vec<usize> {
    let rs = parse(name, text.as_bytes()).unwrap().ruleset;
    let plan = slice::plan(&rs, Family::Ipv4, &Pod::default(), profile, 1)
        .unwrap_or_else(|| panic!("{name}: nothing to slice"));
    let whole = statuses(&rs, profile, usize::MAX);
    let sliced = statuses(&rs, profile, 1);
    assert_eq!(
        whole, sliced,
        "{name}: sliced proofs differ from the whole proof"
    );
    plan.classes.iter().map(|c| c.members.len()).collect()
}

fn node(services: usize, mesh: Option<Mesh>) -> String {
    generate(&Spec {
        services,
        endpoints: 2,
        nodeport_every: 3,
        mesh,
        seed: 11,
    })
    .unwrap()
}

#[test]
fn kube_proxy_tables_with_each_mesh_agree_and_alike_services_share_a_proof() {
    for mesh in Mesh::ALL {
        let profile = Profile::named(mesh.name()).unwrap();
        let classes = agree(mesh.name(), &node(12, Some(mesh)), &profile);
        assert!(
            classes.iter().any(|n| *n > 1),
            "{}: no two services were proved as one: {classes:?}",
            mesh.name()
        );
    }
}

/// The cluster IP of the service whose rules carry `comment` (`ns/name:port`).
fn cluster_ip(text: &str, comment: &str) -> String {
    let door = format!("--comment \"{comment} cluster IP\"");
    let l = text
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES -d ") && l.contains(&door))
        .unwrap();
    let a = l.split_whitespace().nth(3).unwrap();
    a.trim_end_matches("/32").to_string()
}

#[test]
fn odd_services_among_alike_ones_agree() {
    let text = node(16, Some(Mesh::Istio));
    // Every TCP service on port 9000 with its endpoints on 15001 (the proxy's outbound
    // listener's port; a remote one is harmless): the services are alike but for their
    // addresses and node ports.
    let mut odd = text
        .lines()
        .map(|l| {
            let service = l.starts_with("-A KUBE-SERVICES -d ") || l.starts_with("-A KUBE-SVC-");
            if l.contains("-p tcp") && service && l.contains("--dport ") {
                let at = l.find("--dport ").unwrap() + "--dport ".len();
                let end = l[at..].find(' ').map_or(l.len(), |e| e + at);
                format!("{}9000{}", &l[..at], &l[end..])
            } else if l.contains("-p tcp") && l.contains("-j DNAT --to-destination ") {
                let at = l.rfind(':').unwrap();
                format!("{}:15001", &l[..at])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let moved: Vec<String> = odd
        .lines()
        .filter(|l| l.contains("-j DNAT") && l.ends_with(":15001"))
        .map(|l| l.split('"').nth(1).unwrap().to_string())
        .collect();
    assert!(moved.len() >= 4, "too few services on port 8080: {moved:?}");
    // The one whose cluster IP sorts last (never a class's representative) gets the pod's own
    // address as one of its endpoints: a proxy's connection to it may be delivered to its own
    // listener, which `proxy-not-recaptured` forbids.
    let last = moved
        .iter()
        .max_by_key(|c| cluster_ip(&odd, c).parse::<std::net::Ipv4Addr>().unwrap())
        .unwrap()
        .clone();
    let sep = odd
        .lines()
        .find(|l| l.contains(&format!("\"{last}\"")) && l.contains("-j DNAT"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    odd = odd
        .lines()
        .map(|l| {
            if !l.starts_with(&format!("-A {sep} ")) {
                l.to_string()
            } else if l.contains("-j DNAT") {
                let at = l.find("--to-destination ").unwrap();
                format!("{}--to-destination 10.1.0.5:15001", &l[..at])
            } else {
                let a = l.split_whitespace().nth(3).unwrap();
                l.replace(a, "10.1.0.5/32")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    // A cluster IP in the loopback range, and a service port the mesh excludes (15021).
    let door = odd
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES -d ") && !l.contains(&last))
        .unwrap()
        .to_string();
    let a = door.split_whitespace().nth(3).unwrap().to_string();
    odd = odd.replace(&a, "127.0.0.53/32");
    let port = door
        .split("--dport ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    odd = odd
        .lines()
        .map(|l| {
            if l.contains("-d 127.0.0.53/32") {
                l.replace(&format!("--dport {port} "), "--dport 15021 ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let rs = parse("odd", odd.as_bytes()).unwrap().ruleset;
    let whole = statuses(&rs, &Profile::istio(), usize::MAX);
    assert!(
        whole.contains(&("proxy-not-recaptured", Status::Violated)),
        "the odd service does not bite: {whole:?}"
    );
    let base = parse("base", text.as_bytes()).unwrap().ruleset;
    assert!(statuses(&base, &Profile::istio(), usize::MAX)
        .contains(&("proxy-not-recaptured", Status::Holds)));
    agree("odd", &odd, &Profile::istio());
}

#[test]
fn the_meshes_own_rulesets_sliced_at_every_key_agree() {
    for mesh in Mesh::ALL {
        let profile = Profile::named(mesh.name()).unwrap();
        let rs = parse(mesh.name(), mesh.rules().as_bytes()).unwrap().ruleset;
        if slice::plan(&rs, Family::Ipv4, &Pod::default(), &profile, 1).is_none() {
            continue;
        }
        assert_eq!(
            statuses(&rs, &profile, usize::MAX),
            statuses(&rs, &profile, 1),
            "{}",
            mesh.name()
        );
    }
}

/// Every rule's reachability, sliced and whole, on a kube-proxy table with Istio's rules: the
/// same status for every rule, the same rules undecided; a rule shadowed or unreachable is so
/// by the same rules or more (the union of each region's minimal set); and an unroutable rule
/// of a service's own part that tests a source address has an example packet from that
/// address (an example found for the class's representative, mapped to the member).
#[test]
fn sliced_reachability_agrees_with_the_whole_one() {
    let text = node(12, Some(Mesh::Istio));
    let rs = parse("node", text.as_bytes()).unwrap().ruleset;
    let profile = Profile::istio();
    let run = |min_keys: usize| {
        let opts = prove::Options {
            slice_min_keys: min_keys,
            ..prove::Options::default()
        };
        prove::ruleset(&rs, &Pod::default(), &profile, &opts).unwrap()
    };
    let (whole, sliced) = (run(usize::MAX), run(1));
    assert_eq!(whole.rules.len(), sliced.rules.len());
    let mut sources = 0;
    for (w, s) in whole.rules.iter().zip(&sliced.rules) {
        assert_eq!((&w.chain, w.rule), (&s.chain, s.rule));
        assert_eq!(w.status, s.status, "{}", w.text);
        assert!(
            w.by.iter().all(|b| s.by.contains(b)),
            "{}: {:?} vs {:?}",
            w.text,
            w.by,
            s.by
        );
        if let (Some(p), Some(src)) = (s.packet, s.text.split(" -s ").nth(1)) {
            let a = src.split('/').next().unwrap();
            assert_eq!(p.src.to_string(), a, "{}", s.text);
            sources += 1;
        }
    }
    assert!(
        sources > 10,
        "too few unroutable rules with a source: {sources}"
    );
    let key = |u: &sidecar_verify::results::check::RuleAtTable| (u.chain.clone(), u.rule);
    let mut a: Vec<_> = whole.undecided.iter().map(key).collect();
    let mut b: Vec<_> = sliced.undecided.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// `slice::map_packet` carries a packet of a class's representative to the same packet of
/// another member: run through the evaluator, the mapped packet hits the member's own rules at
/// the places the original hits the representative's (the i-th rule of each, in signature
/// order), and its journey has as many hops. A mapping that left the packet as it was would hit
/// the representative's rules again.
#[test]
fn a_packet_mapped_to_another_member_takes_that_members_rules() {
    use sidecar_model::eval::Packet;
    use sidecar_model::pod::{Journey, Simulator};
    use sidecar_model::Hook;
    use sidecar_verify::smt::RuleId;

    let text = node(40, Some(Mesh::Istio));
    let rs = parse("node", text.as_bytes()).unwrap().ruleset;
    let (pod, profile) = (Pod::default(), Profile::istio());
    let plan = slice::plan(&rs, Family::Ipv4, &pod, &profile, 1).unwrap();
    let sim = Simulator::new(&rs, pod.clone(), profile.clone());
    // The indices of `rules` that `j` hits, over all its hops.
    let hit = |rules: &[RuleId], j: &Journey| -> Vec<usize> {
        let name = |id: &RuleId| {
            let t = rs.table_at(Family::Ipv4, id.table, id.part).unwrap();
            t.chains[id.chain].name.clone()
        };
        rules
            .iter()
            .enumerate()
            .filter(|(_, id)| {
                j.hops.iter().flat_map(|h| &h.matched).any(|m| {
                    m.table == id.table
                        && m.part == id.part
                        && m.chain == name(id)
                        && m.rule as usize == id.rule + 1
                })
            })
            .map(|(i, _)| i)
            .collect()
    };
    let mut checked = 0;
    for class in &plan.classes {
        let Some((rep, others)) = class.members.split_first() else {
            continue;
        };
        // Cluster IPs: a node port's key has no address (its packets go to a local one).
        let Some(dst) = rep.key.dst else { continue };
        let mut p = Packet::tcp_out(pod.ips[0], dst, 40000, 80, 1000, 1000);
        p.proto = rep.key.proto.unwrap_or(6);
        p.dport = rep.key.dport.unwrap_or(80);
        let j = sim.journey_packet(Hook::Output, p);
        let own = hit(&rep.rules, &j);
        assert!(!own.is_empty(), "{:?}: hits none of its own rules", rep.key);
        for m in others {
            let q = slice::map_packet(&p, rep, m);
            let jm = sim.journey_packet(Hook::Output, q);
            assert_eq!(hit(&m.rules, &jm), own, "{:?} -> {:?}", rep.key, m.key);
            assert_eq!(jm.hops.len(), j.hops.len(), "{:?} -> {:?}", rep.key, m.key);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} members checked");
}
