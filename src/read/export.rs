//! `GET /api/v1/export?format=ndjson|csv`: every event matching a search's
//! filters, streamed with chunked transfer encoding.
//!
//! Memory is bounded whatever the size of the export: a task pages through
//! `Store::search` (newest first, by cursor) one page at a time, each page
//! read and rendered on the blocking pool, and hands each rendered page to
//! the response through a channel of `CHANNEL_PAGES` slots, so at most that
//! many pages wait for a slow client. Waiting for the client holds no
//! thread. When the client goes away the channel closes and the task
//! stops; when it stays but stops reading for `server.write_timeout`, the
//! task gives up too. An export holds a read-gate slot while it runs.
//!
//! Damaged data is left out (contract §11): an NDJSON export ends with one
//! `{"warnings": [...]}` line, a CSV export carries `X-PulseStream-Partial`
//! when the damage was known from the first page.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use pulsestream_storage::query::SearchRequest;
use pulsestream_storage::{Micros, TenantId};
use tokio::sync::mpsc;

use super::filters;
use super::render::{CSV_HEADER, write_event_csv, write_event_json};
use super::search::param_errors;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};

/// Events per store page: large enough that per-page overhead (a search
/// call) is small, small enough that a page is a few hundred KB.
const PAGE_EVENTS: usize = 1000;
/// Rendered pages that may wait for the client.
const CHANNEL_PAGES: usize = 4;
/// Set when damage left data out of the export and it was known before the
/// headers went (contract §11); an NDJSON export also ends with a
/// `{"warnings": [...]}` line.
const PARTIAL_HEADER: &str = "x-pulsestream-partial";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// A response body fed by a channel of chunks.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// One page of events in the export's format.
fn render(format: Format, events: &[pulsestream_storage::Event], header: bool) -> Bytes {
    let mut out = String::with_capacity(64 + events.len() * 400);
    if header && format == Format::Csv {
        out.push_str(CSV_HEADER);
    }
    for ev in events {
        match format {
            Format::Ndjson => {
                write_event_json(&mut out, ev);
                out.push('\n');
            }
            Format::Csv => write_event_csv(&mut out, ev),
        }
    }
    Bytes::from(out)
}

/// Hands one chunk to the response, waiting (without a thread) at most
/// `stall_limit` for room: false when the export must stop because the
/// client went away or read nothing for that long.
async fn deliver(
    state: &AppState,
    tx: &mpsc::Sender<Bytes>,
    chunk: Bytes,
    stall_limit: Duration,
    tenant: &TenantId,
) -> bool {
    match tx.send_timeout(chunk, stall_limit).await {
        Ok(()) => true,
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
            state
                .read_stats
                .exports_stalled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(tenant = %tenant, "export stopped: the client stopped reading");
            false
        }
        Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
    }
}

pub async fn export(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require_read()?;
    let pairs = http::parse_query(req.uri());
    let format = match http::query_value(&pairs, "format").unwrap_or("ndjson") {
        "ndjson" | "jsonl" | "" => Format::Ndjson,
        "csv" => Format::Csv,
        other => {
            return Err(ApiError::invalid_field(
                "format",
                format!("must be ndjson or csv, not `{other}`"),
            ));
        }
    };
    let params = filters::parse_search(&pairs, Micros::now()).map_err(param_errors)?;
    let mut search = SearchRequest {
        tenant: scope.tenant().clone(),
        range: params.range,
        filter: params.filter,
        limit: PAGE_EVENTS,
        cursor: params.cursor,
    };

    // The first page is read before answering, so a store error is still
    // a proper error status rather than a truncated 200.
    let first = super::search::run_search_checked(&state, search.clone()).await?;
    let known_partial = first.is_partial();
    let mut warnings = first.warnings;
    let first = first.value;
    let permit = super::query::enter_read_gate(&state, &search.tenant).await?;
    let stall_limit = state.config.server.write_timeout;

    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_PAGES);
    let st = state.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let tenant = search.tenant.clone();
        let mut cursor = first.next_cursor;
        let chunk = tokio::task::spawn_blocking(move || render(format, &first.events, true)).await;
        let Ok(chunk) = chunk else { return };
        if !deliver(&st, &tx, chunk, stall_limit, &tenant).await {
            return;
        }
        while let Some(c) = cursor {
            search.cursor = Some(c);
            let (store_state, page_req) = (st.clone(), search.clone());
            // One page is read and rendered on the blocking pool; the thread
            // goes back before the page waits for the client.
            let page = tokio::task::spawn_blocking(move || {
                store_state.store.search_checked(&page_req).map(|checked| {
                    let chunk = (!checked.value.events.is_empty())
                        .then(|| render(format, &checked.value.events, false));
                    (checked.warnings, chunk, checked.value.next_cursor)
                })
            })
            .await;
            match page {
                Ok(Ok((page_warnings, chunk, next))) => {
                    if format == Format::Csv && !known_partial {
                        for w in page_warnings.iter().filter(|w| !warnings.contains(w)) {
                            tracing::warn!(tenant = %tenant, warning = %w.message,
                                "CSV export met damaged data after its headers were sent");
                        }
                    }
                    warnings = super::warnings::merge(std::mem::take(&mut warnings), page_warnings);
                    if let Some(chunk) = chunk
                        && !deliver(&st, &tx, chunk, stall_limit, &tenant).await
                    {
                        return; // the client went away or stalled
                    }
                    cursor = next;
                }
                Ok(Err(e)) => {
                    // Headers are sent; all that is left is to cut the stream
                    // short, which the client sees as an incomplete chunked body.
                    tracing::error!(error = %e, tenant = %tenant, "export stopped by a store error");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, tenant = %tenant, "export page task failed");
                    return;
                }
            }
        }
        if format == Format::Ndjson && !warnings.is_empty() {
            let line = format!(
                "{}\n",
                serde_json::json!({ "warnings": super::warnings::to_json(&warnings) })
            );
            deliver(&st, &tx, Bytes::from(line), stall_limit, &tenant).await;
        }
    });

    let (ct, ext) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"events.{ext}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    if known_partial {
        h.insert(PARTIAL_HEADER, HeaderValue::from_static("true"));
    }
    Ok(resp)
}
