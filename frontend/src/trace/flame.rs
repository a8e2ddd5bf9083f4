//! The flame graph's geometry: one bar per span, its row the span's depth
//! (roots on top, as Jaeger's trace flame graph and an icicle chart draw
//! it), its extent the span's time. Rows keep their bars in start order so
//! a click finds its bar by binary search, whatever the span count.

use super::tree::Tree;

pub struct Flame {
    /// Per depth, span indices in start order.
    pub rows: Vec<Vec<usize>>,
    /// The trace's start, ms since the epoch, and its duration.
    pub t0: f64,
    pub total_ms: f64,
}

impl Flame {
    pub fn of(tree: &Tree) -> Flame {
        let depth = tree.order.iter().map(|i| tree.depth[*i]).max().unwrap_or(0);
        let mut rows: Vec<Vec<usize>> =
            vec![Vec::new(); if tree.len() == 0 { 0 } else { depth + 1 }];
        for &i in &tree.order {
            rows[tree.depth[i]].push(i);
        }
        for row in &mut rows {
            row.sort_by(|a, b| tree.start_ms[*a].total_cmp(&tree.start_ms[*b]));
        }
        Flame {
            rows,
            t0: tree.t0,
            total_ms: tree.total_ms(),
        }
    }

    /// The span drawn at `(x, row)`, with `x` in 0..1 of the width; `slack`
    /// (also 0..1) lets a click land on a bar thinner than a pixel.
    pub fn hit(&self, tree: &Tree, row: usize, x: f64, slack: f64) -> Option<usize> {
        let spans = self.rows.get(row)?;
        let t = self.t0 + x * self.total_ms;
        let slack_ms = slack * self.total_ms;
        // Bars in a row can overlap (sibling subtrees at the same depth run
        // concurrently): of the bars under the pointer, the one that started
        // last is drawn on top.
        let after = spans.partition_point(|i| tree.start_ms[*i] <= t + slack_ms);
        spans[..after]
            .iter()
            .rev()
            .find(|i| tree.end_ms[**i] + slack_ms >= t)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tree::tests::span;

    #[test]
    fn rows_are_depths_and_clicks_find_their_bar() {
        let spans = [
            span("r", None, 0.0, 100.0),
            span("a", Some("r"), 10.0, 30.0),
            span("b", Some("r"), 50.0, 40.0),
            span("b1", Some("b"), 60.0, 10.0),
        ];
        let tree = Tree::of(&spans);
        let f = Flame::of(&tree);
        assert_eq!(f.rows, [vec![0], vec![1, 2], vec![3]]);
        assert_eq!(f.hit(&tree, 0, 0.5, 0.0), Some(0));
        assert_eq!(f.hit(&tree, 1, 0.2, 0.0), Some(1));
        assert_eq!(f.hit(&tree, 1, 0.45, 0.0), None);
        assert_eq!(f.hit(&tree, 1, 0.45, 0.06), Some(2));
        assert_eq!(f.hit(&tree, 2, 0.65, 0.0), Some(3));
        assert_eq!(f.hit(&tree, 3, 0.65, 0.0), None);
    }

    #[test]
    fn an_empty_trace_has_no_rows() {
        let tree = Tree::of(&[]);
        assert!(Flame::of(&tree).rows.is_empty());
    }
}
