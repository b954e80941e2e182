//! The environment layer of the configuration: the short aliases
//! (`PULSESTREAM_LISTEN`, `PULSESTREAM_ADMIN_PASSWORD`, ...) and the
//! generic `PULSESTREAM_<SECTION>_<KEY>` form for every key.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{Config, ConfigError, parse_duration};
use crate::http::log::LogFormat;

type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// Environment variables and the key each sets.
pub(super) const ENV: &[(&str, &str, Setter)] = &[
    ("PULSESTREAM_LISTEN", "server.listen", |c, v| {
        c.server.listen = parse_addr(v)?;
        Ok(())
    }),
    (
        "PULSESTREAM_MAX_CONNECTIONS",
        "server.max_connections",
        |c, v| {
            c.server.max_connections = parse_num(v)?;
            Ok(())
        },
    ),
    (
        "PULSESTREAM_MAX_BODY_BYTES",
        "server.max_body_bytes",
        |c, v| {
            c.server.max_body_bytes = parse_num(v)?;
            Ok(())
        },
    ),
    (
        "PULSESTREAM_REQUEST_TIMEOUT",
        "server.request_timeout",
        |c, v| {
            c.server.request_timeout = parse_duration(v)?;
            Ok(())
        },
    ),
    ("PULSESTREAM_DATA_DIR", "storage.data_dir", |c, v| {
        c.storage.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("PULSESTREAM_ALLOW_SIGNUP", "auth.allow_signup", |c, v| {
        c.auth.allow_signup = parse_bool(v)?;
        Ok(())
    }),
    (
        "PULSESTREAM_ACCESS_TOKEN_TTL",
        "auth.access_token_ttl",
        |c, v| {
            c.auth.access_token_ttl = parse_duration(v)?;
            Ok(())
        },
    ),
    (
        "PULSESTREAM_REFRESH_TOKEN_TTL",
        "auth.refresh_token_ttl",
        |c, v| {
            c.auth.refresh_token_ttl = parse_duration(v)?;
            Ok(())
        },
    ),
    (
        "PULSESTREAM_ADMIN_PASSWORD",
        "auth.admin_password",
        |c, v| {
            c.auth.admin_password = Some(v.to_owned());
            Ok(())
        },
    ),
    ("PULSESTREAM_LOG_FORMAT", "log.format", |c, v| {
        c.log.format = match v {
            "json" => LogFormat::Json,
            "console" => LogFormat::Console,
            _ => return Err("expected \"json\" or \"console\"".into()),
        };
        Ok(())
    }),
    ("PULSESTREAM_LOG_LEVEL", "log.level", |c, v| {
        c.log.level = v.to_owned();
        Ok(())
    }),
];

/// Sections a generic `PULSESTREAM_<SECTION>_<KEY>` variable can set.
const SECTIONS: &[&str] = &[
    "server", "storage", "auth", "ingest", "limits", "log", "live",
];

/// Maps `PULSESTREAM_<SECTION>_<KEY>` (e.g. `PULSESTREAM_AUTH_ALLOW_SIGNUP`)
/// to a typed TOML value for `section.key`. Variables naming no key are
/// ignored (other tools share the prefix); a bad value for a real key is an
/// error naming it.
pub(super) fn generic_env(
    name: &str,
    raw: &str,
) -> Result<Option<(String, String, toml::Value)>, ConfigError> {
    let Some(rest) = name.strip_prefix("PULSESTREAM_") else {
        return Ok(None);
    };
    let rest = rest.to_ascii_lowercase();
    let Some((section, key)) = SECTIONS
        .iter()
        .find_map(|s| rest.strip_prefix(&format!("{s}_")).map(|k| (*s, k)))
    else {
        return Ok(None);
    };
    // The value's type is whatever the key accepts: try the narrow
    // readings first, the string last.
    let mut candidates = Vec::new();
    if let Ok(i) = raw.trim().parse::<i64>() {
        candidates.push(toml::Value::Integer(i));
    }
    if let Ok(f) = raw.trim().parse::<f64>() {
        candidates.push(toml::Value::Float(f));
    }
    if let Ok(b) = parse_bool(raw) {
        candidates.push(toml::Value::Boolean(b));
    }
    candidates.push(toml::Value::String(raw.to_owned()));
    let mut last_err = String::new();
    for v in candidates {
        let mut inner = toml::Table::new();
        inner.insert(key.to_owned(), v.clone());
        let mut probe = toml::Table::new();
        probe.insert(section.to_owned(), toml::Value::Table(inner));
        match probe.try_into::<Config>() {
            Ok(_) => return Ok(Some((section.to_owned(), key.to_owned(), v))),
            Err(e) if e.to_string().contains("unknown field") => return Ok(None),
            Err(e) => last_err = e.to_string(),
        }
    }
    Err(ConfigError::InvalidEnv {
        key: format!("{section}.{key}"),
        variable: name.to_owned(),
        message: last_err.trim().to_owned(),
    })
}

pub(super) fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("{v:?} is not an address like 127.0.0.1:8080"))
}

fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a valid number"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Overrides;
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn generic_environment_names() {
        let e = env(&[
            ("PULSESTREAM_AUTH_ALLOW_SIGNUP", "true"),
            ("PULSESTREAM_SERVER_MAX_BODY_BYTES", "2048"),
            ("PULSESTREAM_AUTH_ACCESS_TOKEN_TTL", "2m"),
            ("PULSESTREAM_LIMITS_DEFAULT_RETENTION_DAYS", "9"),
            ("PULSESTREAM_UNRELATED_THING", "x"),
            ("PULSESTREAM_SERVER_NO_SUCH_KEY", "x"),
        ]);
        let c = Config::load_from(None, &e, &Overrides::default()).expect("env");
        assert!(c.auth.allow_signup);
        assert_eq!(c.server.max_body_bytes, 2048);
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(120));
        assert_eq!(c.limits.default_retention_days, 9);
        let bad = env(&[("PULSESTREAM_SERVER_MAX_CONNECTIONS", "many")]);
        let err = Config::load_from(None, &bad, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.max_connections"), "{err}");
    }
}
