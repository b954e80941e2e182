//! `GET/PUT /api/v1/dashboard/config`: the user's saved layout and
//! preferences, a JSON document of at most 64 KiB.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{ApiError, HttpResponse, json, read_json};
use crate::meta::dashboards_limit;

/// The saved document, or `{}` before anything was saved.
pub async fn get(state: Arc<AppState>, p: Principal) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let doc = state
        .meta
        .get_dashboard(user_id)?
        .unwrap_or_else(|| serde_json::json!({}));
    Ok(json(StatusCode::OK, &doc))
}

/// Replaces the saved document; 413 above 64 KiB, 400 if not a JSON object.
pub async fn put(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let doc: serde_json::Value = read_json(req, dashboards_limit()).await?;
    if !doc.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    state.meta.put_dashboard(user_id, &doc)?;
    Ok(json(StatusCode::OK, &doc))
}
