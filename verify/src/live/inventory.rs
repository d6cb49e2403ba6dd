//! What a namespace's listings hold: each backend's tables with their chains, rule counts and
//! policies, from iptables-save text and `nft -j list ruleset`, and which nf_tables tables are
//! iptables-nft's (those its saves print whole).

/// The backends a namespace's rules may sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// x_tables, through `iptables-legacy`.
    IptablesLegacy,
    /// nf_tables tables that `iptables-nft` made.
    IptablesNft,
    /// Native nf_tables tables.
    Nft,
}

impl Backend {
    /// The backend's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::IptablesNft => "iptables-nft",
            Backend::Nft => "nft",
        }
    }
}

/// One table as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSeen {
    /// The family as nft spells it: `ip`, `ip6`, `inet`, … (iptables' tables: `ip` or `ip6`).
    pub family: String,
    /// The table's name.
    pub name: String,
    /// Each chain's name and number of rules, sorted by name.
    pub chains: Vec<(String, usize)>,
    /// Whether a built-in or base chain's policy is not accept.
    pub policy_not_accept: bool,
}

impl TableSeen {
    /// Whether the table does anything: it holds a rule, or a policy that is not accept.
    pub fn holds_rules(&self) -> bool {
        self.policy_not_accept || self.chains.iter().any(|(_, n)| *n > 0)
    }
}

/// Every table of a namespace, by backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// What `iptables-legacy-save` and `ip6tables-legacy-save` list.
    pub legacy: Vec<TableSeen>,
    /// The nf_tables tables iptables-nft's saves print as their own.
    pub iptables_nft: Vec<TableSeen>,
    /// The other nf_tables tables.
    pub nft: Vec<TableSeen>,
}

/// Which listing is read as the namespace's ruleset.
impl Inventory {
    /// One backend's tables.
    pub fn tables(&self, b: Backend) -> &[TableSeen] {
        match b {
            Backend::IptablesLegacy => &self.legacy,
            Backend::IptablesNft => &self.iptables_nft,
            Backend::Nft => &self.nft,
        }
    }

