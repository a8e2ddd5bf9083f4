//! A trace's spans as a tree of indices: parents, children in start order,
//! depth, and the depth-first order the timeline lists them in. Built once
//! per trace, without cloning spans, so a 50,000-span trace costs a few
//! vectors. Spans whose parent is missing (not received) become roots;
//! spans only reachable through a parent cycle (bad data) are listed flat
//! at the end rather than dropped.

use std::collections::HashMap;

use loupe_api::traces::Span;

use crate::time::epoch_ms;

pub struct Tree {
    /// Start and end of each span, ms since the epoch.
    pub start_ms: Vec<f64>,
    pub end_ms: Vec<f64>,
    pub parent: Vec<Option<usize>>,
    /// Each span's children by start time (then span id).
    pub children: Vec<Vec<usize>>,
    /// Roots by start time.
    pub roots: Vec<usize>,
    pub depth: Vec<usize>,
    /// Depth-first, children in start order: the timeline's rows.
    pub order: Vec<usize>,
    /// The trace's first start and last end, ms since the epoch.
    pub t0: f64,
    pub t1: f64,
}

impl Tree {
    pub fn of(spans: &[Span]) -> Tree {
        let n = spans.len();
        let start_ms: Vec<f64> = spans.iter().map(|s| epoch_ms(&s.start)).collect();
        let end_ms: Vec<f64> = spans
            .iter()
            .zip(&start_ms)
            .map(|(s, t)| t + s.duration_ms.max(0.0))
            .collect();
        let index: HashMap<&str, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id.as_str(), i))
            .collect();
        let parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parent_span_id
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .and_then(|p| index.get(p).copied())
                    .filter(|p| *p != i)
            })
            .collect();
        let by_start = |a: &usize, b: &usize| {
            start_ms[*a]
                .total_cmp(&start_ms[*b])
                .then_with(|| spans[*a].span_id.cmp(&spans[*b].span_id))
        };
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, p) in parent.iter().enumerate() {
            match p {
                Some(p) => children[*p].push(i),
                None => roots.push(i),
            }
        }
        for list in &mut children {
            list.sort_by(by_start);
        }
        roots.sort_by(by_start);

        let mut depth = vec![0; n];
        let mut visited = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|r| (*r, 0)).collect();
        while let Some((i, d)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            depth[i] = d;
            order.push(i);
            stack.extend(children[i].iter().rev().map(|c| (*c, d + 1)));
        }
        order.extend((0..n).filter(|i| !visited[*i]));

        let t0 = start_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let t0 = if t0.is_finite() { t0 } else { 0.0 };
        let t1 = end_ms.iter().copied().fold(t0, f64::max);
        Tree {
            start_ms,
            end_ms,
            parent,
            children,
            roots,
            depth,
            order,
            t0,
            t1,
        }
    }

    pub fn len(&self) -> usize {
        self.start_ms.len()
    }

    /// The trace's duration in ms (never zero, so it can divide).
    pub fn total_ms(&self) -> f64 {
        (self.t1 - self.t0).max(0.001)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span `start_ms` after a fixed instant.
    pub fn span(id: &str, parent: Option<&str>, start_ms: f64, dur: f64) -> Span {
        Span {
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            service: format!("svc-{id}"),
            operation: "GET".into(),
            kind: Span::KIND_SERVER,
            start: chrono::DateTime::from_timestamp_micros(
                1_795_612_200_000_000 + (start_ms * 1000.0) as i64,
            )
            .unwrap(),
            duration_ms: dur,
            status_code: 0,
            attributes: Default::default(),
        }
    }

    #[test]
    fn depth_first_in_start_order_with_orphans_as_roots() {
        let spans = [
            span("c2", Some("root"), 20.0, 10.0),
            span("root", None, 0.0, 50.0),
            span("c1", Some("root"), 5.0, 5.0),
            span("g", Some("c2"), 22.0, 3.0),
            span("orphan", Some("missing"), 40.0, 1.0),
        ];
        let t = Tree::of(&spans);
        let ids: Vec<(&str, usize)> = t
            .order
            .iter()
            .map(|i| (spans[*i].span_id.as_str(), t.depth[*i]))
            .collect();
        assert_eq!(
            ids,
            [("root", 0), ("c1", 1), ("c2", 1), ("g", 2), ("orphan", 0)]
        );
        assert_eq!(t.total_ms(), 50.0);
        assert_eq!(t.parent[3], Some(0));
    }

    #[test]
    fn cycles_still_list_every_span() {
        let spans = [
            span("a", Some("b"), 0.0, 1.0),
            span("b", Some("a"), 1.0, 1.0),
        ];
        let t = Tree::of(&spans);
        assert_eq!(t.order.len(), 2);
        assert!(t.roots.is_empty());
    }
}
