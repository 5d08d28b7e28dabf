//! Empty: this package only holds the `it` integration-test binary (see `main.rs`).
