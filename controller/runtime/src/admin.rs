//! The admin port (Istio's 15014): `/metrics` (Prometheus text), `/healthz`, `/readyz`, and
//! `/debug/syncz`, `/debug/catalog`, `/debug/problems`, `/debug/bindings` (JSON).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meshfleet_xds::server::AdsServer;
use tokio::net::TcpListener;

use crate::state::State;

#[derive(Clone)]
struct Admin {
    state: Arc<State>,
    ads: AdsServer,
}

/// Serves the admin endpoints on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<State>, ads: AdsServer) {
    if let Err(error) = axum::serve(listener, router(state, ads)).await {
        tracing::error!(%error, "admin server stopped");
    }
}

fn router(state: Arc<State>, ads: AdsServer) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/debug/syncz", get(syncz))
        .route("/debug/catalog", get(catalog))
        .route("/debug/problems", get(problems))
        .route("/debug/bindings", get(bindings))
        .with_state(Admin { state, ads })
}

async fn readyz(Extract(admin): Extract<Admin>) -> (StatusCode, &'static str) {
    if admin.state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
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

async fn metrics(Extract(admin): Extract<Admin>) -> Response {
    let body = render_metrics(&admin);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

fn render_metrics(admin: &Admin) -> String {
    let catalog = admin.state.catalog();
    let endpoints: usize = catalog.services.iter().map(|s| s.endpoint_count()).sum();
    let mut out = String::new();
    let gauges = [
        (
            "meshfleet_catalog_services",
            "Exported global services in the catalog.",
            catalog.services.len() as u64,
        ),
        (
            "meshfleet_catalog_endpoints",
            "Endpoints over all global services and ports.",
            endpoints as u64,
        ),
        (
            "meshfleet_propagation_bindings",
            "ResourceBindings of the last propagation plan.",
            admin.state.bindings().len() as u64,
        ),
        (
            "meshfleet_config_problems",
            "Documents or objects reported as invalid by the last reconcile.",
            admin.state.problems().len() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let name = "meshfleet_reconciles_total";
    let _ = writeln!(
        out,
        "# HELP {name} Catalog rebuilds since start.\n# TYPE {name} counter\n{name} {}",
        admin.state.reconciles()
    );
    admin.ads.metrics().render_prometheus(&mut out);
    out
}
