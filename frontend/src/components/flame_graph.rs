//! A trace's flame graph on one `<canvas>`: a bar per span, its row the
//! span's depth (roots on top), its width the span's duration, coloured per
//! service; the critical path is a white band along the bars it runs
//! through. One element whatever the span count, so a 50,000-span trace
//! draws in one pass without 50,000 DOM nodes. A click selects the bar
//! under the pointer ([`crate::trace::flame::Flame::hit`]).

use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::CanvasRenderingContext2d;

use crate::components::timeline::service_colour;
use crate::trace::TraceModel;

/// A row's height in CSS px, shrunk for very deep traces so the canvas
/// stays within what browsers allocate.
fn row_height(rows: usize) -> f64 {
    const MAX_CANVAS_H: f64 = 16_000.0;
    (MAX_CANVAS_H / rows.max(1) as f64).clamp(2.0, 20.0)
}

#[component]
pub fn FlameGraph(model: Arc<TraceModel>, selected: RwSignal<Option<usize>>) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let rows = model.flame.rows.len();
    let row_h = row_height(rows);
    let height = (rows as f64 * row_h).ceil().max(row_h);
    let critical_spans = model.critical_spans();

    let m = model.clone();
    // Redrawn when the canvas mounts and when the selection changes.
    Effect::new(move |_| {
        let sel = selected.get();
        let Some(el) = canvas.get() else { return };
        let css_w = f64::from(el.client_width().max(320));
        let dpr = web_sys::window()
            .map_or(1.0, |w| w.device_pixel_ratio())
            .max(1.0);
        el.set_width((css_w * dpr) as u32);
        el.set_height((height * dpr) as u32);
        let Some(ctx) = el
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        let _ = ctx.scale(dpr, dpr);
        draw(&ctx, &m, css_w, row_h, sel);
    });

    let m = model.clone();
    let on_click = move |ev: leptos::ev::MouseEvent| {
        let Some(el) = canvas.get() else { return };
        let w = f64::from(el.client_width().max(1));
        let row = (f64::from(ev.offset_y()) / row_h).floor().max(0.0) as usize;
        let x = f64::from(ev.offset_x()) / w;
        // Half a pixel either side, so sub-pixel bars can be clicked.
        if let Some(i) = m.flame.hit(&m.tree, row, x, 0.5 / w) {
            selected.set(Some(i));
        }
    };

    view! {
        <div class="flame-legend">
            "Width is duration, depth the parent chain; the white band is the critical path (what the trace's end waited for). Click a bar for its span."
        </div>
        <div class="flame-scroll">
            <canvas
                class="flame-graph"
                data-testid="flame-graph"
                node_ref=canvas
                data-bar-count=model.trace.spans.len().to_string()
                data-row-count=rows.to_string()
                data-row-height=row_h.to_string()
                data-critical-spans=critical_spans.to_string()
                style=format!("height:{height}px")
                on:click=on_click
            ></canvas>
        </div>
    }
}

fn draw(
    ctx: &CanvasRenderingContext2d,
    m: &TraceModel,
    width: f64,
    row_h: f64,
    sel: Option<usize>,
) {
    let (tree, flame) = (&m.tree, &m.flame);
    let scale = width / flame.total_ms;
    ctx.clear_rect(0.0, 0.0, width, flame.rows.len() as f64 * row_h);
    let gap = if row_h >= 6.0 { 1.0 } else { 0.0 };
    let labels = row_h >= 12.0;
    ctx.set_font("11px system-ui, sans-serif");
    ctx.set_text_baseline("middle");
    for (depth, row) in flame.rows.iter().enumerate() {
        let y = depth as f64 * row_h;
        // Bars thinner than a pixel that land on the same pixel are drawn once.
        let mut last_px = f64::NEG_INFINITY;
        for &i in row {
            let x = (tree.start_ms[i] - flame.t0) * scale;
            let w = (tree.end_ms[i] - tree.start_ms[i]) * scale;
            if w < 1.0 && x.floor() == last_px {
                continue;
            }
            last_px = x.floor();
            let span = &m.trace.spans[i];
            ctx.set_fill_style_str(service_colour(&span.service));
            ctx.fill_rect(x, y, w.max(1.0), row_h - gap);
            for (a, b) in &m.critical[i] {
                let cx = (a - flame.t0) * scale;
                let cw = ((b - a) * scale).max(1.0);
                ctx.set_fill_style_str("#ffffff");
                ctx.fill_rect(
                    cx,
                    y + row_h - gap - (row_h / 4.0).max(1.0),
                    cw,
                    (row_h / 4.0).max(1.0),
                );
            }
            if labels && w > 48.0 {
                let text = format!("{} {}", span.service, span.operation);
                let fits = ((w - 8.0) / 6.5).floor() as usize;
                let text: String = if text.chars().count() > fits {
                    text.chars()
                        .take(fits.saturating_sub(1))
                        .chain(['…'])
                        .collect()
                } else {
                    text
                };
                ctx.set_fill_style_str("#0b0c10");
                let _ = ctx.fill_text(&text, x + 4.0, y + (row_h - gap) / 2.0 - 1.0);
            }
        }
    }
    if let Some(i) = sel.filter(|i| *i < tree.len()) {
        let x = (tree.start_ms[i] - flame.t0) * scale;
        let w = ((tree.end_ms[i] - tree.start_ms[i]) * scale).max(1.0);
        ctx.set_stroke_style_str("#ffd84a");
        ctx.set_line_width(2.0);
        ctx.stroke_rect(
            x + 1.0,
            tree.depth[i] as f64 * row_h + 1.0,
            (w - 2.0).max(1.0),
            row_h - gap - 2.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_traces_get_thinner_rows_within_a_bounded_canvas() {
        assert_eq!(row_height(5), 20.0);
        assert_eq!(row_height(4000), 4.0);
        assert_eq!(row_height(50_000), 2.0);
    }
}
