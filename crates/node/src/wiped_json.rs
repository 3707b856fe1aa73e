//! JSON that carries passwords and secrets: the client API's requests and
//! answers. Its strings are overwritten with zeros when it is dropped, so
//! no copy of a password or a secret lingers in freed memory.
//!
//! What serde_json does while parsing (a scratch buffer for strings with
//! escapes) is outside this type's reach.

use std::ops::{Deref, DerefMut};

use serde_json::Value;
use zeroize::Zeroize;

/// A [`Value`] whose strings are wiped on drop.
#[derive(Debug, Default)]
pub struct WipedJson(pub Value);

impl WipedJson {
    /// Take the value at `key` out of this object (Null if absent), to be
    /// wiped in turn when the new owner drops it.
    pub fn take(&mut self, key: &str) -> WipedJson {
        WipedJson(self.0.get_mut(key).map(Value::take).unwrap_or(Value::Null))
    }
}

impl From<Value> for WipedJson {
    fn from(value: Value) -> Self {
        Self(value)
    }
}

/// The value itself, no longer wiped: for answers that hold nothing secret
/// (lists, states) and are shown as they are.
impl From<WipedJson> for Value {
    fn from(mut wiped: WipedJson) -> Self {
        wiped.0.take()
    }
}

impl Deref for WipedJson {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl DerefMut for WipedJson {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.0
    }
}

impl Drop for WipedJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrite every string in `value` (object keys are names, not secrets).
pub fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
