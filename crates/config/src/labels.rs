//! [`Labels`]: a target's labels, sorted by key, in one small allocation.
//!
//! A `BTreeMap<String, String>` of one label is a B-tree leaf of eleven
//! key and value slots, 540 bytes; a hundred thousand targets kept 52 MiB of
//! them. Targets have a handful of labels, read far more often than changed,
//! so a sorted boxed slice (16 bytes, plus 48 per label and the strings)
//! does the same work: lookups by binary search, iteration in key order,
//! serialised as the same map.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Labels sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` (returning its former value); rebuilds the slice, so meant
    /// for building, not for hot paths.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.insert(i, (key, value));
                self.0 = v.into_boxed_slice();
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        let mut v = std::mem::take(&mut self.0).into_vec();
        let (_, value) = v.remove(i);
        self.0 = v.into_boxed_slice();
        Some(value)
    }

    /// In key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &String)> + Clone {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &String> + Clone {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &String> + Clone {
        self.0.iter().map(|(_, v)| v)
    }

    /// As a map, for APIs that take one.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, String)> for Labels {
    /// A key given twice keeps its last value, as a map's `insert` does.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut v: Vec<(String, String)> = iter.into_iter().collect();
        // Stable: of equal keys the last one given ends up last.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        Self(out.into_boxed_slice())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(m: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self(m.into_iter().collect())
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(l: Labels) -> Self {
        l.into_iter().collect()
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(a: [(String, String); N]) -> Self {
        a.into_iter().collect()
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, String)>, fn(&'a (String, String)) -> (&'a String, &'a String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn behaves_as_the_sorted_map_it_replaces() {
        let mut labels = l(&[("site", "jkt"), ("env", "prod"), ("site", "bdg")]);
        let mut map = BTreeMap::from([
            ("site".to_owned(), "bdg".to_owned()),
            ("env".to_owned(), "prod".to_owned()),
        ]);
        assert_eq!(labels.to_map(), map, "a repeated key keeps its last value");
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["env", "site"]);
        assert_eq!(labels.get("site").map(String::as_str), Some("bdg"));
        assert_eq!(labels.get("team"), None);
        assert!(labels.contains_key("env") && !labels.contains_key("en"));
        assert_eq!(labels.insert("team".into(), "noc".into()), None);
        assert_eq!(labels.insert("env".into(), "dev".into()), Some("prod".into()));
        map.insert("team".into(), "noc".into());
        map.insert("env".into(), "dev".into());
        assert_eq!(labels.to_map(), map);
        assert_eq!(labels.remove("site"), Some("bdg".into()));
        assert_eq!(labels.remove("site"), None);
        map.remove("site");
        assert_eq!(BTreeMap::from(labels.clone()), map);
        assert_eq!(Labels::from(map.clone()), labels);
        assert_eq!((&labels).into_iter().count(), 2);
        assert_eq!(format!("{labels:?}"), format!("{map:?}"));
    }

    #[test]
    fn serialises_as_a_map_and_is_small() {
        let labels = l(&[("b", "2"), ("a", "1")]);
        assert_eq!(serde_json::to_string(&labels).unwrap(), r#"{"a":"1","b":"2"}"#);
        let back: Labels = serde_json::from_str(r#"{"b":"2","a":"1"}"#).unwrap();
        assert_eq!(back, labels);
        assert!(
            serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err(),
            "a number is not a label value"
        );
        assert!(serde_json::from_str::<Labels>(r#"["a"]"#).is_err());
        assert_eq!(std::mem::size_of::<Labels>(), 16);
    }
}
