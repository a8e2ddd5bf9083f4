//! The operands of the find/hide language, with Kiali's names and
//! abbreviations: what each one is about (nodes, edges or both) and whether
//! it compares text, compares numbers, or is a flag that takes no value.

/// What an operand reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    // Node text.
    Name,
    App,
    Version,
    Namespace,
    Workload,
    Service,
    /// Kiali's `node`: `app`, `workload`, `service` or `unknown`.
    NodeType,
    // Node numbers.
    HttpIn,
    HttpOut,
    // Node and edge numbers.
    /// A node's inbound rate, an edge's rate.
    Rps,
    /// 5xx share in percent.
    HttpErr,
    // Edge numbers.
    /// The edge's p95 in ms (Kiali's default response-time percentile).
    ResponseTime,
    /// The edge's share of its source's outbound rate, in percent.
    HttpTraffic,
    // Edge text.
    Protocol,
}

/// A unary operand: `sidecar`, `!sidecar`, `mtls`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// The node runs a sidecar: it is neither outside the mesh (`unknown`)
    /// nor a service no workload answered for.
    Sidecar,
    /// Kiali's `trafficsource` (`root`): a node with no inbound edges.
    TrafficSource,
    Healthy,
    Degraded,
    Failure,
    /// No traffic in the window.
    Idle,
    /// Some of the edge's requests went over mutual TLS.
    Mtls,
    /// The edge carried requests in the window.
    Traffic,
}

/// Which elements an operand selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Node,
    Edge,
    /// `%httperr`, `rps`, health flags: the clause's other operands decide;
    /// alone they select both.
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text(Field),
    Number(Field),
    Flag(Flag),
}

#[derive(Clone, Copy, Debug)]
pub struct Operand {
    /// The name and its abbreviations, as Kiali spells them.
    pub names: &'static [&'static str],
    pub kind: Kind,
    pub target: Target,
}

pub const OPERANDS: &[Operand] = &[
    op(&["name"], Kind::Text(Field::Name), Target::Node),
    op(&["app"], Kind::Text(Field::App), Target::Node),
    op(&["version"], Kind::Text(Field::Version), Target::Node),
    op(
        &["namespace", "ns"],
        Kind::Text(Field::Namespace),
        Target::Node,
    ),
    op(
        &["workload", "wl"],
        Kind::Text(Field::Workload),
        Target::Node,
    ),
    op(
        &["service", "svc"],
        Kind::Text(Field::Service),
        Target::Node,
    ),
    op(&["node"], Kind::Text(Field::NodeType), Target::Node),
    op(&["httpin"], Kind::Number(Field::HttpIn), Target::Node),
    op(&["httpout"], Kind::Number(Field::HttpOut), Target::Node),
    op(&["rps", "http"], Kind::Number(Field::Rps), Target::Both),
    op(&["%httperr"], Kind::Number(Field::HttpErr), Target::Both),
    op(
        &["responsetime", "rt"],
        Kind::Number(Field::ResponseTime),
        Target::Edge,
    ),
    op(
        &["%httptraffic"],
        Kind::Number(Field::HttpTraffic),
        Target::Edge,
    ),
    op(&["protocol"], Kind::Text(Field::Protocol), Target::Edge),
    op(&["sidecar"], Kind::Flag(Flag::Sidecar), Target::Node),
    op(
        &["trafficsource", "root"],
        Kind::Flag(Flag::TrafficSource),
        Target::Node,
    ),
    op(&["healthy"], Kind::Flag(Flag::Healthy), Target::Both),
    op(&["degraded"], Kind::Flag(Flag::Degraded), Target::Both),
    op(&["failure"], Kind::Flag(Flag::Failure), Target::Both),
    op(&["idle"], Kind::Flag(Flag::Idle), Target::Both),
    op(&["mtls"], Kind::Flag(Flag::Mtls), Target::Edge),
    op(&["traffic"], Kind::Flag(Flag::Traffic), Target::Edge),
];

const fn op(names: &'static [&'static str], kind: Kind, target: Target) -> Operand {
    Operand {
        names,
        kind,
        target,
    }
}

/// The operand by any of its names, case-insensitively.
pub fn lookup(name: &str) -> Option<&'static Operand> {
    let name = name.to_ascii_lowercase();
    OPERANDS.iter().find(|o| o.names.contains(&name.as_str()))
}

/// `name, app, …` — for the error that an operand is unknown.
pub fn all_names() -> String {
    OPERANDS
        .iter()
        .map(|o| o.names[0])
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_abbreviations_are_found_in_any_case() {
        assert_eq!(lookup("NS").unwrap().kind, Kind::Text(Field::Namespace));
        assert_eq!(
            lookup("rt").unwrap().kind,
            Kind::Number(Field::ResponseTime)
        );
        assert_eq!(lookup("%HttpErr").unwrap().target, Target::Both);
        assert!(lookup("pods").is_none());
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<&str> = OPERANDS
            .iter()
            .flat_map(|o| o.names.iter().copied())
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
