//! Enums configured by name (CLI flags, scenario files, JSON): one macro gives each its list of
//! values, its lowercase name, `Display` and a `FromStr` whose error lists the accepted names.

/// Implements `Display` and `FromStr` over a fixed list of lowercase names.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The lowercase name used in CLI flags, scenario files and JSON.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "unknown {} '{}': expected one of {}",
                        stringify!($ty), s, [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

pub(crate) use named_enum;
