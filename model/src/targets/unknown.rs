//! What the model knows of targets it keeps verbatim ([`Target::Unknown`](crate::Target)).

/// Names of target extensions that exist in netfilter but that the model does not interpret: a
/// `-j` to one of these is an unknown target, not a jump to an undeclared chain.
pub const OTHER_TARGETS: &[&str] = &[
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNSECMARK",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "NETMAP",
    "NFQUEUE",
    "QUEUE",
    "RATEEST",
    "SECMARK",
    "SET",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TRACE",
    "TTL",
    "ULOG",
    "IPMARK",
    "BALANCE",
];

/// Targets kept verbatim that make the kernel track connections.
pub const CONNTRACK_TARGETS: &[&str] = &["NETMAP", "CONNSECMARK", "CONNLABEL"];
