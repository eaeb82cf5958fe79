//! Events, counted into a series when the same one repeats within 6 minutes, as kube's
//! Recorder does, but with the note in what makes two events the same. The Recorder keys on
//! the object, reason and action only, so a second, different scale within 6 minutes showed
//! as a repeat of the first, with the first one's note ("scaled from 2 to 1", twice, when
//! the second went to 6 in panic). What is kept to count repeats is forgotten after 6
//! minutes: a few dozen bytes per recent event, not the event.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, ResourceExt};

/// As kube's Recorder: a repeat after this starts a new event.
const SERIES_WINDOW: Duration = Duration::from_secs(360);

pub struct Events {
    client: Client,
    reporter: Reporter,
    ledger: Mutex<Ledger>,
}

impl Events {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        match self.ledger.lock() {
            Ok(l) => l,
            // Each entry is written whole: nothing half-done is left by a panic.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forgets, every minute, what can no longer be repeated into a series.
    pub async fn forget_periodically(&self) {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            self.ledger().forget(Instant::now());
        }
    }

    /// Publishes `ev` about `regarding`: a new event, or the next count of the same one.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Instant::now();
        let key = key(ev, regarding);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let observed = MicroTime(jiff::Timestamp::now());
        let repeat = self.ledger().repeat(key, now);
        let counted = match repeat {
            Some((name, count)) => {
                let series = EventSeries {
                    count,
                    last_observed_time: observed.clone(),
                };
                let patch = serde_json::json!({ "series": series });
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Some((name, count)),
                    // Deleted by hand, expired or conflicting: the entry is stale, and the
                    // event starts over as a new one rather than failing until the window ends.
                    Err(e) => {
                        tracing::debug!(event = %name, error = %e, "event series not counted; creating a new event");
                        self.ledger().stale(key);
                        None
                    }
                }
            }
            None => None,
        };
        let (name, count) = match counted {
            Some(c) => c,
            None => {
                let created = api
                    .create(&PostParams::default(), &self.event(ev, regarding, observed))
                    .await?;
                (created.name_any(), 1)
            }
        };
        self.ledger().sent(key, name, count, now);
        Ok(())
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, at: MicroTime) -> K8sEvent {
        let controller = self.reporter.controller.clone();
        let instance = self.reporter.instance.clone();
        let nanos = at.0.as_nanosecond();
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            event_time: Some(at),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            type_: Some(type_name(ev.type_).into()),
            reporting_instance: Some(instance.unwrap_or_else(|| controller.clone())),
            reporting_controller: Some(controller),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // As the Recorder names them: the object, then the time in nanoseconds.
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or("headroom"),
                    nanos
                )),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes two events the same: the object, type, reason, action and note.
fn key(ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &regarding.namespace,
        &regarding.kind,
        &regarding.name,
        &regarding.uid,
        type_name(ev.type_),
        &ev.reason,
        &ev.action,
        &ev.note,
    )
        .hash(&mut h);
    h.finish()
}

/// The events sent lately: their names and counts, by key.
#[derive(Default)]
struct Ledger {
    sent: HashMap<u64, (String, i32, Instant)>,
}

impl Ledger {
    /// The event to count `key` into at `now`, and its next count; None for a new event.
    fn repeat(&self, key: u64, now: Instant) -> Option<(String, i32)> {
        let (name, count, last) = self.sent.get(&key)?;
        (now.saturating_duration_since(*last) < SERIES_WINDOW)
            .then(|| (name.clone(), count.saturating_add(1)))
    }

    fn sent(&mut self, key: u64, name: String, count: i32, now: Instant) {
        self.sent.insert(key, (name, count, now));
    }

    fn stale(&mut self, key: u64) {
        self.sent.remove(&key);
    }

    fn forget(&mut self, now: Instant) {
        self.sent
            .retain(|_, (_, _, last)| now.saturating_duration_since(*last) < SERIES_WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};

    use super::*;

    /// An API server whose events have all been deleted by hand: every patch is a 404, every
    /// create succeeds. Records "METHOD name-or-path" per request.
    fn forgetful() -> (Client, super::super::test_api::Log) {
        super::super::test_api::api(|method, _, body| {
            if *method == Method::POST {
                (StatusCode::CREATED, body.to_vec())
            } else {
                let gone = serde_json::json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"events.events.k8s.io not found"});
                (StatusCode::NOT_FOUND, gone.to_string().into_bytes())
            }
        })
    }

    #[tokio::test]
    async fn a_series_whose_event_is_gone_starts_a_new_event() {
        let (client, seen) = forgetful();
        let events = Events::new(
            client,
            Reporter {
                controller: "headroom".into(),
                instance: None,
            },
        );
        let scaled = ev("scaled from 2 to 4");
        assert!(events.publish(&scaled, &web()).await.is_ok());
        // The repeat's patch finds the event deleted: a new one is created, not an error.
        let again = events.publish(&scaled, &web()).await;
        assert!(again.is_ok(), "{again:?}");
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let methods: Vec<&str> = seen.iter().filter_map(|s| s.split(' ').next()).collect();
        assert_eq!(methods, ["POST", "PATCH", "POST"], "{seen:?}");
        // The stale entry was replaced by the new event's name, counted from one.
        let k = key(&scaled, &web());
        let Some((name, count, _)) = events.ledger().sent.get(&k).cloned() else {
            panic!("the new event is counted")
        };
        assert_eq!(count, 1);
        assert!(name.starts_with("web."), "{name}");
    }

    fn ev(note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "Scaled".into(),
            note: Some(note.into()),
            action: "Scale".into(),
            secondary: None,
        }
    }

    fn web() -> ObjectReference {
        ObjectReference {
            namespace: Some("shop".into()),
            name: Some("web".into()),
            kind: Some("ScalingPolicy".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_different_note_is_a_new_event_and_the_same_one_a_repeat() {
        let down = key(&ev("scaled from 2 to 1"), &web());
        let panic = key(&ev("scaled from 1 to 6: panic"), &web());
        assert_ne!(
            down, panic,
            "the note is part of what makes an event the same"
        );
        let other = ObjectReference {
            name: Some("api".into()),
            ..web()
        };
        assert_ne!(down, key(&ev("scaled from 2 to 1"), &other));

        let mut l = Ledger::default();
        let t0 = Instant::now();
        assert_eq!(l.repeat(down, t0), None);
        l.sent(down, "web.a".into(), 1, t0);
        assert_eq!(
            l.repeat(panic, t0),
            None,
            "a new event, not a repeat of the first"
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(l.repeat(down, later), Some(("web.a".into(), 2)));
        l.sent(down, "web.a".into(), 2, later);
        // The window counts from the last repeat; past it, a new event.
        assert!(
            l.repeat(down, later + SERIES_WINDOW - Duration::from_secs(1))
                .is_some()
        );
        assert_eq!(l.repeat(down, later + SERIES_WINDOW), None);
        l.forget(later + SERIES_WINDOW);
        assert!(l.sent.is_empty(), "nothing kept past the window");
    }
}
