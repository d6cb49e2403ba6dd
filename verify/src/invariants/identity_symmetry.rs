//! `identity-symmetry`: every identity the profile gives the proxy (each uid, each gid, the
//! mark) is treated alike: a connection opened as any one of them has the same journey. Rules
//! that treat one identity apart (an extra `--uid-owner 0 -j RETURN`, as telepresence #4156
//! added; gid rules that differ from the uid rules) break it.

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Ruleset;

use super::pair::{Field, Pair, Relation};
use super::shared::{list, proxy_uses};
use super::shared::capture_ports;
use super::{Dom, Part, Words};

/// One identity of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A process of this uid.
    Uid(u32),
    /// A process of this gid.
    Gid(u32),
    /// A socket whose mark, masked with the second value, is the first.
    Mark(u32, u32),
}

/// Every identity the profile gives the proxy ([`Profile::identity`]): each uid, each gid, and
/// the mark, as far as the profile's `proxy_identity` counts them.
pub fn proxy_identities(p: &Profile) -> Vec<Identity> {
    let who = p.identity();
    who.uids
        .into_iter()
        .map(Identity::Uid)
        .chain(who.gids.into_iter().map(Identity::Gid))
        .chain(who.mark.map(|(m, mask)| Identity::Mark(m, mask)))
        .collect()
}

/// A connection opened as `id` with an application's other credentials: as a uid, with a gid
/// that is none of the proxy's; as a gid, with a uid that is none of the proxy's; as the mark,
/// with an application's uid and gid. A uid or gid identity's socket mark is an application's
/// (none of the proxy's marks; any mark when the proxy has none).
fn opened_as<D: Dom>(d: &D, id: Identity, ids: &[Identity]) -> D::B {
    let app_uid = d.not(d.or(ids
        .iter()
        .filter_map(|i| match i {
            Identity::Uid(u) => Some(d.uid_is(*u)),
            _ => None,
        })
        .collect()));
    let app_gid = d.not(d.or(ids
        .iter()
        .filter_map(|i| match i {
            Identity::Gid(g) => Some(d.gid_is(*g)),
            _ => None,
        })
        .collect()));
    let app_mark = d.not(d.or(ids
        .iter()
        .filter_map(|i| match i {
            Identity::Mark(m, k) => Some(d.mark_is(*m, *k)),
            _ => None,
        })
        .collect()));
    match id {
        Identity::Uid(u) => d.and(vec![d.uid_is(u), app_gid, app_mark]),
        Identity::Gid(g) => d.and(vec![d.gid_is(g), app_uid, app_mark]),
        Identity::Mark(m, k) => d.and(vec![d.mark_is(m, k), app_uid, app_gid]),
    }
}

fn words(id: Identity) -> String {
    match id {
        Identity::Uid(u) => format!("uid {u}"),
        Identity::Gid(g) => format!("gid {g}"),
        Identity::Mark(m, k) => format!("mark {m:#x}/{k:#x}"),
    }
}

/// Every pair of distinct proxy identities gives one connection the same journey.
///
/// These assertions are unsatisfiable if and only if there are no two connections opened in
/// the pod, alike in protocol, addresses, ports and interfaces, the first opened as one of the
/// proxy's identities and the second as another ([`proxy_identities`]; the credentials the
/// identity does not set are an application's, the same in both), whose journeys differ in
/// shape ([`crate::smt::shape`]); connections to the proxy's capture ports aside.
pub struct IdentitySymmetry;

impl IdentitySymmetry {
    /// The pairs it speaks about: connections opened in the pod, when the proxy has two
    /// identities or more (none otherwise: it is vacuous).
    pub fn premise<P: Pair>(pr: &P, p: &Profile) -> <P::D as Dom>::B {
        let d = pr.a();
        d.and(vec![
            d.lit(proxy_identities(p).len() >= 2),
            d.not(d.outside()),
        ])
    }
}

