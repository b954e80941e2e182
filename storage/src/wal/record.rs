//! The WAL record: how one appended batch is laid out on disk, and the
//! decoder that replay, `verify` and the fuzz target share.
//!
//! ```text
//! record  = len:u32 LE | crc:u32 LE | payload[len]
//!           crc = crc32(payload); len <= MAX_RECORD_BYTES
//! payload = lsn:uvarint | tenant:str | first_seq:uvarint | count:uvarint | event*count
//! event   = flags:uvarint (bit i set = optional field i present, order below)
//!         | ts_delta:ivarint      (timestamp minus the previous event's; first: minus 0)
//!         | recv_delta:ivarint    (received_at minus timestamp)
//!         | event_type:str
//!         | [service:str] [endpoint:str] [method:u8 code] [status:uvarint]
//!         | [latency:f64 LE] [severity:u8 code] [request_bytes:uvarint]
//!         | [response_bytes:uvarint] [user_id:str] [region:str] [trace_id:str]
//!         | [message:str]
//!         | attr_count:uvarint | (key:str | tag:u8 | value)*attr_count
//!           tag 0 = str (str), 1 = number (f64 LE), 2 = false, 3 = true
//! str     = len:uvarint | utf8 bytes
//! ```
//! The payload's fixed part (lsn .. count) is written in front of the events,
//! but the events are encoded (and their crc computed) before the LSN is known,
//! outside any lock; the two crcs are combined (`crc32fast::Hasher::combine`).

use crate::codec::{Reader, put_bytes, put_ivarint, put_uvarint};
use crate::error::{Result, StorageError};
use crate::event::{AttrValue, Event, Method, Severity};
use crate::types::{Lsn, Micros, TenantId};

/// Bytes of `len` + `crc` in front of every payload.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Largest payload accepted. A batch is capped far below this by the front
/// door (request bodies are MBs); the cap exists so that a forged length in a
/// damaged file cannot make replay allocate or wait for gigabytes.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// The smallest encoding of one event (flags, two deltas, an empty event
/// type, no attributes): bounds how many events a payload can claim.
const MIN_EVENT_BYTES: usize = 5;

const F_SERVICE: u64 = 1 << 0;
const F_ENDPOINT: u64 = 1 << 1;
const F_METHOD: u64 = 1 << 2;
const F_STATUS: u64 = 1 << 3;
const F_LATENCY: u64 = 1 << 4;
const F_SEVERITY: u64 = 1 << 5;
const F_REQ_BYTES: u64 = 1 << 6;
const F_RESP_BYTES: u64 = 1 << 7;
const F_USER: u64 = 1 << 8;
const F_REGION: u64 = 1 << 9;
const F_TRACE: u64 = 1 << 10;
const F_MESSAGE: u64 = 1 << 11;
const F_ALL: u64 = (1 << 12) - 1;

const TAG_STR: u8 = 0;
const TAG_NUM: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;

/// One decoded record: a batch appended for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub lsn: Lsn,
    pub tenant: TenantId,
    pub first_seq: u64,
    pub events: Vec<Event>,
}

/// The fixed part of a record's payload, readable without its events.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHead {
    pub lsn: Lsn,
    pub tenant: TenantId,
    pub first_seq: u64,
    pub count: u64,
}

/// A record read by `decode_record_unless`: whole, or only its head when
/// the caller did not want its events (replay of a sealed record).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Record(WalRecord),
    Skipped(RecordHead),
}

impl Decoded {
    pub fn lsn(&self) -> Lsn {
        match self {
            Decoded::Record(r) => r.lsn,
            Decoded::Skipped(h) => h.lsn,
        }
    }
    pub fn tenant(&self) -> &TenantId {
        match self {
            Decoded::Record(r) => &r.tenant,
            Decoded::Skipped(h) => &h.tenant,
        }
    }
    pub fn first_seq(&self) -> u64 {
        match self {
            Decoded::Record(r) => r.first_seq,
            Decoded::Skipped(h) => h.first_seq,
        }
    }
    /// One past the last sequence number the record used.
    pub fn end_seq(&self) -> u64 {
        match self {
            Decoded::Record(r) => r.first_seq + r.events.len() as u64,
            Decoded::Skipped(h) => h.first_seq.saturating_add(h.count),
        }
    }
}

