//! `cargo fuzz run embedding_answer`: see `fuzz/README.md` and `fuzz/targets.rs`.

#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = targets::embedding_answer(data);
});
