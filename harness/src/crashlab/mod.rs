//! The crash lab: crash images from I/O traces ([`images`]).

pub mod images;
