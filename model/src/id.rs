//! Stable 128-bit record ids (DESIGN.md §3): the same input always yields the same id, so a
//! record replayed after a crash can be recognised and dropped instead of indexed twice.

use std::fmt;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// A stable record id, written as 32 lowercase hex digits: the high 64 bits name the source
/// (a hash of its identity), the low 64 bits are the position in it.
///
/// Not one hash of both: ids of one source then differ from each other by construction, and
/// the index keeps the high half once per source and the low half in a few bits per record
/// (two random 64-bit halves per record were a sixth of the index).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u128);

impl RecordId {
    /// The id of what a source read at `position` of the thing it names `source_identity`
    /// (a file's identity and byte offset, a Kafka topic/partition and offset, an event uid
    /// and count).
    pub fn from_source(source_identity: &[u8], position: u64) -> Self {
        Self::from_parts(xxh3_64(source_identity), position)
    }

    /// The id of a record derived from this one (a request lifecycle finished by this line,
    /// say); `discriminator` tells several derived records of one parent apart. It keeps the
    /// parent's position.
    pub fn derive(self, discriminator: &[u8]) -> Self {
        let mut h = Xxh3::new();
        h.update(&self.0.to_le_bytes());
        h.update(discriminator);
        Self::from_parts(h.digest(), self.position())
    }

    /// The id of position `position` of the source whose identity hashes to `source`.
    pub fn from_parts(source: u64, position: u64) -> Self {
        RecordId((u128::from(source) << 64) | u128::from(position))
    }

    /// The high half: which source (a hash of its identity).
    pub fn source(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The low half: the position in the source.
    pub fn position(self) -> u64 {
        self.0 as u64
    }

    /// Parses the 32-hex-digit form.
    pub fn parse_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(RecordId)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RecordId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RecordId::parse_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a 32-hex-digit id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_positions_and_sources() {
        let a = RecordId::from_source(b"/var/log/pods/x/0.log", 0);
        assert_eq!(a, RecordId::from_source(b"/var/log/pods/x/0.log", 0));
        assert_ne!(a, RecordId::from_source(b"/var/log/pods/x/0.log", 1));
        assert_ne!(a, RecordId::from_source(b"/var/log/pods/y/0.log", 0));
        assert_ne!(a.derive(b"request"), a);
        assert_ne!(a.derive(b"request"), a.derive(b"other"));
        assert_eq!(a.derive(b"request"), a.derive(b"request"));
        let b = RecordId::from_source(b"/var/log/pods/x/0.log", 4096);
        assert_eq!((b.source(), b.position()), (a.source(), 4096));
        assert_eq!(RecordId::from_parts(b.source(), b.position()), b);
        assert_eq!(RecordId::parse_hex(&a.to_string()), Some(a));
        assert_eq!(RecordId::parse_hex("xyz"), None);
    }
}
