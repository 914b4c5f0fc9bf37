//! The built-in experiments, one per seed flow (SPEC section 10), shipped
//! inside the binary as TOML files (`crates/experiment/builtins/`).
//! `experiment show NAME` prints one as a starting point for users' own.

/// A built-in: its name and file.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    /// The seed flow it reproduces (SPEC section 10).
    pub flow: &'static str,
    pub text: &'static str,
}

macro_rules! builtin {
    ($name:literal, $flow:literal) => {
        Builtin {
            name: $name,
            flow: $flow,
            text: include_str!(concat!("../builtins/", $name, ".toml")),
        }
    };
}

/// Every built-in, in the order of the seed's flows.
pub const BUILTINS: &[Builtin] = &[
    builtin!("startup", "1"),
    builtin!("root", "2"),
    builtin!("health", "3"),
    builtin!("network-cut", "4"),
    builtin!("credential-failure", "5"),
    builtin!("hang-restart", "6"),
    builtin!("hang-tcp-liveness", "6"),
    builtin!("internal-load", "7"),
    builtin!("autoscale", "8"),
    builtin!("cascade", "9"),
    builtin!("network-rule", "10"),
    builtin!("bad-image", "11"),
];

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Names, for messages.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

/// The title line of a built-in (`title = "…"`).
pub fn title(b: &Builtin) -> String {
    toml::from_str::<toml::Table>(b.text)
        .ok()
        .and_then(|t| t.get("title").and_then(|v| v.as_str()).map(String::from))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_valid() {
        for b in BUILTINS {
            let e = crate::format::parse(b.name, b.name, b.text, &[], None)
                .unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert!(!e.expect.is_empty(), "{} judges something", b.name);
            assert!(!title(b).is_empty());
            assert!(
                e.duration.is_some_and(|d| d.as_secs() <= 40),
                "{} is short",
                b.name
            );
        }
    }
}
