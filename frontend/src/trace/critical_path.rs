//! The critical path of a trace, as Jaeger computes it: the chain of work
//! that the trace's end waited for, as sections of spans.
//!
//! 1. Start at the root (the earliest root span when data is missing).
//! 2. Clip each child to its parent's (clipped) extent: a child that starts
//!    before its parent or ends after it counts only inside it; a child
//!    wholly outside its parent (fire-and-forget work that outlived it) is
//!    dropped with its subtree. Async children — OTLP has no FOLLOWS_FROM,
//!    so a CONSUMER span, the async side of OTel's messaging model — are
//!    dropped too.
//! 3. From a span, take its last-finishing child (LFC): the span alone is
//!    on the path from the LFC's end to the span's end (or to the start of
//!    the child the walk came back from); continue in the LFC.
//! 4. A span without a further child is on the path from its start; then
//!    walk back to its parent, looking for the child that finished last
//!    *before* this span started, and so on until the root's start.
//!
//! The walk is a loop, not recursion, so a deep trace cannot overflow the
//! stack, and it visits each span a bounded number of times.

use loupe_api::traces::Span;

use super::tree::Tree;

/// OTLP `SpanKind` CONSUMER: async work, off the critical path.
const KIND_CONSUMER: i16 = 5;

/// A stretch of one span on the critical path, ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Section {
    /// Index into the trace's spans.
    pub span: usize,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// The sections from the trace's end back to its start (latest first).
pub fn critical_path(spans: &[Span], tree: &Tree) -> Vec<Section> {
    let Some(root) = tree.roots.iter().copied().min_by(|a, b| {
        tree.start_ms[*a]
            .total_cmp(&tree.start_ms[*b])
            .then(tree.end_ms[*b].total_cmp(&tree.end_ms[*a]))
    }) else {
        return Vec::new();
    };
    let n = tree.len();
    // Clipped extents and kept children (latest end first), from the root down.
    let mut start = vec![0.0; n];
    let mut end = vec![0.0; n];
    let mut kept: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut seen = vec![false; n];
    start[root] = tree.start_ms[root];
    end[root] = tree.end_ms[root];
    seen[root] = true;
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in &tree.children[p] {
            if seen[c] || spans[c].kind == KIND_CONSUMER {
                continue;
            }
            let (cs, ce) = (tree.start_ms[c], tree.end_ms[c]);
            let inside = cs >= start[p] && ce <= end[p];
            let overlaps = cs < end[p] && ce > start[p];
            if !inside && !overlaps {
                continue;
            }
            seen[c] = true;
            start[c] = cs.max(start[p]);
            end[c] = ce.min(end[p]);
            kept[p].push(c);
            stack.push(c);
        }
    }
    for list in &mut kept {
        list.sort_by(|a, b| {
            end[*b]
                .total_cmp(&end[*a])
                .then(start[*b].total_cmp(&start[*a]))
        });
    }

    let mut path = Vec::new();
    let mut push = |span: usize, from: f64, to: f64| {
        if to > from {
            path.push(Section {
                span,
                start_ms: from,
                end_ms: to,
            });
        }
    };
    let mut current = root;
    // The start of the child the walk came back from, if it did.
    let mut spawn: Option<f64> = None;
    // Each step goes down to a child or up with an earlier `spawn`; this
    // bound only guards against a bug turning into a hung tab.
    for _ in 0..(4 * n + 4) {
        let until = spawn.unwrap_or(end[current]);
        let lfc = match spawn {
            Some(t) => kept[current].iter().copied().find(|c| end[*c] < t),
            None => kept[current].first().copied(),
        };
        match lfc {
            Some(child) => {
                push(current, end[child], until);
                current = child;
                spawn = None;
            }
            None => {
                push(current, start[current], until);
                match tree.parent[current].filter(|_| current != root) {
                    Some(parent) => {
                        spawn = Some(start[current]);
                        current = parent;
                    }
                    None => break,
                }
            }
        }
    }
    path
}

