//! The event as the store keeps it: the contract's schema (section 3) with
//! typed core fields and free-form attributes.

use crate::types::{EventId, Micros};

/// One event. Strings are owned; the front door builds these from request
/// bodies, the store encodes them into the WAL and the active segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// Assigned by the store at append (the caller's value is ignored).
    pub id: Option<EventId>,
    pub timestamp: Micros,
    pub received_at: Micros,
    pub event_type: String,
    pub service: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<Method>,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    pub severity: Option<Severity>,
    pub request_bytes: Option<u64>,
    pub response_bytes: Option<u64>,
    pub user_id: Option<String>,
    pub region: Option<String>,
    pub trace_id: Option<String>,
    pub message: Option<String>,
    /// In the order received; keys unique (the front door enforces it).
    pub attributes: Vec<(String, AttrValue)>,
}

impl Event {
    /// The contract's definition of an error: `status_code >= 500`, or
    /// `event_type == "error"` when no status is set.
    pub fn is_error(&self) -> bool {
        is_error(self.status_code, &self.event_type)
    }
}

/// The error rule, shared by row scans, rollups and the rolling windows.
pub fn is_error(status_code: Option<u16>, event_type: &str) -> bool {
    match status_code {
        Some(s) => s >= 500,
        None => event_type == "error",
    }
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Num(f64),
    Bool(bool),
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name { $($variant = $code),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable one-byte code used on disk.
            pub fn code(self) -> u8 { self as u8 }
            pub fn from_code(c: u8) -> Option<$name> {
                match c { $($code => Some($name::$variant),)+ _ => None }
            }
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parses the canonical spelling (case-insensitive).
            pub fn parse(s: &str) -> Option<$name> {
                $(if s.eq_ignore_ascii_case($text) { return Some($name::$variant); })+
                None
            }
        }
    };
}

code_enum!(
    /// HTTP method of an API call.
    Method {
        Get = 1 => "GET",
        Post = 2 => "POST",
        Put = 3 => "PUT",
        Delete = 4 => "DELETE",
        Patch = 5 => "PATCH",
        Head = 6 => "HEAD",
        Options = 7 => "OPTIONS",
        Trace = 8 => "TRACE",
        Connect = 9 => "CONNECT",
    }
);

code_enum!(
    /// Event severity.
    Severity {
        Debug = 1 => "debug",
        Info = 2 => "info",
        Warning = 3 => "warning",
        Error = 4 => "error",
        Critical = 5 => "critical",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_code(m.code()), Some(*m));
            assert_eq!(Method::parse(m.as_str()), Some(*m));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_code(s.code()), Some(*s));
        }
        assert_eq!(Method::from_code(0), None);
        assert_eq!(Severity::parse("loud"), None);
    }

    #[test]
    fn error_rule_follows_the_contract() {
        assert!(is_error(Some(503), "api_call"));
        assert!(!is_error(Some(404), "error"));
        assert!(is_error(None, "error"));
        assert!(!is_error(None, "api_call"));
    }
}
