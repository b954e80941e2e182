//! The `partial` / `warnings` part of read answers (contract §11): what the
//! store had to leave out because it is damaged.

use pulsestream_storage::DataWarning;
use serde_json::{Map, Value as Json, json};

use super::timeparse::format_rfc3339_millis;

/// The `code` of every warning about damaged data.
pub const DAMAGED_DATA: &str = "damaged_data";

/// `[{"code": "damaged_data", "message", "segment"?, "from"?, "to"?}]`.
pub fn to_json(warnings: &[DataWarning]) -> Json {
    Json::Array(
        warnings
            .iter()
            .map(|w| {
                let mut m = Map::new();
                m.insert("code".into(), json!(DAMAGED_DATA));
                m.insert("message".into(), json!(w.message));
                if let Some(s) = &w.segment {
                    m.insert("segment".into(), json!(s));
                }
                if let Some(t) = w.from {
                    m.insert("from".into(), json!(format_rfc3339_millis(t)));
                }
                if let Some(t) = w.to {
                    m.insert("to".into(), json!(format_rfc3339_millis(t)));
                }
                Json::Object(m)
            })
            .collect(),
    )
}

/// Adds `"partial": true` and the warnings to an answer object when there
/// are any; a complete answer is left as it was.
pub fn annotate(answer: &mut Json, warnings: &[DataWarning]) {
    if warnings.is_empty() {
        return;
    }
    if let Json::Object(m) = answer {
        m.insert("partial".into(), Json::Bool(true));
        m.insert("warnings".into(), to_json(warnings));
    }
}

/// `a` followed by what of `b` is not in it.
pub fn merge(mut a: Vec<DataWarning>, b: Vec<DataWarning>) -> Vec<DataWarning> {
    for w in b {
        if !a.contains(&w) {
            a.push(w);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::Micros;

    fn w(msg: &str) -> DataWarning {
        DataWarning {
            message: msg.into(),
            segment: Some("tenants/t/2026112510/00000000000000000001.seg".into()),
            from: Some(Micros(0)),
            to: None,
        }
    }

    #[test]
    fn warnings_render_the_contract_shape_and_only_when_present() {
        let mut answer = json!({"total": 3});
        annotate(&mut answer, &[]);
        assert_eq!(answer, json!({"total": 3}));
        annotate(&mut answer, &merge(vec![w("a")], vec![w("a"), w("b")]));
        assert_eq!(answer["partial"], json!(true));
        let list = answer["warnings"].as_array().expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["code"], json!("damaged_data"));
        assert_eq!(list[0]["from"], json!("1970-01-01T00:00:00.000Z"));
        assert!(list[0].get("to").is_none());
        assert!(
            list[1]["segment"]
                .as_str()
                .is_some_and(|s| s.ends_with(".seg"))
        );
    }
}
