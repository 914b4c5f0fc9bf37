//! Unit tests of the toxics' decisions and of the JSON shapes of the kinds.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;

fn view(len: usize, entered: Instant, random: f64) -> ChunkView {
    ChunkView {
        len,
        entered,
        random,
    }
}

#[test]
fn latency_waits_from_when_the_chunk_entered() {
    let t0 = Instant::now();
    let toxic = Latency {
        latency: 200,
        jitter: 0,
    };
    let mut state = StageState::new(t0);
    let due = t0 + Duration::from_millis(200);
    assert_eq!(
        toxic.on_chunk(view(5, t0, 0.5), &mut state, t0),
        Verdict::WaitUntil(due)
    );
    assert_eq!(
        toxic.on_chunk(view(5, t0, 0.5), &mut state, due),
        Verdict::Pass
    );
}

#[test]
fn jitter_spreads_both_ways_and_never_below_zero() {
    let toxic = Latency {
        latency: 100,
        jitter: 50,
    };
    assert_eq!(toxic.delay(0.0), Duration::from_millis(50));
    assert_eq!(toxic.delay(0.5), Duration::from_millis(100));
    assert!(toxic.delay(0.999) <= Duration::from_millis(150));
    let wide = Latency {
        latency: 10,
        jitter: 50,
    };
    assert_eq!(wide.delay(0.0), Duration::ZERO);
}

#[test]
fn bandwidth_cuts_big_chunks_and_paces_the_rest() {
    let t0 = Instant::now();
    let toxic = Bandwidth { rate: 10 }; // 10 KB/s = 1000 bytes per 100 ms
    let mut state = StageState::new(t0);
    assert_eq!(
        toxic.on_chunk(view(5000, t0, 0.0), &mut state, t0),
        Verdict::PassSome(1000)
    );
    let free = t0 + Duration::from_millis(100);
    assert_eq!(state.next_free, Some(free));
    assert_eq!(
        toxic.on_chunk(view(4000, t0, 0.0), &mut state, t0),
        Verdict::WaitUntil(free)
    );
    assert_eq!(
        toxic.on_chunk(view(500, t0, 0.0), &mut state, free),
        Verdict::Pass
    );
    assert_eq!(state.next_free, Some(free + Duration::from_millis(50)));
    let unlimited = Bandwidth { rate: 0 };
    assert_eq!(
        unlimited.on_chunk(view(1 << 20, t0, 0.0), &mut state, t0),
        Verdict::Pass
    );
}

#[test]
fn limit_data_passes_the_limit_then_closes() {
    let t0 = Instant::now();
    let toxic = LimitData { bytes: 10 };
    let mut state = StageState::new(t0);
    assert_eq!(
        toxic.on_chunk(view(4, t0, 0.0), &mut state, t0),
        Verdict::Pass
    );
    assert_eq!(toxic.deadline(&state), None);
    assert_eq!(
        toxic.on_chunk(view(10, t0, 0.0), &mut state, t0),
        Verdict::PassSome(6)
    );
    assert_eq!(toxic.deadline(&state), Some((t0, End::Close)));
    assert_eq!(
        toxic.on_chunk(view(4, t0, 0.0), &mut state, t0),
        Verdict::End(End::Close)
    );
}

#[test]
fn timeout_drops_and_closes_on_time_or_never() {
    let t0 = Instant::now();
    let mut state = StageState::new(t0);
    let toxic = Timeout { timeout: 300 };
    assert_eq!(
        toxic.on_chunk(view(4, t0, 0.0), &mut state, t0),
        Verdict::Drop
    );
    assert_eq!(
        toxic.deadline(&state),
        Some((t0 + Duration::from_millis(300), End::Close))
    );
    assert_eq!(toxic.on_remove(&state), Some(End::Close));
    assert_eq!(Timeout { timeout: 0 }.deadline(&state), None);
}

#[test]
fn reset_peer_resets_after_the_first_data() {
    let t0 = Instant::now();
    let mut state = StageState::new(t0);
    let toxic = ResetPeer { timeout: 100 };
    let due = t0 + Duration::from_millis(100);
    assert_eq!(
        toxic.on_chunk(view(1, t0, 0.0), &mut state, t0),
        Verdict::WaitUntil(due)
    );
    assert_eq!(
        toxic.on_chunk(view(1, t0, 0.0), &mut state, due),
        Verdict::End(End::Reset)
    );
}

