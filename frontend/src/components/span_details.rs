//! The selected span's details under the timeline or the flame graph: its
//! ids, times, its share of the critical path, and its attributes.

use std::sync::Arc;

use leptos::prelude::*;

use crate::graph::format_ms;
use crate::trace::TraceModel;

#[component]
pub fn SpanDetails(model: Arc<TraceModel>, selected: RwSignal<Option<usize>>) -> impl IntoView {
    move || {
        let i = selected.get()?;
        let span = model.trace.spans.get(i)?;
        let offset = model.tree.start_ms[i] - model.tree.t0;
        let critical: f64 = model.critical[i].iter().map(|(a, b)| b - a).sum();
        let attrs: Vec<(String, String)> = span
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
            <div class="span-details" data-testid="span-details" data-span-id=span.span_id.clone()>
                <h3>{span.service.clone()} " · " {span.operation.clone()}</h3>
                <dl>
                    <dt>"Span"</dt><dd class="mono">{span.span_id.clone()}</dd>
                    <dt>"Parent"</dt><dd class="mono">{span.parent_span_id.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Start"</dt><dd>{format!("+{}", format_ms(offset))}</dd>
                    <dt>"Duration"</dt><dd>{format_ms(span.duration_ms)}</dd>
                    <dt>"Critical path"</dt>
                    <dd data-testid="span-critical">
                        {if critical > 0.0 { format_ms(critical) } else { "—".to_string() }}
                    </dd>
                    {attrs.into_iter().map(|(k, v)| view! { <dt class="mono">{k}</dt><dd class="mono">{v}</dd> }).collect_view()}
                </dl>
            </div>
        })
    }
}
