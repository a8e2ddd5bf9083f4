//! Kubernetes label selectors evaluated as the API server evaluates them
//! (`matchLabels` and `matchExpressions` ANDed), so that which namespaces and
//! pods the webhook configurations select is checked without a cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `selector` selects an object with `labels`. An absent selector
/// (`None`) selects everything, as the webhook configurations' do.
pub fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let value = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An unknown operator is refused by the API server; select nothing.
            _ => false,
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators_match_the_api_servers() {
        let req = |op: &str, values: &[&str]| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
            match_labels: None,
        };
        let set = labels(&[("k", "a")]);
        let unset = labels(&[]);
        assert!(selects(Some(&req("In", &["a"])), &set));
        assert!(!selects(Some(&req("In", &["a"])), &unset));
        assert!(!selects(Some(&req("NotIn", &["a"])), &set));
        assert!(selects(Some(&req("NotIn", &["a"])), &unset));
        assert!(selects(Some(&req("Exists", &[])), &set));
        assert!(selects(Some(&req("DoesNotExist", &[])), &unset));
        assert!(selects(None, &unset));
    }
}
