//! Record framing. Placeholder.
