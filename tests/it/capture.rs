//! Capture tests.
