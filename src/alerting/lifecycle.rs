//! The alert state machine of one (rule, group): `pending → firing →
//! acknowledged → resolved`, with `for`, `keep_firing_for`,
//! `repeat_interval`, escalation and silences. Pure functions of the
//! alert, the rule, the evaluation result and `now` (epoch microseconds):
//! no clock, no I/O, so every timing rule is unit-tested with made-up times.

use super::model::{Alert, AlertState, NoticeKind};
use super::rules::Rule;

const SEC: i64 = 1_000_000;

/// A notification to queue: why, and to which channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub channels: Vec<String>,
}

/// What one step did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// The alert changed in a way worth persisting.
    pub changed: bool,
    /// A pending alert whose condition stopped holding: forget it (it never
    /// fired, so nobody was told; this is what damps flapping with `for`).
    pub drop: bool,
    pub notices: Vec<Notice>,
}

/// A new pending alert for `group` of `rule`.
pub fn open(
    id: String,
    tenant: &str,
    rule: &Rule,
    group: Vec<(String, Option<String>)>,
    group_key: String,
    now: i64,
) -> Alert {
    let mut a = Alert {
        id,
        tenant: tenant.to_owned(),
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        state: AlertState::Pending,
        severity: rule.severity.clone(),
        group,
        group_key,
        value: None,
        threshold: rule.threshold,
        has_baseline: rule.baseline.is_some(),
        baseline_value: None,
        started_at: now,
        fired_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        silenced: false,
        history: Vec::new(),
        labels: rule.labels.clone(),
        runbook_url: rule.runbook_url.clone(),
        last_true_at: now,
        notified_firing: false,
        last_notified_at: None,
        escalated: vec![false; rule.escalation.len()],
        notified_channels: Vec::new(),
    };
    a.push_history(AlertState::Pending, now, None);
    a
}

fn add_channels(a: &mut Alert, chans: &[String]) {
    for c in chans {
        if !a.notified_channels.contains(c) {
            a.notified_channels.push(c.clone());
        }
    }
}

/// One evaluation of an active alert: `holds` is whether the condition is
/// true now, `silenced` whether an active silence matches it.
pub fn step(a: &mut Alert, rule: &Rule, holds: bool, now: i64, silenced: bool) -> Outcome {
    let mut out = Outcome::default();
    if a.silenced != silenced {
        a.silenced = silenced;
        out.changed = true;
    }
    if holds {
        a.last_true_at = now;
    }
    match a.state {
        AlertState::Pending => {
            if !holds {
                out.drop = true;
                return out;
            }
            if now - a.started_at >= rule.for_secs * SEC {
                a.fired_at = Some(now);
                a.push_history(AlertState::Firing, now, None);
                out.changed = true;
            }
        }
        AlertState::Firing | AlertState::Acknowledged => {
            if !holds && now - a.last_true_at >= rule.keep_firing_secs * SEC {
                resolve(a, now, None, silenced, &mut out);
                return out;
            }
        }
        AlertState::Resolved => return out,
    }
    if a.state != AlertState::Firing || silenced {
        return out;
    }
    if !a.notified_firing {
        a.notified_firing = true;
        a.last_notified_at = Some(now);
        add_channels(a, &rule.channels);
        out.changed = true;
        out.notices.push(Notice {
            kind: NoticeKind::Firing,
            channels: rule.channels.clone(),
        });
    } else if rule.repeat_secs > 0
        && a.last_notified_at
            .is_some_and(|t| now - t >= rule.repeat_secs * SEC)
    {
        a.last_notified_at = Some(now);
        out.changed = true;
        out.notices.push(Notice {
            kind: NoticeKind::Repeat,
            channels: a.notified_channels.clone(),
        });
    }
    let fired = a.fired_at.unwrap_or(a.started_at);
    if a.escalated.len() != rule.escalation.len() {
        a.escalated.resize(rule.escalation.len(), false);
    }
    for (i, s) in rule.escalation.iter().enumerate() {
        if !a.escalated[i] && now - fired >= s.after_secs * SEC {
            a.escalated[i] = true;
            add_channels(a, &s.channels);
            out.changed = true;
            out.notices.push(Notice {
                kind: NoticeKind::Escalation,
                channels: s.channels.clone(),
            });
        }
    }
    out
}

/// Resolves an active alert (condition gone, or by hand with `by`). Whoever
/// was told it fired is told it resolved, unless it is silenced now.
pub fn resolve(a: &mut Alert, now: i64, by: Option<String>, silenced: bool, out: &mut Outcome) {
    if !a.state.is_active() {
        return;
    }
    a.resolved_at = Some(now);
    a.push_history(AlertState::Resolved, now, by);
    out.changed = true;
    if a.notified_firing && !silenced && !a.notified_channels.is_empty() {
        out.notices.push(Notice {
            kind: NoticeKind::Resolved,
            channels: a.notified_channels.clone(),
        });
    }
}

