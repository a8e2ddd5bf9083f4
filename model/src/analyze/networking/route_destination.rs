//! Route destinations, shared by http, tls and tcp routes and mirrors: the
//! host and port of each, the subset its DestinationRule must define, and
//! the weights across a route's destinations.

use super::{Context, Sink};
use crate::networking::Destination;

/// Every destination of one route, then the route's weights together.
pub(super) fn check_all<'a>(
    ctx: &Context<'_>,
    sink: &mut Sink<'_>,
    path: &str,
    route: impl Iterator<Item = (&'a Destination, Option<i32>)>,
    ns: &str,
) {
    let mut weights = Vec::new();
    for (k, (destination, weight)) in route.enumerate() {
        check(
            ctx,
            sink,
            &format!("{path}.route[{k}].destination"),
            destination,
            ns,
        );
        weights.push(weight);
    }
    weights_check(sink, path, &weights);
}

/// Istio splits by weight ÷ sum: negative weights are errors, several
/// destinations all at 0 route nothing (error), a sum other than 100 works
/// but is probably not what was meant (warning).
fn weights_check(sink: &mut Sink<'_>, path: &str, weights: &[Option<i32>]) {
    let mut negative = false;
    for (k, w) in weights.iter().enumerate() {
        if let Some(w) = w.filter(|w| *w < 0) {
            negative = true;
            sink.error(
                format!("{path}.route[{k}].weight"),
                format!(
                    "weight {w} is negative; weights are 0 or more (Istio splits by weight ÷ sum)"
                ),
            );
        }
    }
    if negative || weights.is_empty() {
        return;
    }
    let sum: i64 = weights.iter().map(|w| i64::from(w.unwrap_or(0))).sum();
    if weights.len() > 1 && sum == 0 {
        sink.error(
            format!("{path}.route"),
            format!(
                "all {} destinations have weight 0, so the route sends traffic nowhere; give \
                 the destinations weights that sum to 100",
                weights.len()
            ),
        );
    } else if weights.len() > 1 && sum != 100 {
        let shares: Vec<String> = weights
            .iter()
            .enumerate()
            .map(|(k, w)| {
                format!(
                    "route[{k}] {:.1}%",
                    f64::from(w.unwrap_or(0)) * 100.0 / sum as f64
                )
            })
            .collect();
        sink.warning(
            format!("{path}.route"),
            format!(
                "weights sum to {sum}, not 100; Istio splits by weight ÷ sum ({}). Make them \
                 sum to 100 to say what you mean",
                shares.join(", ")
            ),
        );
    } else if let [Some(w)] = weights
        && *w != 100
        && *w != 0
    {
        sink.warning(
                format!("{path}.route[0].weight"),
                format!("a single destination gets 100% of the traffic whatever its weight; weight {w} has no effect, set 100 or remove it"),
            );
    }
}

pub(super) fn check(ctx: &Context<'_>, sink: &mut Sink<'_>, path: &str, d: &Destination, ns: &str) {
    if d.host.trim().is_empty() {
        sink.error(
            format!("{path}.host"),
            "the destination has no host; name the service, e.g. `reviews`",
        );
        return;
    }
    if let Some(port) = d.port.as_ref().and_then(|p| p.number)
        && !(1..=65535).contains(&port)
    {
        sink.error(
            format!("{path}.port.number"),
            format!("port {port} is outside 1–65535"),
        );
    }
    let Some(subset) = &d.subset else { return };
    let host = ctx.fqdn(&d.host, ns);
    let mut rules = ctx.rules_for(&host).peekable();
    if rules.peek().is_none() {
        sink.error(
            format!("{path}.subset"),
            format!(
                "routes to subset {subset:?} of {host}, but no DestinationRule for that host \
                 exists; create one that defines subset {subset:?}"
            ),
        );
        return;
    }
    let rules: Vec<_> = rules.collect();
    if !rules
        .iter()
        .any(|dr| dr.spec.subsets.iter().any(|s| &s.name == subset))
    {
        let names: Vec<String> = rules
            .iter()
            .map(|dr| format!("{}/{}", dr.metadata.namespace(), dr.metadata.name))
            .collect();
        sink.error(
            format!("{path}.subset"),
            format!(
                "routes to subset {subset:?} of {host}, which no DestinationRule for that host \
                 defines ({} define other subsets); add the subset there or fix the name",
                names.join(", ")
            ),
        );
    }
}
