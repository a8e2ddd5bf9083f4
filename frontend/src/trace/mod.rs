//! A trace's pure parts: its span tree, the critical path (Jaeger's
//! algorithm) and the flame graph's geometry. The timeline and the flame
//! graph components draw from these; nothing here touches the browser.

pub mod critical_path;
pub mod flame;
pub mod tree;

use std::sync::Arc;

use loupe_api::traces::Trace;

/// Everything the trace page draws from, computed once per trace.
pub struct TraceModel {
    pub trace: Trace,
    pub tree: tree::Tree,
    pub flame: flame::Flame,
    /// `critical[span]`: its sections on the critical path, oldest first.
    pub critical: Vec<Vec<(f64, f64)>>,
}

impl TraceModel {
    pub fn of(trace: Trace) -> Arc<TraceModel> {
        let tree = tree::Tree::of(&trace.spans);
        let path = critical_path::critical_path(&trace.spans, &tree);
        let critical = critical_path::by_span(&path, trace.spans.len());
        let flame = flame::Flame::of(&tree);
        Arc::new(TraceModel {
            trace,
            tree,
            flame,
            critical,
        })
    }

    /// How many spans have a section on the critical path.
    pub fn critical_spans(&self) -> usize {
        self.critical.iter().filter(|s| !s.is_empty()).count()
    }
}
