//! Operations endpoints: liveness, readiness (the database answers) and Prometheus metrics.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if opchub_app::registry::ready(&state).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    if let Ok(c) = opchub_app::registry::counts(&state).await {
        body.push_str(&format!(
            "# TYPE opchub_registry_opcs gauge\nopchub_registry_opcs {}\n# TYPE opchub_registry_communities gauge\nopchub_registry_communities {}\n# TYPE opchub_registry_workstations_free gauge\nopchub_registry_workstations_free {}\n",
            c.opcs, c.communities, c.workstations_free
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
