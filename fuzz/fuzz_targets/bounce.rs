//! Any bytes through the bounce classifier, as any mail to the bounce
//! address may be: a verdict every time, never a panic; a failure verdict
//! names at least one finding, and every address it names has an `@`. The
//! same bytes go through the readers of provider webhook bodies (Postmark's,
//! an SNS envelope, an SES notification), which must refuse or read them,
//! never panic.
#![no_main]

use herald::bounce::sns::{Envelope, Origin, ses_events};
use herald::bounce::webhook::postmark;
use herald::bounce::{Verdict, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = classify(data);
    assert!(!report.id.is_empty());
    if let Verdict::Failures(findings) = &report.verdict {
        assert!(!findings.is_empty(), "a failure verdict with no finding");
        for finding in findings {
            if let Some(address) = &finding.address {
                assert!(address.contains('@'), "{address:?}");
            }
        }
    }
    let events = postmark::read(data).unwrap_or_default();
    assert!(events.len() <= 1);
    if let Ok(json) = serde_json::from_slice(data) {
        for event in ses_events(&json) {
            assert!(event.id.starts_with("ses:"));
        }
    }
    let topics = ["arn:aws:sns:eu-west-1:123456789012:bounces".to_string()];
    if let Ok(envelope) = Envelope::read(data, &topics, &Origin::Amazon, chrono::Utc::now()) {
        let _ = envelope.canonical();
        let _ = envelope.verify(data, chrono::Utc::now());
        let _ = envelope.events();
    }
});
