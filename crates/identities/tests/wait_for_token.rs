//! `wait_for_token`'s timing, on tokio's paused clock, with a scripted
//! provider (the GitHub provider's own polls are tested against the fake
//! GitHub in `github.rs`).
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use polykey_identities::provider::{MAX_POLL_INTERVAL, SLOW_DOWN_STEP};
use polykey_identities::{
    wait_for_token, AccessToken, DeviceAuthorization, DeviceCode, FoundClaim, Identity,
    IdentityError, IdentityProvider, Poll, Published,
};
use tokio::time::Instant;

/// Answers polls from a script and records when it was polled.
struct Scripted {
    answers: Mutex<Vec<Option<Duration>>>,
    polls: Mutex<Vec<Instant>>,
}

#[async_trait]
impl IdentityProvider for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }
    async fn start_device_flow(&self) -> Result<DeviceAuthorization, IdentityError> {
        unreachable!()
    }
    async fn poll_device_flow(&self, _: &DeviceAuthorization) -> Result<Poll, IdentityError> {
        self.polls.lock().unwrap().push(Instant::now());
        let mut answers = self.answers.lock().unwrap();
        if answers.is_empty() {
            return Ok(Poll::Authorized(AccessToken::new("t".into())));
        }
        Ok(Poll::SlowDown {
            interval: answers.remove(0),
        })
    }
    async fn user(&self, _: &AccessToken) -> Result<Identity, IdentityError> {
        unreachable!()
    }
    async fn publish(&self, _: &AccessToken, _: &str) -> Result<Published, IdentityError> {
        unreachable!()
    }
    async fn claims_of(
        &self,
        _: &str,
        _: Option<&AccessToken>,
    ) -> Result<Vec<FoundClaim>, IdentityError> {
        unreachable!()
    }
    async fn get(
        &self,
        _: &str,
        _: Option<&AccessToken>,
    ) -> Result<Option<Identity>, IdentityError> {
        unreachable!()
    }
    async fn search(
        &self,
        _: &str,
        _: Option<&AccessToken>,
    ) -> Result<Vec<Identity>, IdentityError> {
        unreachable!()
    }
}

fn flow(interval: u64, expires_in: u64) -> DeviceAuthorization {
    DeviceAuthorization {
        user_code: "ABCD-EFGH".into(),
        verification_uri: "https://example.invalid/device".into(),
        device_code: DeviceCode::new("dc".into()),
        interval: Duration::from_secs(interval),
        expires_in: Duration::from_secs(expires_in),
    }
}

#[tokio::test(start_paused = true)]
async fn slow_down_without_an_interval_adds_five_seconds_and_never_speeds_up() {
    let provider = Scripted {
        // None: +5 s; 3 s (less than now): +5 s again; 20 s: taken.
        answers: Mutex::new(vec![
            None,
            Some(Duration::from_secs(3)),
            Some(Duration::from_secs(20)),
        ]),
        polls: Mutex::new(Vec::new()),
    };
    let start = Instant::now();
    wait_for_token(&provider, &flow(5, 900)).await.unwrap();
    let polls = provider.polls.lock().unwrap().clone();
    let gaps: Vec<Duration> = std::iter::once(polls[0] - start)
        .chain(polls.windows(2).map(|w| w[1] - w[0]))
        .collect();
    assert_eq!(
        gaps,
        [5, 10, 15, 20].map(Duration::from_secs),
        "5 s, then +{SLOW_DOWN_STEP:?} twice, then the 20 s asked for"
    );
}

#[tokio::test(start_paused = true)]
async fn intervals_are_bounded_and_the_flow_expires_locally() {
    // A zero interval is polled at most once a second; an absurd one is
    // capped; and the wait ends when the codes expire.
    let provider = Scripted {
        answers: Mutex::new(vec![Some(Duration::from_secs(100_000)); 100]),
        polls: Mutex::new(Vec::new()),
    };
    let start = Instant::now();
    let err = wait_for_token(&provider, &flow(0, 300)).await.unwrap_err();
    assert!(matches!(err, IdentityError::Expired));
    let polls = provider.polls.lock().unwrap().clone();
    assert_eq!(polls[0] - start, Duration::from_secs(1));
    assert_eq!(polls[1] - polls[0], MAX_POLL_INTERVAL);
    assert!(Instant::now() - start <= Duration::from_secs(300));
}
