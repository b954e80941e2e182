//! `GET /api/v1/dashboard/ws` and `/api/v1/dashboard/ws/{tenant}`: the
//! upgrade (authentication first, so a refused client never gets 101) and
//! one connection's session: its messages in, its queue out, pings and the
//! idle timeout.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pulsestream_storage::{Micros, TenantId};
use serde_json::{Value as Json, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::filter::EventFilter;
use super::hub::{Channels, Client, Refusal, Registration, Subscription};
use crate::app::AppState;
use crate::http::{self, ApiError, HttpResponse};
use crate::read::timeparse::{format_rfc3339_millis, parse_duration};

/// The server pings this often; a browser answers with a pong, which
/// counts as activity.
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// A connection with no frame from the client for this long is closed: a
/// vanished peer must not hold a slot. Three missed pings.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(65);

/// Largest client message: subscriptions and requests are small; this
/// bounds what a client can make the server buffer.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Read buffer of a connection's WebSocket codec. Client messages are
/// small (subscriptions, heartbeats); tungstenite's default of 128 KiB per
/// connection would be 1.25 GiB for 10,000 dashboards. The buffer grows
/// for a larger message (up to `MAX_CLIENT_MESSAGE`).
const READ_BUFFER: usize = 4 * 1024;

/// `get_data` overview window when none is given (the overview API's).
const DEFAULT_OVERVIEW_WINDOW: &str = "1h";

/// Longest overview window `get_data` accepts (the overview API's limit).
const MAX_OVERVIEW_WINDOW_MICROS: i64 = 31 * 86_400 * 1_000_000;

/// The token from `?token=` or `Sec-WebSocket-Protocol: bearer, <token>`,
/// and whether the protocol header carried it (it is then echoed).
fn token_of(req: &Request<Incoming>) -> Option<(String, bool)> {
    let pairs = http::parse_query(req.uri());
    if let Some(t) = http::query_value(&pairs, "token").filter(|t| !t.is_empty()) {
        return Some((t.to_owned(), false));
    }
    let proto = req.headers().get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let mut parts = proto.split(',').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("bearer") {
        return None;
    }
    parts
        .next()
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), true))
}

/// The tenant a connection streams: the token's, or for the platform
/// administrator the one in the path.
fn tenant_of(
    state: &AppState,
    principal: &crate::auth::Principal,
    path_tenant: Option<&str>,
) -> Result<TenantId, ApiError> {
    if principal.is_platform_admin() {
        let Some(t) = path_tenant else {
            return Err(ApiError::forbidden(
                "the platform administrator streams a tenant at /api/v1/dashboard/ws/{tenant_id}",
            ));
        };
        let exists = state.meta.get_tenant(t).map_err(ApiError::from)?.is_some();
        return TenantId::new(t)
            .filter(|_| exists)
            .ok_or_else(|| ApiError::not_found("no such tenant"));
    }
    let own = principal.require_read()?;
    if let Some(t) = path_tenant
        && t != own.as_str()
    {
        return Err(ApiError::forbidden("the tenant is not the token's"));
    }
    Ok(own.tenant().clone())
}

fn header_is(req: &Request<Incoming>, name: hyper::header::HeaderName, want: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(want))
}

/// Authenticates, checks the handshake and the caps, answers 101 and
/// starts the session.
pub async fn upgrade(
    state: Arc<AppState>,
    req: Request<Incoming>,
    path_tenant: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let Some((token, via_protocol)) = token_of(&req) else {
        return Err(ApiError::unauthorized(
            "missing token (?token= or Sec-WebSocket-Protocol: bearer, <token>)",
        ));
    };
    let principal = state.authenticate_jwt(&token)?;
    let tenant = tenant_of(&state, &principal, path_tenant.as_deref())?;

    if !header_is(&req, UPGRADE, "websocket") || !header_is(&req, CONNECTION, "upgrade") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket only",
        ));
    }
    if !header_is(&req, SEC_WEBSOCKET_VERSION, "13") {
        return Err(ApiError::bad_request("Sec-WebSocket-Version must be 13"));
    }
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_request("missing Sec-WebSocket-Key"));
    };
    let accept = derive_accept_key(key.as_bytes());

    let reg = state.live.register(tenant.as_str()).map_err(|r| {
        let what = match r {
            Refusal::Global => "the server has as many live connections as it allows",
            Refusal::Tenant => "the tenant has as many live connections as it allows",
        };
        ApiError::overloaded(5).with_message(what)
    })?;

    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, accept)
        .body(http::full(bytes::Bytes::new()))
        .map_err(ApiError::internal)?;
    if via_protocol {
        resp.headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("bearer"));
    }

    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let cfg = ws_config();
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(cfg),
                )
                .await;
                session(state, tenant, ws, reg).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    Ok(resp)
}

/// The codec settings of a server connection.
fn ws_config() -> WebSocketConfig {
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(MAX_CLIENT_MESSAGE);
    cfg.max_frame_size = Some(MAX_CLIENT_MESSAGE);
    cfg.read_buffer_size = READ_BUFFER;
    // Frames go to the socket as they are queued instead of gathering up
    // to tungstenite's default 128 KiB first: that buffer keeps its
    // capacity, which for 10,000 dashboards in a flood was over 1 GiB.
    cfg.write_buffer_size = 0;
    cfg
}

fn text(v: Json) -> Message {
    Message::text(v.to_string())
}

fn error_msg(message: impl Into<String>) -> Message {
    text(json!({"type": "error", "error": {"code": "bad_message", "message": message.into()}}))
}

