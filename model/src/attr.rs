//! Typed attribute values and the ordered map that holds them.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use std::borrow::Cow;
use std::fmt;

/// An attribute or resource name. Almost every name is one of the static contract names
/// (see [`crate::names`]), so borrowing them avoids an allocation per attribute per record.
pub type AttrKey = Cow<'static, str>;

/// One typed attribute value (DESIGN.md §3: string, int, float, bool, string list).
///
/// The JSON form is the natural one: `"x"`, `3`, `3.5`, `true`, `["a","b"]`. Integers and
/// floats stay apart through a round trip because floats are always written with a
/// fraction or exponent (`0.0`, not `0`).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
    /// A finite floating-point number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A list of strings (e.g. `gen_ai.response.finish_reasons`).
    StrList(Vec<String>),
}

impl AttrValue {
    /// The value as a float when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::Str(v.to_string())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::Str(v)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

impl serde::Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Float(v) => s.serialize_f64(*v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
            AttrValue::StrList(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for item in v {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttrValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number, bool or list of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
                Ok(AttrValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
                Ok(AttrValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
                Ok(i64::try_from(v).map_or(AttrValue::Float(v as f64), AttrValue::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
                Ok(AttrValue::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
                Ok(AttrValue::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
                Ok(AttrValue::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(AttrValue::StrList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Attributes (or resource attributes) of a record, ordered by name so that the JSON form
/// is deterministic.
///
/// A vector kept in name order, not a B-tree: a record has a handful of attributes, and a
/// lookup that compares lengths before bytes skips nearly every other name without a
/// `memcmp` call, where the B-tree's ordered search made one per name it passed (a tenth
/// of the agent's CPU, with most names sharing prefixes such as `gen_ai.request.`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(AttrKey, AttrValue)>);

impl Attributes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<AttrKey>, value: impl Into<AttrValue>) {
        let (key, value) = (key.into(), value.into());
        match self.place(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// Where `key` is (`Ok`) or goes (`Err`) in name order.
    fn place(&self, key: &str) -> Result<usize, usize> {
        match self.0.last() {
            // Appended in order: readers of the JSON and binary forms, and most parsers.
            Some((last, _)) if **last < *key => Err(self.0.len()),
            None => Err(0),
            _ => self.0.binary_search_by(|(k, _)| (**k).cmp(key)),
        }
    }

    /// Sets a float attribute. Non-finite values (NaN, ±∞) have no JSON form and are
    /// refused, so a damaged number never becomes an attribute.
    pub fn insert_f64(&mut self, key: impl Into<AttrKey>, value: f64) -> bool {
        if value.is_finite() {
            self.insert(key, AttrValue::Float(value));
            true
        } else {
            false
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.index(key).map(|i| &self.0[i].1)
    }

    /// The index of `key`: lengths first, so that a name of another length costs one
    /// compare.
    fn index(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.0
            .iter()
            .position(|(k, _)| k.len() == key.len() && k.as_bytes() == key)
    }

    /// The value of `key` when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(AttrValue::as_str)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<AttrValue> {
        self.index(key).map(|i| self.0.remove(i).1)
    }

    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many attributes are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<K: Into<AttrKey>, V: Into<AttrValue>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Attributes::from_pairs(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Attributes {
    /// The set of `pairs` in any order; of a name given twice, the last value holds (as
    /// with [`Attributes::insert`] one by one).
    fn from_pairs(mut pairs: Vec<(AttrKey, AttrValue)>) -> Self {
        if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable, after reversing: of equal names, the last given comes first, and is
            // the one `dedup_by` keeps.
            pairs.reverse();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            pairs.dedup_by(|a, b| a.0 == b.0);
        }
        Attributes(pairs)
    }
}

impl Attributes {
    /// Appends the JSON form (as `Serialize` gives it, byte for byte) to `out`, strings
    /// escaped by hand: see [`Record::write_content_json`](crate::Record::write_content_json).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json_text::write_str;
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            match value {
                AttrValue::Str(s) => write_str(out, s),
                AttrValue::StrList(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_str(out, item);
                    }
                    out.push(b']');
                }
                // Numbers as serde_json formats them; writing to a Vec cannot fail.
                scalar => {
                    let _ = serde_json::to_writer(&mut *out, scalar);
                }
            }
        }
        out.push(b'}');
    }
}

impl serde::Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = map.next_entry::<String, AttrValue>()? {
                    pairs.push((AttrKey::Owned(k), v));
                }
                Ok(Attributes::from_pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_type_through_json() {
        let mut a = Attributes::new();
        a.insert("i", 3i64);
        assert!(a.insert_f64("f", 0.0));
        assert!(a.insert_f64("g", 1055.3));
        assert!(!a.insert_f64("nan", f64::NAN));
        a.insert("b", true);
        a.insert("s", "x");
        a.insert(
            "l",
            AttrValue::StrList(vec!["stop".into(), "length".into()]),
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"b":true,"f":0.0,"g":1055.3,"i":3,"l":["stop","length"],"s":"x"}"#
        );
        let back: Attributes = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.get("f"), Some(&AttrValue::Float(0.0)));
        assert_eq!(back.get("i"), Some(&AttrValue::Int(3)));
    }

    #[test]
    fn names_stay_in_order_and_the_last_value_of_a_name_holds() {
        let mut a = Attributes::new();
        for (k, v) in [("m", 1), ("b", 2), ("z", 3), ("b", 4), ("a", 5), ("mm", 6)] {
            a.insert(k, v as i64);
        }
        let order = |a: &Attributes| a.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        assert_eq!(order(&a), ["a", "b", "m", "mm", "z"]);
        assert_eq!(a.get("b"), Some(&AttrValue::Int(4)));
        assert_eq!((a.get("c"), a.get("mmm"), a.get("")), (None, None, None));
        assert_eq!(a.remove("m"), Some(AttrValue::Int(1)));
        assert_eq!((a.remove("m"), a.len()), (None, 4));
        let collected: Attributes = [("z", 1i64), ("a", 2), ("z", 3), ("a", 4), ("q", 5)]
            .into_iter()
            .collect();
        assert_eq!(order(&collected), ["a", "q", "z"]);
        assert_eq!(collected.get("a"), Some(&AttrValue::Int(4)));
        assert_eq!(collected.get("z"), Some(&AttrValue::Int(3)));
        let read: Attributes = serde_json::from_str(r#"{"z":1,"a":2,"z":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), r#"{"a":2,"z":3}"#);
        let mut inserted = Attributes::new();
        inserted.insert("a", 2i64);
        inserted.insert("z", 3i64);
        assert_eq!(read, inserted, "one form, however it was made");
    }

    #[test]
    fn null_and_nested_objects_are_refused() {
        assert!(serde_json::from_str::<Attributes>(r#"{"a":null}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":{"b":1}}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":[1]}"#).is_err());
    }
}
