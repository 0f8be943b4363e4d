//! Enums for the words a column may hold, with one spelling shared by the database and the API.

use std::fmt;

/// A word that is not one of an enum's spellings.
///
/// Shows the rejected word, so it suits input validation; the row readers turn it into
/// [`StoreError::Corrupt`](crate::StoreError) without the stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was being parsed, e.g. `recording status`.
    pub what: &'static str,
    /// The word that was given.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a known {}", self.value, self.what)
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a `Copy` enum whose variants each have one spelling, with `as_str`, `ALL`,
/// [`FromStr`](core::str::FromStr) (erring with [`UnknownValue`]) and `Display`.
macro_rules! spelled_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and API) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::model::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err($crate::model::UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                    }),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use spelled_enum;

#[cfg(test)]
mod tests {
    use crate::model::video::{
        CompositionFormat, CompositionStatus, ContainerFormat, MediaType, RoomStatus, RoomType,
        SettingsKind, TrackRecordingStatus,
    };
    use crate::model::{AccountStatus, CallbackState, HttpMethod, RecordingStatus, Sealing};

    /// Every spelling parses back to its value, and near misses are refused.
    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *v);
            assert!(text.to_uppercase().parse::<T>().is_err() || text == text.to_uppercase());
            assert!(format!("{text} ").parse::<T>().is_err());
        }
        assert!("".parse::<T>().is_err());
    }

    #[test]
    fn spellings_round_trip() {
        round_trips(AccountStatus::ALL);
        round_trips(RecordingStatus::ALL);
        round_trips(CallbackState::ALL);
        round_trips(HttpMethod::ALL);
        round_trips(RoomStatus::ALL);
        round_trips(RoomType::ALL);
        round_trips(TrackRecordingStatus::ALL);
        round_trips(CompositionStatus::ALL);
        round_trips(MediaType::ALL);
        round_trips(ContainerFormat::ALL);
        round_trips(CompositionFormat::ALL);
        round_trips(SettingsKind::ALL);
        round_trips(Sealing::ALL);
    }

    #[test]
    fn unknown_words_name_what_was_expected() {
        let e = "archived".parse::<RecordingStatus>().unwrap_err();
        assert_eq!(e.to_string(), "'archived' is not a known recording status");
        assert_eq!(
            "in-progress".parse::<RoomStatus>().unwrap(),
            RoomStatus::InProgress
        );
        assert_eq!(
            "get".parse::<HttpMethod>().ok(),
            None,
            "methods are stored upper-case"
        );
    }
}
