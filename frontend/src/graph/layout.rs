//! Layered layout of the service graph, left to right, the way Kiali's
//! dagre layout reads: callers on the left, callees on the right.
//!
//! Algorithm:
//! 1. Break cycles: a depth-first walk from every node (sources first, in a
//!    stable order) drops edges that point back to a node on the walk's stack.
//! 2. Layer = longest path from a source over the remaining DAG, so every
//!    call goes rightwards and a chain reads as a chain.
//! 3. Versions of one app share a layer (the deepest of them), so `reviews`
//!    v1/v2/v3 stand together even when one version gets no traffic.
//! 4. Order within a layer by the barycentre of the callers' positions
//!    (one sweep left to right), apps kept together, versions sorted.
//! 5. Coordinates: fixed column width, fixed row height, a small gap between
//!    app groups, every column centred vertically on the tallest.
//!
//! Pure data in, pure data out: no DOM, so it is unit tested natively.

use std::collections::{BTreeMap, HashMap};

pub const NODE_W: f64 = 150.0;
pub const NODE_H: f64 = 42.0;
const COL_W: f64 = 300.0;
const ROW_H: f64 = 66.0;
const GROUP_GAP: f64 = 26.0;
const MARGIN: f64 = 40.0;

/// What the layout needs of a node.
#[derive(Clone, Debug)]
pub struct LayoutNode<'a> {
    pub id: &'a str,
    pub app: &'a str,
    pub version: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// A box drawn around the versions of one app in one column.
#[derive(Clone, Debug, PartialEq)]
pub struct AppBox {
    pub app: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Top-left corner of each node's box, by node id.
    pub positions: HashMap<String, Point>,
    pub layers: HashMap<String, usize>,
    pub app_boxes: Vec<AppBox>,
    pub width: f64,
    pub height: f64,
}

pub fn layout(nodes: &[LayoutNode<'_>], edges: &[(&str, &str)]) -> Layout {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let n = nodes.len();
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut in_degree = vec![0usize; n];
    for (s, t) in edges {
        if let (Some(&s), Some(&t)) = (index.get(s), index.get(t))
            && s != t
            && !out_edges[s].contains(&t)
        {
            out_edges[s].push(t);
            in_degree[t] += 1;
        }
    }
    for targets in &mut out_edges {
        targets.sort_by(|a, b| nodes[*a].id.cmp(nodes[*b].id));
    }

    let dag = break_cycles(nodes, &out_edges, &in_degree);
    let mut layer = longest_path_layers(&dag);

    // Versions of one app share the deepest layer among them.
    let mut app_layer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let e = app_layer.entry(node.app).or_insert(0);
        *e = (*e).max(layer[i]);
    }
    for (i, node) in nodes.iter().enumerate() {
        layer[i] = app_layer[node.app];
    }

    let max_layer = layer.iter().copied().max().unwrap_or(0);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); max_layer + 1];
    for (i, &l) in layer.iter().enumerate() {
        columns[l].push(i);
    }

    // Row of each node within its column, refined by barycentre sweep.
    let mut row = vec![0.0f64; n];
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (s, targets) in out_edges.iter().enumerate() {
        for &t in targets {
            predecessors[t].push(s);
        }
    }
    for column in &mut columns {
        // Barycentre per app group, so an app's versions stay adjacent.
        let mut group_score: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for &i in column.iter() {
            let preds: Vec<f64> = predecessors[i]
                .iter()
                .filter(|&&p| layer[p] < layer[i])
                .map(|&p| row[p])
                .collect();
            let e = group_score.entry(nodes[i].app).or_insert((0.0, 0));
            for p in preds {
                e.0 += p;
                e.1 += 1;
            }
        }
        let score = |app: &str| {
            group_score
                .get(app)
                .map(|&(sum, count)| {
                    if count == 0 {
                        f64::MAX
                    } else {
                        sum / count as f64
                    }
                })
                .unwrap_or(f64::MAX)
        };
        column.sort_by(|&a, &b| {
            score(nodes[a].app)
                .total_cmp(&score(nodes[b].app))
                .then_with(|| nodes[a].app.cmp(nodes[b].app))
                .then_with(|| nodes[a].version.cmp(nodes[b].version))
                .then_with(|| nodes[a].id.cmp(nodes[b].id))
        });
        for (r, &i) in column.iter().enumerate() {
            row[i] = r as f64;
        }
    }

    // Column heights, with a gap between app groups.
    let column_offsets: Vec<Vec<f64>> = columns
        .iter()
        .map(|column| {
            let mut y = 0.0;
            let mut prev_app: Option<&str> = None;
            column
                .iter()
                .map(|&i| {
                    if let Some(p) = prev_app
                        && p != nodes[i].app
                    {
                        y += GROUP_GAP;
                    }
                    prev_app = Some(nodes[i].app);
                    let this = y;
                    y += ROW_H;
                    this
                })
                .collect()
        })
        .collect();
    let column_height = |offsets: &Vec<f64>| offsets.last().map(|y| y + NODE_H).unwrap_or(0.0);
    let tallest = column_offsets.iter().map(column_height).fold(0.0, f64::max);

    let mut result = Layout {
        width: MARGIN * 2.0 + max_layer as f64 * COL_W + NODE_W,
        height: MARGIN * 2.0 + tallest,
        ..Layout::default()
    };
    for (l, column) in columns.iter().enumerate() {
        let top = MARGIN + (tallest - column_height(&column_offsets[l])) / 2.0;
        let x = MARGIN + l as f64 * COL_W;
        for (k, &i) in column.iter().enumerate() {
            result.positions.insert(
                nodes[i].id.to_string(),
                Point {
                    x,
                    y: top + column_offsets[l][k],
                },
            );
            result.layers.insert(nodes[i].id.to_string(), l);
        }
        // App boxes around groups of two or more versions.
        let mut k = 0;
        while k < column.len() {
            let app = nodes[column[k]].app;
            let mut end = k;
            while end + 1 < column.len() && nodes[column[end + 1]].app == app {
                end += 1;
            }
            if end > k {
                let y0 = top + column_offsets[l][k];
                let y1 = top + column_offsets[l][end] + NODE_H;
                result.app_boxes.push(AppBox {
                    app: app.to_string(),
                    x: x - 8.0,
                    y: y0 - 20.0,
                    w: NODE_W + 16.0,
                    h: y1 - y0 + 28.0,
                });
            }
            k = end + 1;
        }
    }
    result
}