#[test]
fn chaoslab_kinds_hold_reset_and_deny() {
    let t0 = Instant::now();
    let mut state = StageState::new(t0);
    assert_eq!(
        Blackhole {}.on_chunk(view(1, t0, 0.0), &mut state, t0),
        Verdict::Hold
    );
    assert!(!Blackhole {}.reads());
    assert_eq!(Reset {}.deadline(&state), Some((t0, End::Reset)));
    assert_eq!(DenyNew {}.scope(), Scope::Accept);
    assert_eq!(
        SlowClose { delay: 50 }.hold_eof(t0),
        Some(t0 + Duration::from_millis(50))
    );
}

#[test]
fn kinds_use_toxiproxy_names_and_default_attributes() {
    let kind = ToxicKind::from_parts("latency", Some(json!({"latency": 200}))).unwrap();
    assert_eq!(
        kind,
        ToxicKind::Latency(Latency {
            latency: 200,
            jitter: 0
        })
    );
    assert_eq!(kind.attributes(), json!({"latency": 200, "jitter": 0}));
    assert_eq!(kind.type_name(), "latency");
    assert_eq!(kind.default_stream(), Stream::Downstream);

    let kind = ToxicKind::from_parts("blackhole", None).unwrap();
    assert_eq!(kind.attributes(), json!({}));
    assert_eq!(kind.default_stream(), Stream::Both);

    for (name, attrs) in [
        ("bandwidth", json!({"rate": 0})),
        ("timeout", json!({"timeout": 0})),
        ("reset_peer", json!({"timeout": 0})),
        ("slow_close", json!({"delay": 0})),
        ("limit_data", json!({"bytes": 0})),
        (
            "slicer",
            json!({"average_size": 0, "size_variation": 0, "delay": 0}),
        ),
        ("deny_new", json!({})),
        ("reset", json!({})),
    ] {
        let kind = ToxicKind::from_parts(name, None).unwrap();
        assert_eq!(kind.type_name(), name);
        assert_eq!(kind.attributes(), attrs, "{name}");
    }
}

#[test]
fn bad_kinds_are_refused_with_400s() {
    let unknown = ToxicKind::from_parts("gremlin", None).unwrap_err();
    assert!(matches!(unknown, Error::InvalidToxicType(_)));
    assert_eq!(unknown.status(), 400);
    // The message names every supported type.
    let message = unknown.to_string();
    for name in ToxicKind::TYPES {
        assert!(message.contains(name), "{message}");
    }
    let wide = ToxicKind::from_parts(
        "slicer",
        Some(json!({"average_size": 10, "size_variation": 11})),
    )
    .unwrap_err();
    assert_eq!(wide.status(), 400, "{wide}");
    let negative = ToxicKind::from_parts("latency", Some(json!({"latency": -5}))).unwrap_err();
    assert_eq!(negative.status(), 400);
    assert_eq!(
        negative.to_string(),
        "invalid value: latency: attribute latency must not be negative, got -5"
    );
    // Wrong types name the attribute, never a Rust type.
    for (attributes, expected) in [
        (
            json!({"latency": "5"}),
            "attribute latency must be a number, got a string",
        ),
        (
            json!({"jitter": 1.5}),
            "attribute jitter must be a whole number",
        ),
        (
            json!({"latency": [1]}),
            "attribute latency must be a number, got an array",
        ),
    ] {
        let e = ToxicKind::from_parts("latency", Some(attributes)).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(expected), "{e}");
        assert!(!e.to_string().contains("u64"), "{e}");
    }
    let not_object = ToxicKind::from_parts("latency", Some(json!([1, 2]))).unwrap_err();
    assert_eq!(
        not_object.to_string(),
        "bad request body: field attributes must be an object, got an array"
    );
    // Waits are bounded (a day), so no instant computed from one overflows.
    for (kind, attribute) in [
        ("latency", "latency"),
        ("latency", "jitter"),
        ("timeout", "timeout"),
        ("reset_peer", "timeout"),
        ("slow_close", "delay"),
        ("slicer", "delay"),
    ] {
        let e = ToxicKind::from_parts(kind, Some(json!({ attribute: u64::MAX }))).unwrap_err();
        assert_eq!(e.status(), 400, "{kind}.{attribute}: {e}");
        assert!(e.to_string().contains("a day"), "{e}");
    }
    assert!(ToxicKind::from_parts("latency", Some(json!({"latency": 86_400_000}))).is_ok());
    // Unknown attributes are ignored, as Toxiproxy.
    assert!(ToxicKind::from_parts("latency", Some(json!({"gremlins": "yes"}))).is_ok());
    // A type name from a caller is clipped and escaped in the message.
    let long = ToxicKind::from_parts(&"\u{1b}x".repeat(500), None).unwrap_err();
    assert!(long.to_string().len() < 400, "{long}");
    assert!(!long.to_string().contains('\u{1b}'), "{long}");
    assert_eq!(Stream::parse("sideways").unwrap_err().status(), 400);
    assert!(check_toxicity(1.5).is_err());
    assert!(check_toxicity(0.0).is_ok());
}

