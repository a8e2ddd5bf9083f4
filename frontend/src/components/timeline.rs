//! Jaeger-style trace timeline: one row per span, indented under its
//! parent, a bar placed at the span's start offset and as wide as its
//! duration, coloured per service; clicking a row shows its attributes.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;

use loupe_api::traces::{Span, Trace};

use crate::graph::format_ms;
use crate::time::epoch_ms;

/// A span placed on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub span: Span,
    pub depth: usize,
    /// Offset from the trace's first span, in ms.
    pub offset_ms: f64,
}

/// Depth-first order under each root, children by start time. Spans whose
/// parent is missing from the trace (not yet received) become roots.
pub fn rows(trace: &Trace) -> (Vec<Row>, f64) {
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let start = |s: &Span| epoch_ms(&s.start);
    let t0 = trace.spans.iter().map(start).fold(f64::INFINITY, f64::min);
    let t0 = if t0.is_finite() { t0 } else { 0.0 };
    let end = trace
        .spans
        .iter()
        .map(|s| start(s) + s.duration_ms)
        .fold(t0, f64::max);

    let mut children: HashMap<Option<&str>, Vec<&Span>> = HashMap::new();
    for s in &trace.spans {
        let parent = s
            .parent_span_id
            .as_deref()
            .filter(|p| !p.is_empty() && ids.contains(p) && *p != s.span_id);
        children.entry(parent).or_default().push(s);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            start(a)
                .total_cmp(&start(b))
                .then(a.span_id.cmp(&b.span_id))
        });
    }

    let mut out = Vec::with_capacity(trace.spans.len());
    let mut visited: HashSet<&str> = HashSet::new();
    let mut stack: Vec<(&Span, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|s| (*s, 0))
        .collect();
    while let Some((s, depth)) = stack.pop() {
        if !visited.insert(&s.span_id) {
            continue; // a parent cycle in bad data must not loop forever
        }
        out.push(Row {
            span: s.clone(),
            depth,
            offset_ms: start(s) - t0,
        });
        if let Some(kids) = children.get(&Some(s.span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    // Spans only reachable through a cycle: show them flat rather than drop them.
    for s in &trace.spans {
        if !visited.contains(s.span_id.as_str()) {
            out.push(Row {
                span: s.clone(),
                depth: 0,
                offset_ms: start(s) - t0,
            });
        }
    }
    (out, (end - t0).max(0.001))
}

/// Where a span's duration label goes: after the bar, or before it near
/// the right edge.
fn duration_style(left: f64, width: f64) -> String {
    if left + width <= 85.0 {
        format!("left:{:.3}%;padding-left:6px", left + width)
    } else if left >= 12.0 {
        format!("right:{:.3}%;padding-right:6px", 100.0 - left)
    } else {
        // A bar spanning (nearly) the whole trace: the label sits inside it.
        format!(
            "right:{:.3}%;padding-right:6px;color:#0b0c10",
            100.0 - left - width
        )
    }
}

/// A stable colour per service, from a palette that reads on a dark background.
pub fn service_colour(service: &str) -> &'static str {
    // Eleven colours: a prime count spreads FNV hashes of similar names.
    const PALETTE: [&str; 11] = [
        "#4fa3e0", "#f0ab3c", "#6cc06c", "#d46ed4", "#e86a6a", "#47c1b5", "#b7a2ff", "#d9d94a",
        "#ff8fb1", "#8fb3c8", "#f07f3c",
    ];
    let h = service.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ b as u32).wrapping_mul(16_777_619)
    });
    PALETTE[h as usize % PALETTE.len()]
}

