//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn defaults_are_one_second_doubling_to_thirty_seconds_five_attempts() {
    let b = BackoffOptions::default();
    let ceilings: Vec<u64> = (1..=7).map(|n| b.ceiling(n).as_millis() as u64).collect();
    assert_eq!(ceilings, vec![1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert_eq!(b.max_attempts, 5);
}

#[test]
fn full_jitter_range() {
    let b = BackoffOptions::default();
    assert_eq!(b.delay(3, &mut FixedJitter(0.0)), Duration::ZERO);
    assert_eq!(
        b.delay(3, &mut FixedJitter(0.5)),
        Duration::from_millis(2000)
    );
    assert_eq!(b.delay(3, &mut NoJitter), Duration::from_millis(4000));
    assert_eq!(
        b.delay(3, &mut FixedJitter(7.0)),
        Duration::from_millis(4000),
        "clamped"
    );
    let mut rng = XorShiftJitter::new(42);
    for n in 1..50 {
        let d = b.delay(n, &mut rng);
        assert!(d <= b.ceiling(n));
    }
}

#[test]
fn xorshift_is_in_unit_range_and_varies() {
    let mut rng = XorShiftJitter::new(0);
    let xs: Vec<f64> = (0..1000).map(|_| rng.next_fraction()).collect();
    assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    assert!(xs.iter().any(|&x| x < 0.1) && xs.iter().any(|&x| x > 0.9));
}

#[test]
fn hostile_settings_do_not_panic() {
    let b = BackoffOptions {
        initial_ms: u64::MAX,
        max_ms: u64::MAX,
        factor: f64::NAN,
        max_attempts: 0,
    };
    let _ = b.ceiling(u32::MAX);
    let b = BackoffOptions {
        initial_ms: 10,
        max_ms: 5,
        factor: 0.5,
        max_attempts: 1,
    };
    assert_eq!(b.ceiling(4), Duration::from_millis(5));
    let b = BackoffOptions {
        factor: f64::INFINITY,
        ..Default::default()
    };
    assert_eq!(b.ceiling(3), Duration::from_millis(1000));
}
