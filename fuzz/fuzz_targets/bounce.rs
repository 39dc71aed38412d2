//! Any bytes through the bounce classifier, as any mail to the bounce
//! address may be: a verdict every time, never a panic; a failure verdict
//! names at least one finding, and every address it names has an `@`.
#![no_main]

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
});