#[component]
pub fn Timeline(trace: Trace) -> impl IntoView {
    let (rows, total_ms) = rows(&trace);
    let selected = RwSignal::new(None::<String>);
    let services: Vec<String> = {
        let mut seen = Vec::new();
        for r in &rows {
            if !seen.contains(&r.span.service) {
                seen.push(r.span.service.clone());
            }
        }
        seen
    };
    let ticks = (0..=4)
        .map(|i| {
            let f = i as f64 / 4.0;
            view! { <span class="tick" style=format!("left:{}%", f * 100.0)>{format_ms(total_ms * f)}</span> }
        })
        .collect_view();
    let details_rows = rows.clone();

    let row_views = rows
        .into_iter()
        .map(|row| {
            let left = row.offset_ms / total_ms * 100.0;
            let width = (row.span.duration_ms / total_ms * 100.0).max(0.3);
            let id = row.span.span_id.clone();
            let id2 = id.clone();
            view! {
                <div
                    class="span-row"
                    class:selected=move || selected.get().as_deref() == Some(id.as_str())
                    data-testid="span-row"
                    data-service=row.span.service.clone()
                    on:click=move |_| selected.set(Some(id2.clone()))
                >
                    <div
                        class="span-name"
                        style=format!("padding-left:{}px", 8 + row.depth * 14)
                        title=format!("{} {}", row.span.service, row.span.operation)
                    >
                        <span class="service-dot" style=format!("background:{}", service_colour(&row.span.service))></span>
                        <strong>{row.span.service.clone()}</strong>
                        " "
                        <span class="muted">{row.span.operation.clone()}</span>
                    </div>
                    <div class="span-track">
                        <div
                            class="span-bar"
                            style=format!(
                                "left:{left:.3}%;width:{width:.3}%;background:{}",
                                service_colour(&row.span.service),
                            )
                        ></div>
                        <span
                            class="span-duration"
                            style=duration_style(left, width)
                        >
                            {format_ms(row.span.duration_ms)}
                        </span>
                    </div>
                </div>
            }
        })
        .collect_view();

    let details = move || {
        let id = selected.get()?;
        let row = details_rows.iter().find(|r| r.span.span_id == id)?.clone();
        let attrs: Vec<(String, String)> = row
            .span
            .attributes
            .iter()
            .map(|(k, v)| {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), text)
            })
            .collect();
        Some(view! {
            <div class="span-details" data-testid="span-details">
                <h3>{row.span.service.clone()} " · " {row.span.operation.clone()}</h3>
                <dl>
                    <dt>"Span"</dt><dd class="mono">{row.span.span_id.clone()}</dd>
                    <dt>"Parent"</dt><dd class="mono">{row.span.parent_span_id.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Start"</dt><dd>{format!("+{}", format_ms(row.offset_ms))}</dd>
                    <dt>"Duration"</dt><dd>{format_ms(row.span.duration_ms)}</dd>
                    {attrs.into_iter().map(|(k, v)| view! { <dt class="mono">{k}</dt><dd class="mono">{v}</dd> }).collect_view()}
                </dl>
            </div>
        })
    };

    view! {
        <div class="legend services-legend">
            {services
                .into_iter()
                .map(|s| {
                    view! {
                        <span class="legend-item">
                            <span class="service-dot" style=format!("background:{}", service_colour(&s))></span>
                            {s}
                        </span>
                    }
                })
                .collect_view()}
        </div>
        <div class="timeline" data-testid="timeline">
            <div class="span-row header">
                <div class="span-name">"Service · operation"</div>
                <div class="span-track ticks">{ticks}</div>
            </div>
            {row_views}
        </div>
        {details}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, service: &str, start_ms: u64, dur: f64) -> Span {
        Span {
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            service: service.into(),
            operation: "GET".into(),
            kind: 2,
            start: chrono::DateTime::from_timestamp_millis(1_795_612_200_000 + start_ms as i64)
                .unwrap(),
            duration_ms: dur,
            status_code: 0,
            attributes: Default::default(),
        }
    }

    #[test]
    fn rows_nest_children_under_parents_in_start_order() {
        let trace = Trace {
            trace_id: "t".into(),
            spans: vec![
                span("c2", Some("root"), "reviews", 20, 10.0),
                span("root", None, "productpage", 0, 50.0),
                span("c1", Some("root"), "details", 5, 5.0),
                span("g", Some("c2"), "ratings", 22, 3.0),
                span("orphan", Some("missing"), "ratings", 40, 1.0),
            ],
        };
        let (rows, total) = rows(&trace);
        let order: Vec<(&str, usize)> = rows
            .iter()
            .map(|r| (r.span.span_id.as_str(), r.depth))
            .collect();
        assert_eq!(
            order,
            [("root", 0), ("c1", 1), ("c2", 1), ("g", 2), ("orphan", 0)]
        );
        assert_eq!(total, 50.0);
        assert_eq!(rows[3].offset_ms, 22.0);
    }

    #[test]
    fn parent_cycles_still_show_every_span() {
        let trace = Trace {
            trace_id: "t".into(),
            spans: vec![
                span("a", Some("b"), "x", 0, 1.0),
                span("b", Some("a"), "y", 1, 1.0),
            ],
        };
        assert_eq!(rows(&trace).0.len(), 2);
    }
}