/// Acknowledges a pending or firing alert: no repeats or escalations follow.
/// `false` when the alert is not in a state that can be acknowledged.
pub fn acknowledge(a: &mut Alert, now: i64, by: &str) -> bool {
    if !matches!(a.state, AlertState::Pending | AlertState::Firing) {
        return false;
    }
    a.acknowledged_at = Some(now);
    a.acknowledged_by = Some(by.to_owned());
    a.push_history(AlertState::Acknowledged, now, Some(by.to_owned()));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::compile;
    use serde_json::json;

    const T0: i64 = 1_800_000_000 * SEC;

    fn rule(extra: serde_json::Value) -> Rule {
        let mut base = json!({"name": "r", "channels": ["ch_a"],
            "condition": {"metric": "error_rate", "window": "1m", "op": ">", "threshold": 0.1}});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        compile(&base, "r_1", 0).expect("valid rule")
    }

    fn at(s: i64) -> i64 {
        T0 + s * SEC
    }

    fn kinds(o: &Outcome) -> Vec<NoticeKind> {
        o.notices.iter().map(|n| n.kind).collect()
    }

    fn new_alert(r: &Rule) -> Alert {
        open("a_1".into(), "t", r, vec![], String::new(), at(0))
    }

    #[test]
    fn for_zero_fires_at_once_and_notifies_once() {
        let r = rule(json!({}));
        let mut a = new_alert(&r);
        let o = step(&mut a, &r, true, at(0), false);
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(kinds(&o), vec![NoticeKind::Firing]);
        assert_eq!(o.notices[0].channels, vec!["ch_a".to_owned()]);
        let o = step(&mut a, &r, true, at(1), false);
        assert!(o.notices.is_empty(), "no second notification");
    }

    #[test]
    fn for_waits_and_flapping_never_fires() {
        let r = rule(json!({"for": "30s"}));
        let mut a = new_alert(&r);
        assert!(step(&mut a, &r, true, at(10), false).notices.is_empty());
        assert_eq!(a.state, AlertState::Pending);
        // The condition drops before `for` elapsed: the pending alert goes.
        assert!(step(&mut a, &r, false, at(20), false).drop);

        let mut b = new_alert(&r);
        assert!(step(&mut b, &r, true, at(29), false).notices.is_empty());
        let o = step(&mut b, &r, true, at(30), false);
        assert_eq!(b.state, AlertState::Firing);
        assert_eq!(b.fired_at, Some(at(30)));
        assert_eq!(kinds(&o), vec![NoticeKind::Firing]);
    }

    #[test]
    fn keep_firing_for_rides_out_a_short_dip_then_resolves_and_notifies() {
        let r = rule(json!({"keep_firing_for": "20s"}));
        let mut a = new_alert(&r);
        step(&mut a, &r, true, at(0), false);
        assert!(step(&mut a, &r, false, at(10), false).notices.is_empty());
        assert_eq!(a.state, AlertState::Firing);
        step(&mut a, &r, true, at(15), false);
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(a.state, AlertState::Firing);
        step(&mut a, &r, false, at(34), false);
        assert_eq!(a.state, AlertState::Firing);
        let o = step(&mut a, &r, false, at(35), false);
        assert_eq!(a.state, AlertState::Resolved);
        assert_eq!(a.resolved_at, Some(at(35)));
        assert_eq!(kinds(&o), vec![NoticeKind::Resolved]);
        let states: Vec<_> = a.history.iter().map(|h| h.state).collect();
        assert_eq!(
            states,
            vec![
                AlertState::Pending,
                AlertState::Firing,
                AlertState::Resolved
            ]
        );
    }

    #[test]
    fn repeat_interval_renotifies_until_acknowledged() {
        let r = rule(json!({"repeat_interval": "1m"}));
        let mut a = new_alert(&r);
        step(&mut a, &r, true, at(0), false);
        assert!(step(&mut a, &r, true, at(59), false).notices.is_empty());
        assert_eq!(
            kinds(&step(&mut a, &r, true, at(60), false)),
            vec![NoticeKind::Repeat]
        );
        assert!(step(&mut a, &r, true, at(100), false).notices.is_empty());
        assert!(acknowledge(&mut a, at(110), "oncall@example.com"));
        assert_eq!(a.acknowledged_by.as_deref(), Some("oncall@example.com"));
        assert!(step(&mut a, &r, true, at(500), false).notices.is_empty());
        // Resolution still reaches who was told.
        assert_eq!(
            kinds(&step(&mut a, &r, false, at(501), false)),
            vec![NoticeKind::Resolved]
        );
    }

    #[test]
    fn escalation_notifies_further_channels_while_unacknowledged() {
        let r = rule(
            json!({"escalation": [{"after": "5m", "channels": ["ch_oncall"]},
                                           {"after": "15m", "channels": ["ch_boss"]}]}),
        );
        let mut a = new_alert(&r);
        step(&mut a, &r, true, at(0), false);
        assert!(step(&mut a, &r, true, at(299), false).notices.is_empty());
        let o = step(&mut a, &r, true, at(300), false);
        assert_eq!(kinds(&o), vec![NoticeKind::Escalation]);
        assert_eq!(o.notices[0].channels, vec!["ch_oncall".to_owned()]);
        assert!(step(&mut a, &r, true, at(400), false).notices.is_empty());
        acknowledge(&mut a, at(500), "x@y");
        assert!(step(&mut a, &r, true, at(900), false).notices.is_empty());
        let o = step(&mut a, &r, false, at(901), false);
        assert_eq!(
            o.notices[0].channels,
            vec!["ch_a".to_owned(), "ch_oncall".to_owned()]
        );
    }

    #[test]
    fn silences_hold_back_notifications_until_they_end() {
        let r = rule(json!({}));
        let mut a = new_alert(&r);
        let o = step(&mut a, &r, true, at(0), true);
        assert_eq!(a.state, AlertState::Firing);
        assert!(a.silenced);
        assert!(o.notices.is_empty());
        // Silence over, still firing: now it is told, once.
        let o = step(&mut a, &r, true, at(10), false);
        assert_eq!(kinds(&o), vec![NoticeKind::Firing]);
        assert!(!a.silenced);
    }

    #[test]
    fn an_alert_resolved_while_silenced_before_it_was_told_sends_nothing() {
        let r = rule(json!({}));
        let mut a = new_alert(&r);
        step(&mut a, &r, true, at(0), true);
        let o = step(&mut a, &r, false, at(5), true);
        assert_eq!(a.state, AlertState::Resolved);
        assert!(o.notices.is_empty());
    }
}