impl Relation for IdentitySymmetry {
    const ID: &'static str = "identity-symmetry";
    const ALSO_USES: &'static [Part] = &[];
    const CROSS_FAMILY: bool = false;
    const SAME: &'static [Field] = &[
        Field::Outside,
        Field::Proto,
        Field::Src,
        Field::Dst,
        Field::Sport,
        Field::Dport,
        Field::Ifaces,
    ];

    fn statement(p: &Profile, _w: &Words) -> String {
        let ids: Vec<String> = proxy_identities(p).into_iter().map(words).collect();
        format!(
            "every identity of the proxy ({}) is treated alike: a connection opened in the pod as one of them has a journey of the same shape (hop by hop: dropped, delivered to which port, leaving for which address and port, looping) as the same connection opened as another (as a uid with an application's gid, as a gid with an application's uid, as the mark with an application's uid and gid; ports {} and {} themselves aside)",
            list(&ids),
            p.outbound_port,
            p.inbound_port
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        proxy_uses(p)
    }

    fn vacuous(_rs: &Ruleset, _pod: &Pod, p: &Profile) -> Option<String> {
        let ids = proxy_identities(p);
        (ids.len() < 2).then(|| {
            format!(
                "vacuous: the profile gives the proxy one identity ({}), nothing to compare it with",
                list(&ids.into_iter().map(words).collect::<Vec<_>>())
            )
        })
    }

    fn violation<P: Pair>(pr: &P, p: &Profile, _pod: &Pod) -> <P::D as Dom>::B {
        let (a, b) = (pr.a(), pr.b());
        let ids = proxy_identities(p);
        let mut as_two = Vec::new();
        for (i, x) in ids.iter().enumerate() {
            for (j, y) in ids.iter().enumerate() {
                if i == j {
                    continue;
                }
                // The credentials neither identity sets are the same application's.
                let leaves_gid = |id: &Identity| !matches!(id, Identity::Gid(_));
                let leaves_uid = |id: &Identity| !matches!(id, Identity::Uid(_));
                let leaves_mark = |id: &Identity| !matches!(id, Identity::Mark(..));
                let mut v = vec![opened_as(a, *x, &ids), opened_as(b, *y, &ids)];
                if leaves_gid(x) && leaves_gid(y) {
                    v.push(pr.same(Field::Gid));
                }
                if leaves_uid(x) && leaves_uid(y) {
                    v.push(pr.same(Field::Uid));
                }
                if leaves_mark(x) && leaves_mark(y) {
                    v.push(pr.same(Field::Mark));
                }
                as_two.push(a.and(v));
            }
        }
        a.and(vec![
            Self::premise(pr, p),
            // A journey to the proxy's capture listeners is the proxy's business.
            a.not(a.dport_in(&capture_ports(p))),
            pr.same_all(Self::SAME),
            a.or(as_two),
            pr.differ(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::{proxy_identities, IdentitySymmetry, Identity, Relation};
    use sidecar_model::pod::{Pod, Profile};
    use sidecar_model::Ruleset;

    #[test]
    fn identities_come_from_the_profile_and_one_is_vacuous() {
        let istio = Profile::istio();
        assert_eq!(
            proxy_identities(&istio),
            [Identity::Uid(1337), Identity::Gid(1337)]
        );
        let rs = Ruleset::default();
        assert_eq!(IdentitySymmetry::vacuous(&rs, &Pod::default(), &istio), None);
        let several = Profile {
            proxy_uids: vec![3, 4],
            proxy_gids: vec![1, 2],
            proxy_uid: 3,
            proxy_gid: 1,
            ..Profile::istio()
        };
        assert_eq!(proxy_identities(&several).len(), 4);
        let ambient = Profile::ambient();
        assert_eq!(
            proxy_identities(&ambient),
            [Identity::Mark(0x539, 0xfff)]
        );
        let why = IdentitySymmetry::vacuous(&rs, &Pod::default(), &ambient).unwrap();
        assert!(why.starts_with("vacuous"), "{why}");
    }
}
