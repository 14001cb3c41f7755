//! The admin port (Istio's 15014): `/metrics` (OpenMetrics text, via `prometheus-client`), `/healthz`, `/readyz`, and
//! `/debug/syncz`, `/debug/catalog`, `/debug/problems`, `/debug/bindings` (JSON).

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meshfleet_xds::server::AdsServer;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::process::ProcessCollector;
use crate::state::State;

/// The OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Admin {
    state: Arc<State>,
    ads: AdsServer,
    /// What `/metrics` encodes; the metrics in it share their values with the state and the
    /// ADS server.
    registry: Arc<Registry>,
}

/// Serves the admin endpoints on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<State>, ads: AdsServer) {
    if let Err(error) = axum::serve(listener, router(state, ads)).await {
        tracing::error!(%error, "admin server stopped");
    }
}

fn router(state: Arc<State>, ads: AdsServer) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/debug/syncz", get(syncz))
        .route("/debug/catalog", get(catalog))
        .route("/debug/problems", get(problems))
        .route("/debug/bindings", get(bindings))
        .route("/", get(page))
        .route("/api/fleet", get(fleet))
        .route("/api/services", get(services))
        .with_state(Admin {
            registry: Arc::new(registry(&state, &ads)),
            state,
            ads,
        })
}

/// Healthy while every long-running task runs; else 503 naming those that stopped.
async fn healthz(Extract(admin): Extract<Admin>) -> (StatusCode, String) {
    let stopped = admin.state.stopped();
    if stopped.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        let names = stopped.join(", ");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stopped: {names}\n"),
        )
    }
}

async fn readyz(Extract(admin): Extract<Admin>) -> (StatusCode, String) {
    match admin.state.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn syncz(Extract(admin): Extract<Admin>) -> Response {
    Json(admin.ads.status()).into_response()
}

async fn catalog(Extract(admin): Extract<Admin>) -> Response {
    Json(admin.state.catalog()).into_response()
}

async fn problems(Extract(admin): Extract<Admin>) -> Response {
    let problems = admin.state.problems();
    Json(problems.as_slice()).into_response()
}

async fn bindings(Extract(admin): Extract<Admin>) -> Response {
    let bindings = admin.state.bindings();
    let items: Vec<_> = bindings.values().collect();
    Json(serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})).into_response()
}

/// The fleet view (see [`crate::view`]).
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        ],
        crate::view::PAGE,
    )
        .into_response()
}

/// The page loads nothing from elsewhere and runs only its own inline script.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:";

async fn fleet(Extract(admin): Extract<Admin>) -> Response {
    let (state, clients) = (admin.state.clone(), admin.ads.status());
    let built = tokio::task::spawn_blocking(move || {
        crate::view::fleet(
            &state.clusters(),
            &state.catalog(),
            &clients,
            &state.bindings(),
            &state.problems(),
        )
    })
    .await;
    match built {
        Ok(fleet) => Json(fleet).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn services(
    Extract(admin): Extract<Admin>,
    axum::extract::Query(query): axum::extract::Query<crate::view::ServicesQuery>,
) -> Response {
    let (state, clients) = (admin.state.clone(), admin.ads.status());
    let built = tokio::task::spawn_blocking(move || {
        crate::view::services(&state.catalog(), &state.clusters(), &clients, &query)
    })
    .await;
    match built {
        Ok(services) => Json(services).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn metrics(Extract(admin): Extract<Admin>) -> Response {
    let mut body = String::new();
    match encode(&mut body, &admin.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Every metric: the controller's (`meshfleet_*`, `meshfleet_build_info`), the ADS server's
/// (`meshfleet_xds_*` and istiod's `pilot_*` names), and the process's (`process_*`).
fn registry(state: &State, ads: &AdsServer) -> Registry {
    let mut registry = Registry::default();
    let meshfleet = registry.sub_registry_with_prefix("meshfleet");
    state.register_metrics(meshfleet);
    let build = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
    meshfleet.register("build", "meshfleet's build", build);
    ads.register_metrics(&mut registry);
    registry.register_collector(Box::new(ProcessCollector));
    registry
}
