//! Any bytes as a labels file: `Labels::parse` returns labels or an error, never panics; parsed
//! labels are non-empty and trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;

use torchcore::labels;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = labels::Labels::parse(data) {
        assert!(!l.is_empty());
        for i in 0..l.len() {
            let label = l.get(i).unwrap();
            assert!(!label.is_empty() && label.trim() == &**label);
        }
    }
});
