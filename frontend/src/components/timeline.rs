//! Jaeger-style trace timeline: one row per span, indented under its
//! parent, a bar placed at the span's start offset and as wide as its
//! duration, coloured per service, with its critical-path sections marked
//! on the bar; clicking a row selects the span.
//!
//! Virtualized: rows have one height and only those in (or near) the
//! viewport are in the DOM, so a 50,000-span trace costs a few dozen rows.

use std::sync::Arc;

use leptos::prelude::*;

use crate::graph::format_ms;
use crate::trace::TraceModel;

/// One row's height in px (`.span-row` in style.css).
pub const ROW_H: f64 = 26.0;
/// Rows drawn above and below the viewport, so a scroll does not show blanks.
const OVERSCAN: usize = 12;
/// The viewport's height before it is measured.
const DEFAULT_VIEWPORT: f64 = 640.0;

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

/// The rows to draw for a scroll position: `first..last` of `n`.
pub fn visible(n: usize, scroll_top: f64, viewport: f64) -> (usize, usize) {
    let first = ((scroll_top / ROW_H).floor().max(0.0) as usize).saturating_sub(OVERSCAN);
    let shown = (viewport / ROW_H).ceil() as usize + 2 * OVERSCAN;
    (first.min(n), (first + shown).min(n))
}

#[component]
pub fn Timeline(model: Arc<TraceModel>, selected: RwSignal<Option<usize>>) -> impl IntoView {
    let total_ms = model.tree.total_ms();
    let n = model.tree.order.len();
    let scroll_top = RwSignal::new(0.0f64);
    let viewport = RwSignal::new(DEFAULT_VIEWPORT);
    let body = NodeRef::<leptos::html::Div>::new();
    let ticks = (0..=4)
        .map(|i| {
            let f = i as f64 / 4.0;
            view! { <span class="tick" style=format!("left:{}%", f * 100.0)>{format_ms(total_ms * f)}</span> }
        })
        .collect_view();

    let m = model.clone();
    let rows = move || {
        let (first, last) = visible(n, scroll_top.get(), viewport.get());
        m.tree.order[first..last]
            .iter()
            .map(|&i| row(&m, i, total_ms, selected))
            .collect_view()
    };
    view! {
        <div class="timeline" data-testid="timeline" data-row-count=n.to_string()>
            <div class="span-row header">
                <div class="span-name">"Service · operation"</div>
                <div class="span-track ticks">{ticks}</div>
            </div>
            <div
                class="timeline-body"
                node_ref=body
                on:scroll=move |_| {
                    if let Some(el) = body.get() {
                        scroll_top.set(el.scroll_top() as f64);
                        viewport.set(el.client_height().max(1) as f64);
                    }
                }
            >
                // The whole list's height, so the scrollbar is true; the
                // drawn rows sit at their offset inside it.
                <div class="timeline-spacer" style=format!("height:{}px", n as f64 * ROW_H)>
                    <div
                        class="timeline-window"
                        style=move || {
                            let (first, _) = visible(n, scroll_top.get(), viewport.get());
                            format!("transform:translateY({}px)", first as f64 * ROW_H)
                        }
                    >
                        {rows}
                    </div>
                </div>
            </div>
        </div>
    }
}

fn row(
    model: &TraceModel,
    i: usize,
    total_ms: f64,
    selected: RwSignal<Option<usize>>,
) -> impl IntoView + use<> {
    let span = &model.trace.spans[i];
    let tree = &model.tree;
    let left = (tree.start_ms[i] - tree.t0) / total_ms * 100.0;
    let width = (span.duration_ms / total_ms * 100.0).max(0.3);
    let colour = service_colour(&span.service);
    let critical = &model.critical[i];
    let segments = critical
        .iter()
        .map(|(a, b)| {
            let l = (a - tree.t0) / total_ms * 100.0;
            let w = ((b - a) / total_ms * 100.0).max(0.2);
            view! { <div class="critical-segment" style=format!("left:{l:.3}%;width:{w:.3}%")></div> }
        })
        .collect_view();
    view! {
        <div
            class="span-row"
            class:selected=move || selected.get() == Some(i)
            class:critical=!critical.is_empty()
            data-testid="span-row"
            data-span-id=span.span_id.clone()
            data-service=span.service.clone()
            data-critical=(!critical.is_empty()).to_string()
            on:click=move |_| selected.set(Some(i))
        >
            <div
                class="span-name"
                style=format!("padding-left:{}px", 8 + tree.depth[i] * 14)
                title=format!("{} {}", span.service, span.operation)
            >
                <span class="service-dot" style=format!("background:{colour}")></span>
                <strong>{span.service.clone()}</strong>
                " "
                <span class="muted">{span.operation.clone()}</span>
            </div>
            <div class="span-track">
                <div class="span-bar" style=format!("left:{left:.3}%;width:{width:.3}%;background:{colour}")></div>
                {segments}
                <span class="span-duration" style=duration_style(left, width)>
                    {format_ms(span.duration_ms)}
                </span>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_near_the_viewport_are_drawn() {
        // 50,000 spans, at the top: the viewport's rows and the overscan.
        let (first, last) = visible(50_000, 0.0, 640.0);
        assert_eq!(first, 0);
        assert_eq!(last, 25 + 2 * OVERSCAN);
        // Scrolled to row 10,000.
        let (first, last) = visible(50_000, 10_000.0 * ROW_H, 640.0);
        assert_eq!(first, 10_000 - OVERSCAN);
        assert!(last - first <= 25 + 2 * OVERSCAN);
        // Past the end, and a short trace.
        assert_eq!(visible(10, 1e9, 640.0), (10, 10));
        assert_eq!(visible(5, 0.0, 640.0), (0, 5));
    }
}