/// Each span's sections, for drawing: `sections[span]`, oldest first.
pub fn by_span(path: &[Section], spans: usize) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new(); spans];
    for s in path.iter().rev() {
        out[s.span].push((s.start_ms, s.end_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tree::tests::span;

    /// The path as (span id, start, end) in ms after the trace's start.
    fn path(spans: &[Span]) -> Vec<(String, f64, f64)> {
        let tree = Tree::of(spans);
        critical_path(spans, &tree)
            .into_iter()
            .map(|s| {
                (
                    spans[s.span].span_id.clone(),
                    (s.start_ms - tree.t0).round(),
                    (s.end_ms - tree.t0).round(),
                )
            })
            .collect()
    }

    fn sec(id: &str, a: f64, b: f64) -> (String, f64, f64) {
        (id.to_string(), a, b)
    }

    #[test]
    fn a_single_span_is_its_own_path() {
        assert_eq!(path(&[span("r", None, 0.0, 40.0)]), [sec("r", 0.0, 40.0)]);
    }

    #[test]
    fn sequential_children_and_the_gaps_between_them() {
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 10.0, 30.0),
            span("b", Some("r"), 50.0, 40.0),
        ];
        assert_eq!(
            path(&spans),
            [
                sec("r", 90.0, 100.0),
                sec("b", 50.0, 90.0),
                sec("r", 40.0, 50.0),
                sec("a", 10.0, 40.0),
                sec("r", 0.0, 10.0),
            ]
        );
    }

    #[test]
    fn overlapping_children_only_the_last_finishing_counts() {
        // b runs inside a's time: the trace waited for a, not for b.
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 10.0, 70.0),
            span("b", Some("r"), 20.0, 40.0),
        ];
        assert_eq!(
            path(&spans),
            [
                sec("r", 80.0, 100.0),
                sec("a", 10.0, 80.0),
                sec("r", 0.0, 10.0)
            ]
        );
    }

    #[test]
    fn nested_children_cover_the_root_exactly_once() {
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 10.0, 80.0),
            span("a1", Some("a"), 20.0, 30.0),
            span("a2", Some("a"), 60.0, 20.0),
        ];
        let p = path(&spans);
        assert_eq!(
            p,
            [
                sec("r", 90.0, 100.0),
                sec("a", 80.0, 90.0),
                sec("a2", 60.0, 80.0),
                sec("a", 50.0, 60.0),
                sec("a1", 20.0, 50.0),
                sec("a", 10.0, 20.0),
                sec("r", 0.0, 10.0),
            ]
        );
        let covered: f64 = p.iter().map(|s| s.2 - s.1).sum();
        assert_eq!(covered, 100.0);
    }

    #[test]
    fn children_past_their_parent_are_clipped_to_it() {
        // a ends after r (clock skew, or a reply sent before the work ended).
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 50.0, 100.0),
        ];
        assert_eq!(path(&spans), [sec("a", 50.0, 100.0), sec("r", 0.0, 50.0)]);
        // c starts before its parent: only its part inside counts.
        let spans = [
            span("r", None, 0.0, 100.0),
            span("p", Some("r"), 20.0, 60.0),
            span("c", Some("p"), 10.0, 40.0),
        ];
        assert_eq!(
            path(&spans),
            [
                sec("r", 80.0, 100.0),
                sec("p", 50.0, 80.0),
                sec("c", 20.0, 50.0),
                sec("r", 0.0, 20.0),
            ]
        );
    }

    #[test]
    fn async_children_and_work_after_the_parent_ended_are_off_the_path() {
        let mut consumer = span("q", Some("r"), 20.0, 60.0);
        consumer.kind = KIND_CONSUMER;
        let spans = [
            span("r", None, 0.0, 100.0),
            consumer,
            span("late", Some("r"), 150.0, 50.0),
        ];
        assert_eq!(path(&spans), [sec("r", 0.0, 100.0)]);
    }

    #[test]
    fn zero_length_children_do_not_loop() {
        let spans = [
            span("r", None, 0.0, 10.0),
            span("a", Some("r"), 5.0, 0.0),
            span("b", Some("r"), 5.0, 0.0),
        ];
        assert_eq!(path(&spans), [sec("r", 5.0, 10.0), sec("r", 0.0, 5.0)]);
    }

    #[test]
    fn sections_grouped_per_span_oldest_first() {
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 10.0, 30.0),
        ];
        let tree = Tree::of(&spans);
        let p = critical_path(&spans, &tree);
        let by = by_span(&p, 2);
        assert_eq!(by[0].len(), 2);
        assert!(by[0][0].0 < by[0][1].0);
        assert_eq!(by[1].len(), 1);
    }

    #[test]
    fn no_root_no_path() {
        let spans = [
            span("a", Some("b"), 0.0, 1.0),
            span("b", Some("a"), 1.0, 1.0),
        ];
        assert!(path(&spans).is_empty());
    }
}
