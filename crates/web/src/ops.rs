//! Operations endpoints: liveness, readiness (the database answers) and Prometheus metrics
//! (for the configured bearer token, or loopback callers when none is set).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

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

/// Whether a caller may read `/metrics`: with a configured token, only a request bearing it
/// (compared in constant time); without one, only a caller on loopback (a scraper on the same
/// host). An unknown peer address (no connection info) is not loopback.
pub fn metrics_allowed(token: Option<&str>, peer: Option<std::net::IpAddr>, authorization: Option<&str>) -> bool {
    match token.filter(|t| !t.is_empty()) {
        Some(t) => {
            let got = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
            let (a, b) = (opchub_app::crypto::sha256_hex(got), opchub_app::crypto::sha256_hex(t));
            a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
        None => peer.is_some_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback(),
            std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        }),
    }
}

pub async fn metrics(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
    if !metrics_allowed(state.config.metrics_token.as_deref(), peer, auth) {
        return ApiError::from(crate::error::HttpError::MetricsTokenRequired).into_response();
    }
    let mut body = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    if let Ok(c) = opchub_app::registry::counts(&state).await {
        body.push_str(&format!(
            "# TYPE opchub_registry_opcs gauge\nopchub_registry_opcs {}\n# TYPE opchub_registry_communities gauge\nopchub_registry_communities {}\n# TYPE opchub_registry_workstations_free gauge\nopchub_registry_workstations_free {}\n",
            c.opcs, c.communities, c.workstations_free
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::metrics_allowed;
    use std::net::IpAddr;

    #[test]
    fn metrics_need_the_token_when_one_is_set_and_loopback_otherwise() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let lo6: IpAddr = "::1".parse().unwrap_or(lo);
        let far: IpAddr = "203.0.113.9".parse().unwrap_or(lo);
        let mapped_far: IpAddr = "::ffff:203.0.113.9".parse().unwrap_or(lo);
        assert!(metrics_allowed(None, Some(lo), None));
        assert!(metrics_allowed(None, Some(lo6), None));
        assert!(!metrics_allowed(None, Some(far), None));
        assert!(!metrics_allowed(None, Some(mapped_far), None));
        assert!(!metrics_allowed(None, None, None));
        assert!(
            !metrics_allowed(Some("s3cret"), Some(lo), None),
            "a token is needed on loopback too"
        );
        assert!(!metrics_allowed(Some("s3cret"), Some(far), Some("Bearer wrong")));
        assert!(metrics_allowed(Some("s3cret"), Some(far), Some("Bearer s3cret")));
    }
}
