//! The append-only log: record framing ([`record`]) and the group-committing writer.

pub mod record;
