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
                        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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