/// A batch's events encoded, with their crc, waiting for an LSN.
pub struct EncodedEvents {
    pub bytes: Vec<u8>,
    pub count: u32,
    crc: crc32fast::Hasher,
}

/// Encodes `events` (the part of the payload that does not depend on the LSN).
pub fn encode_events(events: &[Event]) -> EncodedEvents {
    // ~60 bytes is typical for a realistic event without a message.
    let mut out = Vec::with_capacity(events.len() * 96);
    let mut prev_ts = 0i64;
    for e in events {
        encode_event(&mut out, e, prev_ts);
        prev_ts = e.timestamp.0;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    EncodedEvents {
        bytes: out,
        count: events.len() as u32,
        crc,
    }
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode_event(out: &mut Vec<u8>, e: &Event, prev_ts: i64) {
    let flags = (e.service.is_some() as u64 * F_SERVICE)
        | (e.endpoint.is_some() as u64 * F_ENDPOINT)
        | (e.method.is_some() as u64 * F_METHOD)
        | (e.status_code.is_some() as u64 * F_STATUS)
        | (e.latency_ms.is_some() as u64 * F_LATENCY)
        | (e.severity.is_some() as u64 * F_SEVERITY)
        | (e.request_bytes.is_some() as u64 * F_REQ_BYTES)
        | (e.response_bytes.is_some() as u64 * F_RESP_BYTES)
        | (e.user_id.is_some() as u64 * F_USER)
        | (e.region.is_some() as u64 * F_REGION)
        | (e.trace_id.is_some() as u64 * F_TRACE)
        | (e.message.is_some() as u64 * F_MESSAGE);
    put_uvarint(out, flags);
    put_ivarint(out, e.timestamp.0.wrapping_sub(prev_ts));
    put_ivarint(out, e.received_at.0.wrapping_sub(e.timestamp.0));
    put_bytes(out, e.event_type.as_bytes());
    if let Some(s) = &e.service {
        put_bytes(out, s.as_bytes());
    }
    if let Some(s) = &e.endpoint {
        put_bytes(out, s.as_bytes());
    }
    if let Some(m) = e.method {
        out.push(m.code());
    }
    if let Some(s) = e.status_code {
        put_uvarint(out, u64::from(s));
    }
    if let Some(l) = e.latency_ms {
        put_f64(out, l);
    }
    if let Some(s) = e.severity {
        out.push(s.code());
    }
    if let Some(b) = e.request_bytes {
        put_uvarint(out, b);
    }
    if let Some(b) = e.response_bytes {
        put_uvarint(out, b);
    }
    for s in [&e.user_id, &e.region, &e.trace_id, &e.message]
        .into_iter()
        .flatten()
    {
        put_bytes(out, s.as_bytes());
    }
    put_uvarint(out, e.attributes.len() as u64);
    for (k, v) in &e.attributes {
        put_bytes(out, k.as_bytes());
        match v {
            AttrValue::Str(s) => {
                out.push(TAG_STR);
                put_bytes(out, s.as_bytes());
            }
            AttrValue::Num(n) => {
                out.push(TAG_NUM);
                put_f64(out, *n);
            }
            AttrValue::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        }
    }
}

/// Frames a record: returns the bytes that go in front of `events.bytes`
/// (`len`, `crc` and the payload's fixed part). Fails when the batch is too
/// large for one record.
pub fn frame_head(
    lsn: Lsn,
    tenant: &TenantId,
    first_seq: u64,
    events: &EncodedEvents,
) -> Result<Vec<u8>> {
    let mut fixed = Vec::with_capacity(48);
    put_uvarint(&mut fixed, lsn.0);
    put_bytes(&mut fixed, tenant.as_str().as_bytes());
    put_uvarint(&mut fixed, first_seq);
    put_uvarint(&mut fixed, u64::from(events.count));
    let len = fixed.len() + events.bytes.len();
    if len > MAX_RECORD_BYTES {
        return Err(StorageError::invalid(
            "batch",
            format!("encodes to {len} bytes, more than the {MAX_RECORD_BYTES} a record may hold"),
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&fixed);
    crc.combine(&events.crc);
    let mut head = Vec::with_capacity(FRAME_HEADER_BYTES + fixed.len());
    head.extend_from_slice(&(len as u32).to_le_bytes());
    head.extend_from_slice(&crc.finalize().to_le_bytes());
    head.extend_from_slice(&fixed);
    Ok(head)
}

/// Decodes the record at the start of `bytes`. `Ok(None)`: the bytes end
/// before the record does (a torn tail, or more must be read). `Err`: the
/// record is damaged (bad length, checksum or contents). On success, also
/// returns the record's size in bytes.
pub fn decode_record(bytes: &[u8]) -> Result<Option<(WalRecord, usize)>> {
    Ok(
        decode_record_unless(bytes, |_| false)?.and_then(|(d, used)| match d {
            Decoded::Record(r) => Some((r, used)),
            Decoded::Skipped(_) => None,
        }),
    )
}

/// Like `decode_record`, but once the checksum passed and the head is
/// read, a record `skip` selects is returned without decoding its events:
/// replay skips sealed records that way, most of the WAL after a crash
/// under load, for a fraction of the cost. (`check` decodes every record.)
pub fn decode_record_unless(
    bytes: &[u8],
    skip: impl Fn(&RecordHead) -> bool,
) -> Result<Option<(Decoded, usize)>> {
    let Some(len) = frame_len(bytes)? else {
        return Ok(None);
    };
    let payload = &bytes[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
    let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let actual = crc32fast::hash(payload);
    if stored != actual {
        return Err(StorageError::corrupted(
            "wal record",
            "record checksum",
            format!("crc {actual:08x} != stored {stored:08x}"),
        ));
    }
    let record = decode_payload(payload, skip).map_err(|e| match e {
        StorageError::Decode { what, offset } => StorageError::corrupted(
            "wal record",
            format!("payload offset {offset}"),
            format!("cannot decode {what}"),
        ),
        other => other,
    })?;
    Ok(Some((record, FRAME_HEADER_BYTES + len)))
}

/// The payload length of the frame at the start of `bytes`, once all of it
/// is present.
fn frame_len(bytes: &[u8]) -> Result<Option<usize>> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Ok(None);
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(StorageError::corrupted(
            "wal record",
            "record length",
            format!("length {len} outside 1..={MAX_RECORD_BYTES}"),
        ));
    }
    if bytes.len() - FRAME_HEADER_BYTES < len {
        return Ok(None);
    }
    Ok(Some(len))
}

fn decode_payload(payload: &[u8], skip: impl Fn(&RecordHead) -> bool) -> Result<Decoded> {
    let mut r = Reader::new(payload);
    let lsn = Lsn(r.uvarint("lsn")?);
    let tenant_at = r.position();
    let tenant = TenantId::new(r.str("tenant")?).ok_or(StorageError::Decode {
        what: "tenant id",
        offset: tenant_at,
    })?;
    let first_seq = r.uvarint("first_seq")?;
    let count = r.uvarint("event count")?;
    if count > (r.remaining() / MIN_EVENT_BYTES) as u64 {
        return Err(StorageError::Decode {
            what: "event count",
            offset: r.position(),
        });
    }
    let head = RecordHead {
        lsn,
        tenant,
        first_seq,
        count,
    };
    if skip(&head) {
        return Ok(Decoded::Skipped(head));
    }
    let RecordHead {
        lsn,
        tenant,
        first_seq,
        ..
    } = head;
    let mut events = Vec::with_capacity(count as usize);
    let mut prev_ts = 0i64;
    for _ in 0..count {
        let e = decode_event(&mut r, prev_ts)?;
        prev_ts = e.timestamp.0;
        events.push(e);
    }
    if !r.is_empty() {
        return Err(StorageError::Decode {
            what: "trailing bytes",
            offset: r.position(),
        });
    }
    Ok(Decoded::Record(WalRecord {
        lsn,
        tenant,
        first_seq,
        events,
    }))
}

fn opt_str(r: &mut Reader<'_>, flags: u64, bit: u64, what: &'static str) -> Result<Option<String>> {
    Ok(if flags & bit != 0 {
        Some(r.str(what)?.to_owned())
    } else {
        None
    })
}

fn decode_event(r: &mut Reader<'_>, prev_ts: i64) -> Result<Event> {
    let at = r.position();
    let flags = r.uvarint("event flags")?;
    if flags & !F_ALL != 0 {
        return Err(StorageError::Decode {
            what: "event flags",
            offset: at,
        });
    }
    let timestamp = Micros(prev_ts.wrapping_add(r.ivarint("timestamp")?));
    let received_at = Micros(timestamp.0.wrapping_add(r.ivarint("received_at")?));
    let event_type = r.str("event_type")?.to_owned();
    let service = opt_str(r, flags, F_SERVICE, "service")?;
    let endpoint = opt_str(r, flags, F_ENDPOINT, "endpoint")?;
    let method = if flags & F_METHOD != 0 {
        let at = r.position();
        Some(
            Method::from_code(r.u8("method")?).ok_or(StorageError::Decode {
                what: "method",
                offset: at,
            })?,
        )
    } else {
        None
    };
    let status_code = if flags & F_STATUS != 0 {
        let at = r.position();
        let s = r.uvarint("status_code")?;
        Some(u16::try_from(s).map_err(|_| StorageError::Decode {
            what: "status_code",
            offset: at,
        })?)
    } else {
        None
    };
    let latency_ms = if flags & F_LATENCY != 0 {
        Some(r.f64_le("latency_ms")?)
    } else {
        None
    };
    let severity = if flags & F_SEVERITY != 0 {
        let at = r.position();
        Some(
            Severity::from_code(r.u8("severity")?).ok_or(StorageError::Decode {
                what: "severity",
                offset: at,
            })?,
        )
    } else {
        None
    };
    let request_bytes = if flags & F_REQ_BYTES != 0 {
        Some(r.uvarint("request_bytes")?)
    } else {
        None
    };
    let response_bytes = if flags & F_RESP_BYTES != 0 {
        Some(r.uvarint("response_bytes")?)
    } else {
        None
    };
    let user_id = opt_str(r, flags, F_USER, "user_id")?;
    let region = opt_str(r, flags, F_REGION, "region")?;
    let trace_id = opt_str(r, flags, F_TRACE, "trace_id")?;
    let message = opt_str(r, flags, F_MESSAGE, "message")?;
    let n_attrs = r.uvarint("attribute count")?;
    // Each attribute takes at least 2 bytes (empty key, bool tag).
    if n_attrs > (r.remaining() / 2) as u64 {
        return Err(StorageError::Decode {
            what: "attribute count",
            offset: r.position(),
        });
    }
    let mut attributes = Vec::with_capacity(n_attrs as usize);
    for _ in 0..n_attrs {
        let key = r.str("attribute key")?.to_owned();
        let at = r.position();
        let v = match r.u8("attribute tag")? {
            TAG_STR => AttrValue::Str(r.str("attribute value")?.to_owned()),
            TAG_NUM => AttrValue::Num(r.f64_le("attribute value")?),
            TAG_FALSE => AttrValue::Bool(false),
            TAG_TRUE => AttrValue::Bool(true),
            _ => {
                return Err(StorageError::Decode {
                    what: "attribute tag",
                    offset: at,
                });
            }
        };
        attributes.push((key, v));
    }
    Ok(Event {
        id: None,
        timestamp,
        received_at,
        event_type,
        service,
        endpoint,
        method,
        status_code,
        latency_ms,
        severity,
        request_bytes,
        response_bytes,
        user_id,
        region,
        trace_id,
        message,
        attributes,
    })
}

/// Test helper and the simplest writer: a whole record as one buffer.
pub fn encode_record(
    lsn: Lsn,
    tenant: &TenantId,
    first_seq: u64,
    events: &[Event],
) -> Result<Vec<u8>> {
    let enc = encode_events(events);
    let mut out = frame_head(lsn, tenant, first_seq, &enc)?;
    out.extend_from_slice(&enc.bytes);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_event(i: u64) -> Event {
        Event {
            id: None,
            timestamp: Micros(1_795_600_800_000_000 + i as i64 * 1000),
            received_at: Micros(1_795_600_800_000_000 + i as i64 * 1000 + 5),
            event_type: if i.is_multiple_of(7) {
                "error"
            } else {
                "api_call"
            }
            .into(),
            service: Some(format!("svc{}", i % 3)),
            endpoint: i
                .is_multiple_of(2)
                .then(|| "/api/v1/orders/{id}".to_string()),
            method: Some(Method::ALL[(i % 9) as usize]),
            status_code: Some(200 + (i % 4) as u16 * 100),
            latency_ms: Some(i as f64 * 0.25),
            severity: i.is_multiple_of(3).then_some(Severity::Warning),
            request_bytes: Some(i * 10),
            response_bytes: None,
            user_id: Some(format!("u-{i}")),
            region: Some("eu-west-1".into()),
            trace_id: i.is_multiple_of(5).then(|| format!("{i:032x}")),
            message: i.is_multiple_of(11).then(|| "héllo".to_string()),
            attributes: vec![
                ("tier".into(), AttrValue::Str("gold".into())),
                ("items".into(), AttrValue::Num(i as f64)),
                ("retry".into(), AttrValue::Bool(i % 2 == 1)),
            ],
        }
    }

    fn tenant() -> TenantId {
        TenantId::new("t001").unwrap()
    }

    #[test]
    fn records_round_trip() {
        let events: Vec<Event> = (0..50).map(sample_event).collect();
        let bytes = encode_record(Lsn(7), &tenant(), 1234, &events).unwrap();
        let (rec, used) = decode_record(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(rec.lsn, Lsn(7));
        assert_eq!(rec.tenant, tenant());
        assert_eq!(rec.first_seq, 1234);
        assert_eq!(rec.events, events);
    }

    #[test]
    fn a_torn_record_asks_for_more_bytes() {
        let events: Vec<Event> = (0..5).map(sample_event).collect();
        let bytes = encode_record(Lsn(1), &tenant(), 1, &events).unwrap();
        for cut in [0, 3, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_record(&bytes[..cut]).unwrap().is_none(), "cut {cut}");
        }
    }

    #[test]
    fn any_flipped_byte_is_an_error_not_a_panic() {
        let events: Vec<Event> = (0..3).map(sample_event).collect();
        let bytes = encode_record(Lsn(1), &tenant(), 1, &events).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x41;
            // A flip in the length may turn the record into a torn one
            // (Ok(None)); it must never decode as valid.
            if let Ok(Some(_)) = decode_record(&b) {
                panic!("flip at {i} accepted");
            }
        }
    }

    #[test]
    fn forged_counts_do_not_allocate() {
        // A payload claiming 2^60 events with a valid crc.
        let mut payload = Vec::new();
        put_uvarint(&mut payload, 1);
        put_bytes(&mut payload, b"t001");
        put_uvarint(&mut payload, 1);
        put_uvarint(&mut payload, 1 << 60);
        let mut rec = (payload.len() as u32).to_le_bytes().to_vec();
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        assert!(decode_record(&rec).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_record(&bytes);
        }

        #[test]
        fn damaged_records_never_decode_as_something_else(
            n in 1u64..20,
            at in proptest::num::usize::ANY,
            xor in 1u8..=255,
        ) {
            let events: Vec<Event> = (0..n).map(sample_event).collect();
            let mut bytes = encode_record(Lsn(n), &tenant(), n, &events).unwrap();
            let i = at % bytes.len();
            bytes[i] ^= xor;
            proptest::prop_assert!(!matches!(decode_record(&bytes), Ok(Some(_))));
        }
    }
}
