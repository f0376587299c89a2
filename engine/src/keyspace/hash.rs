//! The hash value type: field → value.

use std::collections::BTreeMap;

/// A hash: distinct fields, each with a value. Iterates in field byte order, so two equal
/// hashes always iterate (and serialize) identically.
///
/// The keyspace never stores an empty hash (the key is deleted instead); a standalone `Hash`
/// may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hash {
    fields: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field).map(Vec::as_slice)
    }

    /// All `(field, value)` pairs in field byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|(f, v)| (f.as_slice(), v.as_slice()))
    }

    /// Sets `field` to `value`; true if the field is new.
    pub fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> bool {
        self.fields.insert(field, value).is_none()
    }

    /// Removes `field`; true if it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        self.fields.remove(field).is_some()
    }
}

/// Builds a hash from pairs; a later pair for the same field wins (as in `HSET`).
impl FromIterator<(Vec<u8>, Vec<u8>)> for Hash {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(iter: I) -> Self {
        Self {
            fields: iter.into_iter().collect(),
        }
    }
}
