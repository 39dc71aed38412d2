//! States kept as text in a column (a delivery's, a subscriber's, a post's):
//! one macro gives each its names, `Display`, `FromStr`, and the
//! `TryFrom<String>` that `#[sqlx(try_from = "String")]` reads rows with, so
//! code compares variants, never strings.

/// A name read from the store or typed by an operator that is not one of the state's.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not a {what} ({})", names.join(", "))]
pub struct UnknownState {
    what: &'static str,
    value: String,
    names: &'static [&'static str],
}

/// `text_state! { /// doc  pub enum Name("what it is") { Variant = "text", ... } }`
macro_rules! text_state {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name stored in the column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|state| state.as_str() == s)
                    .ok_or_else(|| $crate::store::UnknownState::new($what, s, Self::NAMES))
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::store::UnknownState;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

impl UnknownState {
    pub(crate) fn new(what: &'static str, value: &str, names: &'static [&'static str]) -> UnknownState {
        UnknownState {
            what,
            value: value.into(),
            names,
        }
    }
}

#[cfg(test)]
mod tests {
    text_state! {
        /// A state for the test.
        pub enum Light("light") {
            Red = "red",
            /// Documented variants keep their docs.
            Green = "green",
        }
    }

    #[test]
    fn every_state_reads_back_its_own_name_and_refuses_others() {
        for light in Light::ALL {
            assert_eq!(light.as_str().parse::<Light>().unwrap(), *light);
            assert_eq!(Light::try_from(light.to_string()).unwrap(), *light);
        }
        let error = "amber".parse::<Light>().unwrap_err();
        assert_eq!(error.to_string(), "\"amber\" is not a light (red, green)");
    }
}