    /// `iptables-legacy (ipv4: nat, mangle; ipv6: nat)`, `nft (inet istio-proxy-nat)`.
    pub fn backend_words(&self, b: Backend) -> String {
        let tables = self.tables(b);
        let list = match b {
            Backend::Nft => tables
                .iter()
                .map(|t| format!("{} {}", t.family, t.name))
                .collect::<Vec<_>>()
                .join(", "),
            Backend::IptablesLegacy | Backend::IptablesNft => [("ip", "ipv4"), ("ip6", "ipv6")]
                .iter()
                .filter_map(|(fam, words)| {
                    let names: Vec<&str> = tables
                        .iter()
                        .filter(|t| t.family == *fam)
                        .map(|t| t.name.as_str())
                        .collect();
                    (!names.is_empty()).then(|| format!("{words}: {}", names.join(", ")))
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        format!("{} ({list})", b.name())
    }

    /// The backends holding rules, as [`LiveError::Mixed`] names them.
    pub(super) fn holding(&self, bs: &[Backend]) -> String {
        bs.iter()
            .filter(|b| self.tables(**b).iter().any(TableSeen::holds_rules))
            .map(|b| self.backend_words(*b))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The inventory of the legacy saves (IPv4, IPv6), iptables-nft's saves (IPv4, IPv6) and the
/// tables `nft -j list ruleset` lists: an nft table is iptables-nft's when its family's
/// iptables-nft save prints a table that [`shows`] it, and does not call it incompatible.
pub fn inventory(legacy: [String; 2], nft_saves: [String; 2], nft: Vec<TableSeen>) -> Inventory {
    let [l4, l6] = legacy;
    let mut inv = Inventory {
        legacy: save_tables(&l4, "ip")
            .0
            .into_iter()
            .chain(save_tables(&l6, "ip6").0)
            .collect(),
        ..Inventory::default()
    };
    let [n4, n6] = nft_saves;
    let (t4, bad4) = save_tables(&n4, "ip");
    let (t6, bad6) = save_tables(&n6, "ip6");
    for t in nft {
        let own = t4.iter().chain(&t6).any(|s| shows(s, &t))
            && !bad4
                .iter()
                .chain(&bad6)
                .any(|(f, n)| *f == t.family && *n == t.name);
        if own {
            inv.iptables_nft.push(t);
        } else {
            inv.nft.push(t);
        }
    }
    inv
}

/// Whether `save`, a table an iptables-nft save printed, shows the nf_tables table `nft` whole:
/// the same family, name and policies, every chain of `nft` with as many rules, and no other
/// chain but empty built-in ones (iptables-nft creates a built-in chain only when a rule or a
/// policy needs it, and its save prints every built-in chain of the table, absent ones as
/// `ACCEPT [0:0]`).
fn shows(save: &TableSeen, nft: &TableSeen) -> bool {
    const BUILT_IN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    save.family == nft.family
        && save.name == nft.name
        && save.policy_not_accept == nft.policy_not_accept
        && nft.chains.iter().all(|c| save.chains.contains(c))
        && save
            .chains
            .iter()
            .all(|c| nft.chains.contains(c) || (c.1 == 0 && BUILT_IN.contains(&c.0.as_str())))
}

/// The tables of one family's iptables-save text, and the `(family, name)` of those it calls
/// incompatible (`# Table `nat' is incompatible, use 'nft' tool.`, `… contains incompatible
/// base-chains …`: iptables-nft-save then prints the table without what it cannot show).
pub fn save_tables(text: &str, family: &str) -> (Vec<TableSeen>, Vec<(String, String)>) {
    let mut tables: Vec<TableSeen> = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('*') {
            tables.push(TableSeen {
                family: family.to_string(),
                name: name.trim().to_string(),
                chains: Vec::new(),
                policy_not_accept: false,
            });
        } else if let Some(rest) = line.strip_prefix("# Table `") {
            if line.contains("incompatible") {
                if let Some((name, _)) = rest.split_once('\'') {
                    bad.push((family.to_string(), name.to_string()));
                }
            }
        } else if let Some(rest) = line.strip_prefix(':') {
            let mut words = rest.split_whitespace();
            if let (Some(t), Some(chain)) = (tables.last_mut(), words.next()) {
                let policy = words.next().unwrap_or("-");
                t.policy_not_accept |= policy != "-" && policy != "ACCEPT";
                t.chains.push((chain.to_string(), 0));
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split_whitespace().next().unwrap_or("");
            if let Some(c) = tables
                .last_mut()
                .and_then(|t| t.chains.iter_mut().find(|(n, _)| n == chain))
            {
                c.1 += 1;
            }
        }
    }
    for t in &mut tables {
        t.chains.sort();
    }
    (tables, bad)
}

/// The tables `nft -j list ruleset` lists.
pub fn json_tables(json: &str) -> Result<Vec<TableSeen>, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = doc
        .get("nftables")
        .and_then(serde_json::Value::as_array)
        .ok_or("no `nftables` array")?;
    let mut tables: Vec<TableSeen> = Vec::new();
    let str_of = |o: &serde_json::Value, k: &str| -> String {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for item in items {
        if let Some(t) = item.get("table") {
            tables.push(TableSeen {
                family: str_of(t, "family"),
                name: str_of(t, "name"),
                chains: Vec::new(),
                policy_not_accept: false,
            });
            continue;
        }
        let (obj, is_rule) = match (item.get("chain"), item.get("rule")) {
            (Some(c), _) => (c, false),
            (None, Some(r)) => (r, true),
            (None, None) => continue,
        };
        let (family, table) = (str_of(obj, "family"), str_of(obj, "table"));
        let chain = if is_rule {
            str_of(obj, "chain")
        } else {
            str_of(obj, "name")
        };
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.family == family && t.name == table)
        else {
            return Err(format!(
                "a chain or rule of table `{family} {table}`, which it does not list"
            ));
        };
        if is_rule {
            match t.chains.iter_mut().find(|(n, _)| *n == chain) {
                Some(c) => c.1 += 1,
                None => t.chains.push((chain, 1)),
            }
        } else {
            if obj.get("hook").is_some() {
                let policy = obj
                    .get("policy")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("accept");
                t.policy_not_accept |= policy != "accept";
            }
            if !t.chains.iter().any(|(n, _)| *n == chain) {
                t.chains.push((chain, 0));
            }
        }
    }
    for t in &mut tables {
        t.chains.sort();
    }
    Ok(tables)
}