/// Drops back edges found by a depth-first walk, giving a DAG as adjacency.
fn break_cycles(
    nodes: &[LayoutNode<'_>],
    out_edges: &[Vec<usize>],
    in_degree: &[usize],
) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let n = nodes.len();
    let mut mark = vec![Mark::New; n];
    let mut dag: Vec<Vec<usize>> = vec![Vec::new(); n];
    // Sources first, so the walk follows the direction traffic flows.
    let mut starts: Vec<usize> = (0..n).collect();
    starts.sort_by(|&a, &b| {
        (in_degree[a] > 0)
            .cmp(&(in_degree[b] > 0))
            .then(nodes[a].id.cmp(nodes[b].id))
    });
    for start in starts {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next child index).
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::OnStack;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&t) = out_edges[v].get(*next) {
                *next += 1;
                match mark[t] {
                    Mark::OnStack => {} // back edge: dropped
                    Mark::Done => dag[v].push(t),
                    Mark::New => {
                        dag[v].push(t);
                        mark[t] = Mark::OnStack;
                        stack.push((t, 0));
                    }
                }
            } else {
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
    }
    dag
}

/// Longest path from any source, by Kahn's topological order.
fn longest_path_layers(dag: &[Vec<usize>]) -> Vec<usize> {
    let n = dag.len();
    let mut indegree = vec![0usize; n];
    for targets in dag {
        for &t in targets {
            indegree[t] += 1;
        }
    }
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut layer = vec![0usize; n];
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        for &t in &dag[v] {
            layer[t] = layer[t].max(layer[v] + 1);
            indegree[t] -= 1;
            if indegree[t] == 0 {
                queue.push(t);
            }
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, app: &'a str, version: &'a str) -> LayoutNode<'a> {
        LayoutNode { id, app, version }
    }

    fn bookinfo() -> (Vec<LayoutNode<'static>>, Vec<(&'static str, &'static str)>) {
        let nodes = vec![
            node("gw", "istio-ingressgateway", ""),
            node("pp", "productpage", "v1"),
            node("d", "details", "v1"),
            node("r1", "reviews", "v1"),
            node("r2", "reviews", "v2"),
            node("r3", "reviews", "v3"),
            node("ra", "ratings", "v1"),
        ];
        let edges = vec![
            ("gw", "pp"),
            ("pp", "d"),
            ("pp", "r2"),
            ("pp", "r3"),
            ("r2", "ra"),
            ("r3", "ra"),
        ];
        (nodes, edges)
    }

    #[test]
    fn layers_follow_the_call_chain() {
        let (nodes, edges) = bookinfo();
        let l = layout(&nodes, &edges);
        assert_eq!(l.layers["gw"], 0);
        assert_eq!(l.layers["pp"], 1);
        assert_eq!(l.layers["d"], 2);
        assert_eq!(l.layers["r2"], 2);
        assert_eq!(l.layers["ra"], 3);
        assert!(l.positions["pp"].x < l.positions["r2"].x);
    }

    #[test]
    fn versions_without_traffic_stay_with_their_app() {
        let (nodes, edges) = bookinfo();
        let l = layout(&nodes, &edges);
        // reviews-v1 has no edges at all, yet stands in the reviews column.
        assert_eq!(l.layers["r1"], l.layers["r2"]);
        let ys: Vec<f64> = ["r1", "r2", "r3"]
            .iter()
            .map(|id| l.positions[*id].y)
            .collect();
        assert!(
            ys[0] < ys[1] && ys[1] < ys[2],
            "versions sorted and adjacent: {ys:?}"
        );
        assert_eq!(l.app_boxes.iter().filter(|b| b.app == "reviews").count(), 1);
    }

    #[test]
    fn no_two_nodes_overlap() {
        let (nodes, edges) = bookinfo();
        let l = layout(&nodes, &edges);
        let p: Vec<Point> = l.positions.values().copied().collect();
        for (i, a) in p.iter().enumerate() {
            for b in &p[i + 1..] {
                let apart = (a.x - b.x).abs() >= NODE_W || (a.y - b.y).abs() >= NODE_H;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        for pt in &p {
            assert!(pt.x + NODE_W <= l.width && pt.y + NODE_H <= l.height);
        }
    }

    #[test]
    fn cycles_do_not_hang_or_collapse() {
        let nodes = vec![node("a", "a", ""), node("b", "b", ""), node("c", "c", "")];
        let edges = vec![("a", "b"), ("b", "c"), ("c", "a")];
        let l = layout(&nodes, &edges);
        assert_eq!((l.layers["a"], l.layers["b"], l.layers["c"]), (0, 1, 2));
    }

    #[test]
    fn empty_graph_has_a_size() {
        let l = layout(&[], &[]);
        assert!(l.positions.is_empty());
        assert!(l.width > 0.0 && l.height > 0.0);
    }
}
