//! A request field that must be a JSON string. poem-openapi's `String` also accepts numbers and
//! booleans (`{"full_name": false}` would make an employee named "false"); this one refuses
//! them, so a wrong type is a 422 like any other malformed body.

use std::{borrow::Cow, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// A string that arrived as a JSON string, never coerced from another type.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonString(pub String);

impl JsonString {
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl Deref for JsonString {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JsonString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<JsonString> for String {
    fn from(value: JsonString) -> Self {
        value.0
    }
}

impl From<&str> for JsonString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Type for JsonString {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for JsonString {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Self(s)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for JsonString {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::MaybeUndefined;
    use serde_json::json;

    use super::*;

    #[test]
    fn only_strings_parse() {
        assert_eq!(
            JsonString::parse_from_json(Some(json!("Jane"))).unwrap(),
            JsonString::from("Jane")
        );
        for wrong in [
            json!(false),
            json!(true),
            json!(123),
            json!(1.5),
            json!([]),
            json!({}),
        ] {
            assert!(
                JsonString::parse_from_json(Some(wrong.clone())).is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn wrappers_keep_null_and_absence_apart_and_refuse_other_types() {
        let parse = |v| MaybeUndefined::<JsonString>::parse_from_json(v);
        assert!(parse(None).unwrap().is_undefined());
        assert!(parse(Some(Value::Null)).unwrap().is_null());
        assert!(parse(Some(json!(false))).is_err());
        assert!(Option::<JsonString>::parse_from_json(Some(json!(1))).is_err());
    }
}