/// One connection from welcome to close.
async fn session<S>(
    state: Arc<AppState>,
    tenant: TenantId,
    ws: WebSocketStream<S>,
    mut reg: Registration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(mut rx) = reg.rx.take() else {
        return;
    };
    let client = reg.client.clone();
    let (mut sink, mut stream) = ws.split();
    let welcome = json!({
        "type": "welcome",
        "tenant": tenant.as_str(),
        "server_time": format_rfc3339_millis(Micros::now()),
        "channels": ["events", "metrics", "alerts"],
    });
    if sink.send(text(welcome)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_seen = tokio::time::Instant::now();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                if send_queued(&mut sink, &client, out).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                last_seen = tokio::time::Instant::now();
                let reply = match frame {
                    Some(Ok(Message::Text(t))) => handle(&state, &tenant, &client, t.as_str()).await,
                    Some(Ok(Message::Binary(_))) => Some(error_msg("messages are JSON text frames")),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => None,
                };
                if let Some(r) = reply
                    && sink.send(r).await.is_err()
                {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() >= IDLE_TIMEOUT {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
    drop(rx);
    drop(reg);
}

/// Sends a queued message, preceded by `lagged` when messages were dropped
/// since the last one. (With no write buffer, see `ws_config`, each frame
/// goes to the socket as it is fed: there is nothing to gain from
/// gathering several before a flush.)
async fn send_queued<K>(sink: &mut K, client: &Client, out: Utf8Bytes) -> Result<(), K::Error>
where
    K: futures_util::Sink<Message> + Unpin,
{
    let dropped = client.take_dropped();
    if dropped > 0 {
        sink.feed(text(json!({"type": "lagged", "dropped": dropped})))
            .await?;
    }
    sink.send(Message::Text(out)).await
}

/// Answers one client message (`None`: no answer).
async fn handle(
    state: &Arc<AppState>,
    tenant: &TenantId,
    client: &Arc<Client>,
    raw: &str,
) -> Option<Message> {
    let Ok(msg) = serde_json::from_str::<Json>(raw) else {
        return Some(error_msg("not a JSON object"));
    };
    match msg.get("type").and_then(Json::as_str) {
        Some("subscribe") => Some(subscribe(state, client, &msg)),
        Some("unsubscribe") => {
            let (off, bad) = parse_channels(msg.get("channels"));
            if let Some(b) = bad {
                return Some(error_msg(b));
            }
            let mut s = (*client.subscription()).clone();
            s.channels.events &= !off.events;
            s.channels.metrics &= !off.metrics;
            s.channels.alerts &= !off.alerts;
            let names = s.channels.names();
            state.live.subscribe(client, s);
            Some(text(json!({"type": "unsubscribed", "channels": names})))
        }
        Some("heartbeat") => Some(text(json!({
            "type": "heartbeat_ack",
            "server_time": format_rfc3339_millis(Micros::now()),
        }))),
        Some("get_data") => Some(get_data(state, tenant, &msg).await),
        Some(other) => Some(error_msg(format!("unknown message type `{other}`"))),
        None => Some(error_msg("a message needs a `type`")),
    }
}

/// Channels named in a list; unknown names are an error.
fn parse_channels(v: Option<&Json>) -> (Channels, Option<String>) {
    let mut c = Channels::default();
    let Some(list) = v.and_then(Json::as_array) else {
        return (c, Some("`channels` must be a list".into()));
    };
    for name in list {
        match name.as_str() {
            Some("events") => c.events = true,
            Some("metrics") => c.metrics = true,
            Some("alerts") => c.alerts = true,
            _ => {
                return (
                    c,
                    Some(format!("unknown channel {name} (events, metrics, alerts)")),
                );
            }
        }
    }
    (c, None)
}

fn subscribe(state: &AppState, client: &Client, msg: &Json) -> Message {
    let (channels, bad) = parse_channels(msg.get("channels"));
    if let Some(b) = bad {
        return error_msg(b);
    }
    let filter = match EventFilter::parse(msg.get("filter")) {
        Ok(f) => f,
        Err(e) => return error_msg(e),
    };
    // No filter, `null` and `{}` let everything through: one key for all.
    let filter_key = match msg.get("filter") {
        None | Some(Json::Null) => String::new(),
        Some(Json::Object(o)) if o.is_empty() => String::new(),
        Some(f) => f.to_string(),
    };
    let names = channels.names();
    state.live.subscribe(
        client,
        Subscription {
            channels,
            filter,
            filter_key,
        },
    );
    text(json!({"type": "subscribed", "channels": names}))
}

async fn get_data(state: &Arc<AppState>, tenant: &TenantId, msg: &Json) -> Message {
    match msg.get("what").and_then(Json::as_str) {
        Some("overview") => {
            let window_text = msg
                .get("window")
                .and_then(Json::as_str)
                .unwrap_or(DEFAULT_OVERVIEW_WINDOW);
            let Some(window) =
                parse_duration(window_text).filter(|w| *w > 0 && *w <= MAX_OVERVIEW_WINDOW_MICROS)
            else {
                return error_msg("window must be a duration like 15m, 1h or 24h, at most 31d");
            };
            match crate::handlers::dashboard::overview_data(
                state,
                tenant,
                window_text,
                window,
                Micros::now(),
            )
            .await
            {
                Ok(data) => text(json!({"type": "data", "what": "overview", "data": data})),
                Err(e) => error_msg(e.to_string()),
            }
        }
        _ => error_msg("get_data supports what: overview"),
    }
}
