//! Option enums by name: one table per enum gives `parse`, `name`, [`core::str::FromStr`]
//! and [`core::fmt::Display`], so the CLI, the agent's TOML and the library read and
//! print the same names (see [`named_options!`]).

use alloc::format;
use alloc::string::String;

/// `names` as a choice: `a`, `a or b`, `a, b or c`.
pub fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => String::from(*last),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Implements, for a fieldless enum, `NAMES`, `parse` (names and aliases), `name`,
/// `FromStr` and `Display` from one table:
///
/// ```
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum Mode { Fast, Safe }
/// sensorlake::named_options! {
///     Mode, String, |other| format!("unknown mode {other:?}: expected {}",
///         sensorlake::options::one_of(Mode::NAMES));
///     Fast = "fast" | "quick",
///     Safe = "safe",
/// }
/// assert_eq!("quick".parse::<Mode>(), Ok(Mode::Fast));
/// assert_eq!(Mode::Safe.to_string(), "safe");
/// assert!(Mode::parse("slow").unwrap_err().contains("expected fast or safe"));
/// ```
#[macro_export]
macro_rules! named_options {
    (
        $ty:ident, $err:ty, |$other:ident| $error:expr;
        $($variant:ident = $name:literal $(| $alias:literal)*),+ $(,)?
    ) => {
        impl $ty {
            /// The names [`Self::parse`] accepts besides aliases, one per value.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// Parses a name of [`Self::NAMES`] or an alias.
            pub fn parse(text: &str) -> ::core::result::Result<Self, $err> {
                match text {
                    $($name $(| $alias)* => Ok(Self::$variant),)+
                    $other => Err($error),
                }
            }

            /// The name [`Self::parse`] accepts.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl ::core::str::FromStr for $ty {
            type Err = $err;

            fn from_str(text: &str) -> ::core::result::Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl ::core::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::encode::{Codec, FloatEncoding, IntEncoding, Statistics};
    use crate::schema::ChannelType;
    use crate::simulate::Profile;
    use crate::spool::WhenFull;

    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        assert_eq!(all.len(), names.len());
        for (value, name) in all.iter().zip(names) {
            assert_eq!(value.to_string(), *name);
            assert_eq!(name.parse::<T>().unwrap(), *value);
        }
    }

    #[test]
    fn every_option_prints_the_name_it_parses() {
        round_trips(&Codec::ALL, Codec::NAMES);
        round_trips(&FloatEncoding::ALL, FloatEncoding::NAMES);
        round_trips(&IntEncoding::ALL, IntEncoding::NAMES);
        round_trips(&Statistics::ALL, Statistics::NAMES);
        round_trips(
            &[WhenFull::RefuseNew, WhenFull::DropOldest],
            WhenFull::NAMES,
        );
        round_trips(
            &[Profile::Enviro, Profile::Imu, Profile::ImuRaw],
            Profile::NAMES,
        );
        use ChannelType::*;
        round_trips(&[F32, F64, I16, I32, I64], ChannelType::NAMES);
        assert_eq!(
            Codec::parse("brotli").unwrap_err().to_string(),
            "unknown codec \"brotli\": expected none, snappy, lz4, gzip or zstd"
        );
    }
}
