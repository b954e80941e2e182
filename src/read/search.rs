//! `GET /api/v1/ingestion/events/search`: newest-first events of the
//! caller's tenant, filtered, one page per request with a cursor; and
//! `GET /api/v1/ingestion/events/{id}`: one of them alone.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::query::{SearchRequest, SearchResult, TimeRange};
use pulsestream_storage::{Checked, EventId, Micros};

use super::filters::{self, ParamError};
use super::render::write_event_json;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, FieldError, HttpResponse};

/// A 400 `validation_failed` naming every bad parameter.
pub fn param_errors(errors: Vec<ParamError>) -> ApiError {
    ApiError::validation(
        errors
            .into_iter()
            .map(|e| FieldError::new(e.field, e.message))
            .collect(),
    )
}

/// Runs a search on the blocking pool (the store reads files), admitted by
/// the read gate and stopped at the query deadline like a query.
pub async fn run_search(
    state: &Arc<AppState>,
    req: SearchRequest,
) -> Result<SearchResult, ApiError> {
    run_search_checked(state, req).await.map(|c| c.value)
}

/// Runs a search, admitted by the read gate and bounded like a query, and
/// says what damaged data it had to leave out.
pub async fn run_search_checked(
    state: &Arc<AppState>,
    req: SearchRequest,
) -> Result<Checked<SearchResult>, ApiError> {
    let _permit = super::query::enter_read_gate(state, &req.tenant).await?;
    super::query::run_controlled(state, move |st, control| {
        st.store.search_checked_controlled(&req, control)
    })
    .await
}

pub async fn search(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require_read()?;
    let pairs = http::parse_query(req.uri());
    let params = filters::parse_search(&pairs, Micros::now()).map_err(param_errors)?;
    let checked = run_search_checked(
        &state,
        SearchRequest {
            tenant: scope.tenant().clone(),
            range: params.range,
            filter: params.filter,
            limit: params.limit,
            cursor: params.cursor,
        },
    )
    .await?;
    let result = checked.value;
    let mut out = String::with_capacity(64 + result.events.len() * 400);
    out.push_str("{\"events\":[");
    for (i, ev) in result.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_event_json(&mut out, ev);
    }
    out.push_str("],\"next_cursor\":");
    match result.next_cursor {
        Some(c) => {
            out.push('"');
            out.push_str(&c.to_hex());
            out.push('"');
        }
        None => out.push_str("null"),
    }
    if checked.warnings.is_empty() {
        out.push('}');
    } else {
        out.push_str(",\"partial\":true,\"warnings\":");
        out.push_str(&super::warnings::to_json(&checked.warnings).to_string());
        out.push('}');
    }
    Ok(http::text(StatusCode::OK, "application/json", out))
}

/// `GET /api/v1/ingestion/events/{id}`: the event with that id, if the
/// caller's tenant has it. An id is (timestamp, seq), so this is a search
/// of that one microsecond starting just above the seq.
pub async fn get_event(
    state: Arc<AppState>,
    principal: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require_read()?;
    let missing = || ApiError::not_found("no such event");
    let want = EventId::from_hex(id).ok_or_else(missing)?;
    let (Some(end), Some(above)) = (want.timestamp.0.checked_add(1), want.seq.checked_add(1))
    else {
        return Err(missing());
    };
    let result = run_search(
        &state,
        SearchRequest {
            tenant: scope.tenant().clone(),
            range: TimeRange {
                from: want.timestamp,
                to: Micros(end),
            },
            filter: Vec::new(),
            limit: 1,
            cursor: Some(EventId {
                timestamp: want.timestamp,
                seq: above,
            }),
        },
    )
    .await?;
    let event = result
        .events
        .into_iter()
        .find(|e| e.id == Some(want))
        .ok_or_else(missing)?;
    let mut out = String::with_capacity(512);
    write_event_json(&mut out, &event);
    Ok(http::text(StatusCode::OK, "application/json", out))
}
