//! The banner across the top of every page when the console is degraded:
//! its server cannot reach Postgres (`/api/health` answers 503), or the
//! server itself does not answer. It asks on every live tick and goes away
//! by itself once the answer is healthy again.

use leptos::prelude::*;
use loupe_api::mesh::{DatabaseStatus, ServerHealth};

use crate::api::{self, ApiError};
use crate::live::use_graph_tick;

/// What is down, if anything: (`data-down`, the sentence shown).
pub fn what_is_down(
    answer: &Result<ServerHealth, ApiError>,
) -> Option<(&'static str, &'static str)> {
    match answer {
        Ok(h) if h.database == DatabaseStatus::Ok => None,
        Ok(_) => Some((
            "postgres",
            "Postgres is unreachable: the console cannot read the graph, traces or config, nor save changes, until it is back.",
        )),
        Err(_) => Some((
            "console-server",
            "The console server is unreachable: what is shown may be out of date.",
        )),
    }
}

#[component]
pub fn DegradedBanner() -> impl IntoView {
    let tick = use_graph_tick();
    let answer = LocalResource::new(move || {
        tick.track();
        api::health()
    });
    // The last answer, kept while the next one is on its way (so the banner
    // does not blink on every check).
    let down = RwSignal::new(None::<(&'static str, &'static str)>);
    Effect::new(move |_| {
        if let Some(a) = answer.get() {
            down.set(what_is_down(&a));
        }
    });
    move || {
        down.get().map(|(part, sentence)| {
            view! {
                <div class="degraded-banner" role="alert" data-testid="degraded-banner" data-down=part>
                    <strong>"Degraded"</strong>
                    " — "
                    {sentence}
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_api::mesh::ServiceStatus;

    #[test]
    fn the_banner_names_what_is_down() {
        let ok = ServerHealth {
            status: ServiceStatus::Ok,
            database: DatabaseStatus::Ok,
        };
        assert_eq!(what_is_down(&Ok(ok)), None);
        let db = ServerHealth {
            status: ServiceStatus::Unavailable,
            database: DatabaseStatus::Unreachable,
        };
        let (part, sentence) = what_is_down(&Ok(db)).unwrap();
        assert_eq!(part, "postgres");
        assert!(sentence.starts_with("Postgres is unreachable"));
        let gone = ApiError::Network {
            url: "/api/health".into(),
            message: "refused".into(),
        };
        assert_eq!(what_is_down(&Err(gone)).unwrap().0, "console-server");
    }
}
