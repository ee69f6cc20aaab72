//! Stable 128-bit record ids (DESIGN.md §3): the same input always yields the same id, so a
//! record replayed after a crash can be recognised and dropped instead of indexed twice.

use std::fmt;
use xxhash_rust::xxh3::Xxh3;

/// A stable record id, written as 32 lowercase hex digits.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u128);

impl RecordId {
    /// The id of what a source read at `position` of the thing it names `source_identity`
    /// (a file's identity and byte offset, a Kafka topic/partition and offset, an event uid
    /// and count).
    pub fn from_source(source_identity: &[u8], position: u64) -> Self {
        let mut h = Xxh3::new();
        h.update(source_identity);
        h.update(&[0xff]);
        h.update(&position.to_le_bytes());
        RecordId(h.digest128())
    }

    /// The id of a record derived from this one (a request lifecycle finished by this line,
    /// say); `discriminator` tells several derived records of one parent apart.
    pub fn derive(self, discriminator: &[u8]) -> Self {
        let mut h = Xxh3::new();
        h.update(&self.0.to_le_bytes());
        h.update(discriminator);
        RecordId(h.digest128())
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
        assert_eq!(RecordId::parse_hex(&a.to_string()), Some(a));
        assert_eq!(RecordId::parse_hex("xyz"), None);
    }
}
