//! Test data for the benchmarks: realistic events from
//! `../shared/data/gen_events.py`, parsed into the store's `Event`s.
//!
//! `$PULSESTREAM_BENCH_EVENTS` names an NDJSON file; without it each bench
//! uses its own default path, generated on first use with `--seed 42`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pulsestream_storage::{AttrValue, Event, Method, Micros, Severity};

/// The events file: `$PULSESTREAM_BENCH_EVENTS`, else `default`, generated
/// with `events` events when missing (needs python3 and numpy).
pub fn data_path(default: &str, events: u64) -> PathBuf {
    let path = std::env::var("PULSESTREAM_BENCH_EVENTS")
        .map_or_else(|_| PathBuf::from(default), PathBuf::from);
    if !path.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gen_events.py");
        let ok = std::process::Command::new("python3")
            .arg(script)
            .args(["--events", &events.to_string(), "--seed", "42", "--out"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "gen_events.py failed (needs python3 and numpy)");
    }
    path
}

fn parse_time(v: &serde_json::Value) -> Option<Micros> {
    let t =
        time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(Micros((t.unix_timestamp_nanos() / 1_000) as i64))
}

/// One NDJSON line as (tenant, event); `None` for a line that is not an event.
/// `received_at` is the event's timestamp (the generator has no receive time).
pub fn parse_line(line: &str) -> Option<(String, Event)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let int = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let ts = parse_time(v.get("timestamp")?)?;
    let attributes = v
        .get("attributes")
        .and_then(|a| a.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, x)| {
                    let val = match x {
                        serde_json::Value::String(s) => AttrValue::Str(s.clone()),
                        serde_json::Value::Bool(b) => AttrValue::Bool(*b),
                        serde_json::Value::Number(n) => AttrValue::Num(n.as_f64()?),
                        _ => return None,
                    };
                    Some((k.clone(), val))
                })
                .collect()
        })
        .unwrap_or_default();
    let event = Event {
        id: None,
        timestamp: ts,
        received_at: ts,
        event_type: text("event_type")?,
        service: text("service"),
        endpoint: text("endpoint"),
        method: text("method").as_deref().and_then(Method::parse),
        status_code: int("status_code").and_then(|c| u16::try_from(c).ok()),
        latency_ms: v.get("latency_ms").and_then(serde_json::Value::as_f64),
        severity: text("severity").as_deref().and_then(Severity::parse),
        request_bytes: int("request_bytes"),
        response_bytes: int("response_bytes"),
        user_id: text("user_id"),
        region: text("region"),
        trace_id: text("trace_id"),
        message: text("message"),
        attributes,
    };
    Some((text("tenant")?, event))
}
