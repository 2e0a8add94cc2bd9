//! `lenient_struct!`: a struct whose known fields are typed and whose unknown keys are kept.
//!
//! This is what `#[serde(flatten)] extra: Map` expresses, without flatten's costs: flatten
//! buffers the whole object (megabytes of data-URL images included) into serde's generic
//! `Content` first, and breaks `RawValue` fields. The generated `Deserialize` reads the JSON
//! map once, key by key. Every known field is an `Option` (absent and `null` both give `None`),
//! so the translator can say precisely which required field is missing.

macro_rules! lenient_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident $(= $wire:literal)? : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: Option<$ty>,
            )*
            /// Keys this type does not name, with their JSON values (sorted by key).
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("an object (", stringify!($name), ")"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some($crate::lenient::Key(key)) = map.next_key()? {
                            match key.as_ref() {
                                $(
                                    lenient_struct!(@wire $field $($wire)?) => {
                                        out.$field = map.next_value::<Option<$ty>>()?;
                                    }
                                )*
                                _ => {
                                    let v = map.next_value::<serde_json::Value>()?;
                                    out.extra.insert(key.into_owned(), v);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
    (@wire $field:ident $wire:literal) => { $wire };
    (@wire $field:ident) => { stringify!($field) };
}

pub(crate) use lenient_struct;

/// A map key borrowed from the input when it has no escapes (the common case), so reading a
/// known field allocates nothing for its name.
pub(crate) struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string or a list: OpenAI message content and DashScope assistant content both come in
/// these two shapes. Hand-written instead of `#[serde(untagged)]`, which would buffer (and
/// copy) the whole value, data-URL images included, before choosing.
#[derive(Debug)]
pub enum TextOrParts<P> {
    Text(String),
    Parts(Vec<P>),
}

impl<'de, P: serde::Deserialize<'de>> serde::Deserialize<'de> for TextOrParts<P> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<P>(std::marker::PhantomData<P>);
        impl<'de, P: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<P> {
            type Value = TextOrParts<P>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOrParts::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextOrParts::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(TextOrParts::Parts(parts))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
