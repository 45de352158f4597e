//! Rejects a JSON text that repeats a key in any object, as `data/parity.py`'s
//! `object_pairs_hook` does: `serde_json::Value` would silently keep the last value, so the
//! two sides could read different specs from one file. The walk is serde_json's own parser,
//! whose recursion limit (128 levels) bounds the nesting.

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// A JSON value that was checked for repeated keys (its content is not kept).
pub(crate) struct UniqueKeys;

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E: Error>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("duplicate key `{key}` in a JSON object")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::UniqueKeys;

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert!(serde_json::from_str::<UniqueKeys>(r#"{"a": [1, {"b": 2, "c": [true, null]}], "d": "x"}"#).is_ok());
        let top = serde_json::from_str::<UniqueKeys>(r#"{"cases": [], "cases": []}"#).err().unwrap();
        assert!(top.to_string().contains("duplicate key `cases`"), "{top}");
        let deep = serde_json::from_str::<UniqueKeys>(r#"{"cases": [{"norm": {"dim": 0, "dim": 1}}]}"#).err().unwrap();
        assert!(deep.to_string().contains("duplicate key `dim`"), "{deep}");
    }
}
