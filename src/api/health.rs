//! Liveness and readiness for load balancers and orchestrators.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, AppState};

#[derive(Debug, Object)]
pub struct HealthStatus {
    /// `ok` or `degraded`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
}

/// The health report during an outage, in the error shape every endpoint answers then.
#[derive(Debug, Object)]
pub struct HealthDegraded {
    /// `degraded`.
    pub status: String,
    /// `unreachable`.
    pub database: String,
    pub detail: String,
    /// `database_unavailable`, as from every other endpoint during the outage.
    pub code: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<HealthDegraded>),
}

#[derive(Debug, Object)]
pub struct Liveness {
    /// Always `ok`.
    pub status: String,
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// The process answers; touches nothing else (not even the database), so an orchestrator
    /// does not restart the service for a database outage.
    #[oai(path = "/health/live", method = "get", operation_id = "getLiveness")]
    async fn live(&self) -> Json<Liveness> {
        Json(Liveness {
            status: "ok".into(),
        })
    }

    /// Service health
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self, state: Data<&AppState>) -> HealthResponse {
        // Never slower than the deadline every other request gets.
        let timeout = Duration::from_secs(2).min(state.db.deadline());
        if state.db.ping(timeout).await {
            HealthResponse::Ok(Json(HealthStatus {
                status: "ok".into(),
                database: "ok".into(),
            }))
        } else {
            HealthResponse::Unavailable(Json(HealthDegraded {
                status: "degraded".into(),
                database: "unreachable".into(),
                detail: "The database is unavailable, try again shortly".into(),
                code: crate::error::DATABASE_UNAVAILABLE.into(),
            }))
        }
    }
}
