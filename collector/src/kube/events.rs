//! Kubernetes Events (core/v1) → `k8s_event` records, each occurrence once.
//!
//! An event that repeats is one object whose `count` (or `series.count`) grows, sent again
//! as MODIFIED; a relist after a dropped watch or 410 Expired sends every live event again.
//! [`EventRecorder`] remembers the highest count it has turned into a record per event uid,
//! so a repeat becomes one new record and a relist none. The record id is the uid and the
//! count, so even a recorder that forgot (a restart) names a re-sent occurrence the same.

use super::{k8s_time, object_ref_resource};
use k8s_openapi::api::core::v1::Event;
use model::{Attributes, Record, RecordId, RecordKind, Severity, Timestamp, names};
use std::collections::HashMap;
use std::sync::Arc;

/// Turns watched events into records, each occurrence once.
#[derive(Debug, Default)]
pub struct EventRecorder {
    /// The highest count recorded, per event uid.
    recorded: HashMap<String, i64>,
}

impl EventRecorder {
    /// The record of `event`'s newest occurrence, unless it was already recorded (or the
    /// event has no uid, which no API server sends).
    pub fn applied(&mut self, event: &Event) -> Option<Record> {
        let uid = event.metadata.uid.as_deref()?;
        let count = occurrences(event);
        match self.recorded.get(uid) {
            Some(&seen) if seen >= count => return None,
            _ => {}
        }
        self.recorded.insert(uid.to_string(), count);
        Some(record(event, uid, count))
    }

    /// Forgets a deleted event (the API server deletes events after their TTL, one hour by
    /// default), so the map holds only live events.
    pub fn deleted(&mut self, event: &Event) {
        if let Some(uid) = event.metadata.uid.as_deref() {
            self.recorded.remove(uid);
        }
    }

    /// Events remembered.
    pub fn len(&self) -> usize {
        self.recorded.len()
    }

    /// Whether no event is remembered.
    pub fn is_empty(&self) -> bool {
        self.recorded.is_empty()
    }
}

/// How many times the event happened: the series' count for new-style repeats, else the
/// legacy `count`, else once.
fn occurrences(event: &Event) -> i64 {
    event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .map_or(1, i64::from)
        .max(1)
}

/// When the newest occurrence happened: the series' last observation, the last timestamp,
/// the event time, the first timestamp, the object's creation, in that order.
fn when(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or(event.last_timestamp.as_ref().map(|t| t.0))
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(k8s_time)
}

fn record(event: &Event, uid: &str, count: i64) -> Record {
    let now = Timestamp::now();
    let object = &event.involved_object;
    let mut resource = object_ref_resource(object);
    if resource.get_str(names::K8S_NAMESPACE_NAME).is_none()
        && let Some(ns) = &event.metadata.namespace
    {
        resource.insert(names::K8S_NAMESPACE_NAME, ns.clone());
    }
    if resource.get_str(names::K8S_NODE_NAME).is_none()
        && let Some(host) = event.source.as_ref().and_then(|s| s.host.clone())
    {
        resource.insert(names::K8S_NODE_NAME, host);
    }
    let reason = event.reason.clone().unwrap_or_default();
    let body = match &event.message {
        Some(m) if !m.trim().is_empty() => m.trim_end().to_string(),
        _ => reason.clone(),
    };
    let mut r = Record::log(
        RecordId::from_source(format!("k8s-event/{uid}").as_bytes(), count as u64),
        when(event).unwrap_or(now),
        now,
        Arc::new(resource),
        body,
    );
    r.kind = RecordKind::K8sEvent;
    let kind_of_event = event.type_.clone().unwrap_or_else(|| "Normal".into());
    r.severity = Some(if kind_of_event == "Warning" {
        Severity::Warn
    } else {
        Severity::Info
    });
    let a: &mut Attributes = &mut r.attributes;
    a.insert(names::K8S_EVENT_UID, uid.to_string());
    if !reason.is_empty() {
        a.insert(names::K8S_EVENT_REASON, reason);
    }
    a.insert(names::K8S_EVENT_TYPE, kind_of_event);
    a.insert(names::K8S_EVENT_COUNT, count);
    if let Some(component) = event
        .reporting_component
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| event.source.as_ref().and_then(|s| s.component.clone()))
    {
        a.insert(names::K8S_EVENT_REPORTING_COMPONENT, component);
    }
    if let Some(kind) = &object.kind {
        a.insert(names::K8S_OBJECT_KIND, kind.clone());
    }
    if let Some(name) = &object.name {
        a.insert(names::K8S_OBJECT_NAME, name.clone());
    }
    if let Some(uid) = &object.uid {
        a.insert(names::K8S_OBJECT_UID, uid.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::tests::fixture_events;

    #[test]
    fn fixture_events_become_records_with_their_reason_object_and_time() {
        let events = fixture_events();
        assert!(events.len() >= 10, "the fixture holds the core/v1 events");
        let mut recorder = EventRecorder::default();
        let records: Vec<Record> = events.iter().filter_map(|e| recorder.applied(e)).collect();
        assert_eq!(
            records.len(),
            events.len(),
            "each fixture event is new once"
        );
        let scheduled = &records[0];
        assert_eq!(scheduled.kind, RecordKind::K8sEvent);
        assert_eq!(
            scheduled.body,
            "Successfully assigned kube-system/coredns-6f6b679f8f-5m7kq to minikube"
        );
        assert_eq!(
            scheduled.attributes.get_str(names::K8S_EVENT_REASON),
            Some("Scheduled")
        );
        assert_eq!(
            scheduled.resource.get_str(names::K8S_POD_NAME),
            Some("coredns-6f6b679f8f-5m7kq")
        );
        assert_eq!(
            scheduled.resource.get_str(names::K8S_NAMESPACE_NAME),
            Some("kube-system")
        );
        assert_eq!(
            scheduled.timestamp.to_rfc3339(),
            Timestamp::parse_rfc3339("2024-11-17T10:19:41Z")
                .unwrap()
                .to_rfc3339()
        );
        let warnings: Vec<&str> = records
            .iter()
            .filter(|r| r.severity == Some(Severity::Warn))
            .filter_map(|r| r.attributes.get_str(names::K8S_EVENT_REASON))
            .collect();
        assert!(warnings.contains(&"BackOff"), "{warnings:?}");
        assert!(warnings.contains(&"FailedScheduling"), "{warnings:?}");
    }

    #[test]
    fn a_repeat_is_one_new_record_and_a_resend_none() {
        let mut event = fixture_events()
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("BackOff") && e.series.is_none())
            .expect("a legacy BackOff event in the fixture");
        let mut recorder = EventRecorder::default();
        let first = recorder.applied(&event).expect("new");
        assert!(recorder.applied(&event).is_none(), "a relist resends it");
        let count = event.count.unwrap_or(1);
        event.count = Some(count + 1);
        let repeat = recorder.applied(&event).expect("a repeat");
        assert_ne!(first.id, repeat.id);
        assert_eq!(
            repeat
                .attributes
                .get(names::K8S_EVENT_COUNT)
                .and_then(|v| v.as_f64()),
            Some(f64::from(count + 1))
        );
        // A recorder that forgot (a restart) names the same occurrence the same.
        let again = EventRecorder::default().applied(&event).expect("new to it");
        assert_eq!(again.id, repeat.id);
        recorder.deleted(&event);
        assert!(recorder.is_empty());
    }
}
