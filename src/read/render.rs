//! The wire form of a stored event: a JSON object with `id`, `timestamp` and
//! `received_at` (RFC 3339, milliseconds) and every field the event has, and
//! a CSV row with a fixed column set for export.
//!
//! Written by hand into a caller's buffer rather than through a serde
//! struct: search and export render thousands of events per request, and
//! appending to one buffer costs no allocation per event.

use pulsestream_storage::{AttrValue, Event, EventId, Micros};

use super::timeparse::write_rfc3339_millis;

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            use std::fmt::Write;
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Largest integer-valued float rendered without a fraction: beyond 2^53
/// floats are no longer exact integers.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Appends a number: integer-valued floats as integers (an attribute sent as
/// `3` comes back as `3`), non-finite values (never stored) as `null`.
pub fn write_num(out: &mut String, v: f64) {
    use std::fmt::Write;
    if !v.is_finite() {
        out.push_str("null");
    } else if v.fract() == 0.0 && v.abs() < MAX_EXACT_INT {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn write_time(out: &mut String, t: Micros) {
    out.push('"');
    write_rfc3339_millis(out, t);
    out.push('"');
}

/// The id the event was stored under (or one derived from its time when a
/// source did not set it, which the store always does).
fn id_of(ev: &Event) -> EventId {
    ev.id.unwrap_or(EventId {
        timestamp: ev.timestamp,
        seq: 0,
    })
}

/// Appends `ev` as a JSON object.
pub fn write_event_json(out: &mut String, ev: &Event) {
    use std::fmt::Write;
    let _ = write!(out, "{{\"id\":\"{}\",\"timestamp\":", id_of(ev));
    write_time(out, ev.timestamp);
    out.push_str(",\"received_at\":");
    write_time(out, ev.received_at);
    out.push_str(",\"event_type\":");
    write_json_str(out, &ev.event_type);
    let strings = [
        ("service", &ev.service),
        ("endpoint", &ev.endpoint),
        ("user_id", &ev.user_id),
        ("region", &ev.region),
        ("trace_id", &ev.trace_id),
        ("message", &ev.message),
    ];
    for (name, v) in strings {
        if let Some(v) = v {
            let _ = write!(out, ",\"{name}\":");
            write_json_str(out, v);
        }
    }
    if let Some(m) = ev.method {
        let _ = write!(out, ",\"method\":\"{}\"", m.as_str());
    }
    if let Some(s) = ev.status_code {
        let _ = write!(out, ",\"status_code\":{s}");
    }
    if let Some(l) = ev.latency_ms {
        out.push_str(",\"latency_ms\":");
        write_num(out, l);
    }
    if let Some(s) = ev.severity {
        let _ = write!(out, ",\"severity\":\"{}\"", s.as_str());
    }
    if let Some(b) = ev.request_bytes {
        let _ = write!(out, ",\"request_bytes\":{b}");
    }
    if let Some(b) = ev.response_bytes {
        let _ = write!(out, ",\"response_bytes\":{b}");
    }
    if !ev.attributes.is_empty() {
        out.push_str(",\"attributes\":");
        write_attributes(out, &ev.attributes);
    }
    out.push('}');
}

fn write_attributes(out: &mut String, attrs: &[(String, AttrValue)]) {
    out.push('{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, k);
        out.push(':');
        match v {
            AttrValue::Str(s) => write_json_str(out, s),
            AttrValue::Num(n) => write_num(out, *n),
            AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
    out.push('}');
}

/// Export's CSV columns, in order. Attributes go in one column as a JSON object.
pub const CSV_HEADER: &str = "id,timestamp,received_at,event_type,service,endpoint,method,status_code,latency_ms,severity,request_bytes,response_bytes,user_id,region,trace_id,message,attributes\n";

/// Appends `s` as a CSV field (RFC 4180: quoted when it holds a comma,
/// quote, or line break; quotes doubled).
fn write_csv_field(out: &mut String, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Appends `ev` as one CSV row (with its line end).
pub fn write_event_csv(out: &mut String, ev: &Event) {
    use std::fmt::Write;
    let _ = write!(out, "{},", id_of(ev));
    write_rfc3339_millis(out, ev.timestamp);
    out.push(',');
    write_rfc3339_millis(out, ev.received_at);
    out.push(',');
    write_csv_field(out, &ev.event_type);
    out.push(',');
    let opt = |out: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            write_csv_field(out, v);
        }
        out.push(',');
    };
    opt(out, &ev.service);
    opt(out, &ev.endpoint);
    if let Some(m) = ev.method {
        out.push_str(m.as_str());
    }
    out.push(',');
    if let Some(s) = ev.status_code {
        let _ = write!(out, "{s}");
    }
    out.push(',');
    if let Some(l) = ev.latency_ms {
        write_num(out, l);
    }
    out.push(',');
    if let Some(s) = ev.severity {
        out.push_str(s.as_str());
    }
    out.push(',');
    if let Some(b) = ev.request_bytes {
        let _ = write!(out, "{b}");
    }
    out.push(',');
    if let Some(b) = ev.response_bytes {
        let _ = write!(out, "{b}");
    }
    out.push(',');
    opt(out, &ev.user_id);
    opt(out, &ev.region);
    opt(out, &ev.trace_id);
    opt(out, &ev.message);
    if !ev.attributes.is_empty() {
        let mut a = String::new();
        write_attributes(&mut a, &ev.attributes);
        write_csv_field(out, &a);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::{Method, Severity};

    fn sample() -> Event {
        Event {
            id: Some(EventId {
                timestamp: Micros(1_795_600_800_123_000),
                seq: 7,
            }),
            timestamp: Micros(1_795_600_800_123_000),
            received_at: Micros(1_795_600_801_000_000),
            event_type: "api_call".into(),
            service: Some("check\"out".into()),
            method: Some(Method::Post),
            status_code: Some(201),
            latency_ms: Some(42.5),
            severity: Some(Severity::Info),
            response_bytes: Some(10),
            message: Some("line1\nline2,\u{1}".into()),
            attributes: vec![
                ("n".into(), AttrValue::Num(3.0)),
                ("b".into(), AttrValue::Bool(true)),
                ("s".into(), AttrValue::Str("x".into())),
            ],
            ..Event::default()
        }
    }

    #[test]
    fn json_has_every_present_field() {
        let mut s = String::new();
        write_event_json(&mut s, &sample());
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(v["id"], sample().id.expect("id").to_hex());
        assert_eq!(v["timestamp"], "2026-11-25T10:00:00.123Z");
        assert_eq!(v["received_at"], "2026-11-25T10:00:01.000Z");
        assert_eq!(v["service"], "check\"out");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["status_code"], 201);
        assert_eq!(v["latency_ms"], 42.5);
        assert_eq!(v["message"], "line1\nline2,\u{1}");
        assert_eq!(
            v["attributes"],
            serde_json::json!({"n": 3, "b": true, "s": "x"})
        );
        assert!(v.get("endpoint").is_none());
        assert!(v.get("request_bytes").is_none());
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut s = String::new();
        write_event_csv(&mut s, &sample());
        let cols = CSV_HEADER.trim_end().split(',').count();
        assert!(s.starts_with(&format!(
            "{},2026-11-25T10:00:00.123Z,",
            sample().id.expect("id")
        )));
        assert!(s.contains(",\"check\"\"out\","));
        assert!(s.contains("\"line1\nline2,\u{1}\""));
        assert!(s.ends_with("\"{\"\"n\"\":3,\"\"b\"\":true,\"\"s\"\":\"\"x\"\"}\"\n"));
        // Unquoted commas separate exactly the header's columns.
        let mut in_quotes = false;
        let mut commas = 0;
        for c in s.chars() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => commas += 1,
                _ => {}
            }
        }
        assert_eq!(commas + 1, cols);
    }
}
