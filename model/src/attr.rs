//! Typed attribute values and the ordered map that holds them.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
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
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<AttrKey, AttrValue>);

impl Attributes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<AttrKey>, value: impl Into<AttrValue>) {
        self.0.insert(key.into(), value.into());
    }

    /// Sets a float attribute. Non-finite values (NaN, ±∞) have no JSON form and are
    /// refused, so a damaged number never becomes an attribute.
    pub fn insert_f64(&mut self, key: impl Into<AttrKey>, value: f64) -> bool {
        if value.is_finite() {
            self.0.insert(key.into(), AttrValue::Float(value));
            true
        } else {
            false
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.get(key)
    }

    /// The value of `key` when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(AttrValue::as_str)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<AttrValue> {
        self.0.remove(key)
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
        Attributes(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
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
    fn null_and_nested_objects_are_refused() {
        assert!(serde_json::from_str::<Attributes>(r#"{"a":null}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":{"b":1}}"#).is_err());
        assert!(serde_json::from_str::<Attributes>(r#"{"a":[1]}"#).is_err());
    }
}
