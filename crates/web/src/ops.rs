//! Operations endpoints: liveness, readiness (the database answers) and Prometheus metrics.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    if let Ok(c) = state.store.counts().await {
        body.push_str(&format!(
            "# TYPE opchub_registry_opcs gauge\nopchub_registry_opcs {}\n# TYPE opchub_registry_communities gauge\nopchub_registry_communities {}\n# TYPE opchub_registry_workstations_free gauge\nopchub_registry_workstations_free {}\n",
            c.opcs, c.communities, c.workstations_free
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
