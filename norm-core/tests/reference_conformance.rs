//! The conformance suite on the pure-Rust reference backend.
use norm_core::reference::{RefBackend, RefDevice};

norm_core::conformance_tests!(RefBackend, Some(RefDevice));