#[test]
fn spec_builder_sets_the_wrapper_fields() {
    let spec = ToxicSpec::new(ToxicKind::Reset(Reset {}))
        .named("f-1")
        .on(Stream::Upstream)
        .toxicity(0.5)
        .lasting(Duration::from_secs(3));
    assert_eq!(spec.name.as_deref(), Some("f-1"));
    assert_eq!(spec.stream, Some(Stream::Upstream));
    assert_eq!(spec.duration, Some(Duration::from_secs(3)));
    assert_eq!(
        ToxicSpec::new(ToxicKind::Reset(Reset {}))
            .lasting(Duration::ZERO)
            .duration,
        None
    );
}

#[test]
fn slicer_cuts_chunks_into_slices_and_pauses_after_each() {
    let t0 = Instant::now();
    let toxic = Slicer {
        average_size: 10,
        size_variation: 3,
        delay: 500,
    };
    toxic.validate().unwrap();
    let mut state = StageState::new(t0);
    // A 100-byte chunk: the first slice is 7..=13 bytes, then a pause.
    let Verdict::PassSome(n) = toxic.on_chunk(view(100, t0, 0.3), &mut state, t0) else {
        panic!("a big chunk is sliced");
    };
    assert!((7..=13).contains(&n), "{n}");
    let free = t0 + Duration::from_micros(500);
    assert_eq!(state.next_free, Some(free));
    assert_eq!(
        toxic.on_chunk(view(100 - n, t0, 0.3), &mut state, t0),
        Verdict::WaitUntil(free)
    );
    // Slicing the rest to the end: every slice in range, nothing lost.
    let (mut left, mut now, mut sizes) = (100 - n, free, vec![n]);
    while left > 0 {
        match toxic.on_chunk(view(left, t0, 0.3), &mut state, now) {
            Verdict::PassSome(m) => {
                sizes.push(m);
                left -= m;
            }
            Verdict::Pass => {
                sizes.push(left);
                left = 0;
            }
            other => panic!("{other:?}"),
        }
        now += Duration::from_micros(500);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 100);
    assert!(sizes.iter().all(|s| (1..=13).contains(s)), "{sizes:?}");
    assert!(
        sizes[..sizes.len() - 1].iter().all(|s| *s >= 7),
        "{sizes:?}"
    );
    // The slices of one chunk vary.
    assert!(sizes.iter().any(|s| *s != sizes[0]), "{sizes:?}");
    // A chunk within average + variation passes whole; average 0 = off.
    let mut state = StageState::new(t0);
    assert_eq!(
        toxic.on_chunk(view(13, t0, 0.9), &mut state, t0),
        Verdict::Pass
    );
    let off = Slicer::default();
    assert_eq!(
        off.on_chunk(view(1 << 20, t0, 0.5), &mut state, t0),
        Verdict::Pass
    );
    // Slice sizes cover the whole range and stay positive.
    let tight = Slicer {
        average_size: 1,
        size_variation: 1,
        delay: 0,
    };
    assert_eq!(tight.slice_size(0.0), 1);
    assert_eq!(tight.slice_size(0.999), 2);
    assert_eq!(toxic.slice_size(0.0), 7);
    assert_eq!(toxic.slice_size(0.9999), 13);
}
