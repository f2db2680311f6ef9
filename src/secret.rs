//! A wrapper for values that must never leave the process: the web identity token, the ECR
//! password and AWS credentials.
//!
//! `Debug` and `Display` print `<redacted>`, so a secret that ends up in a log macro, an error
//! message or a `{:?}` of a containing struct cannot leak by accident. The value is reachable
//! only through [`Secret::expose`], which makes every use greppable.

use std::fmt;

/// A secret value. It deliberately implements neither `Serialize` nor `Clone`-into-string
/// conversions: the report cannot carry one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself. Call only where it is handed to the peer that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            password: Secret<String>,
        }
        let h = Holder { password: s };
        assert!(!format!("{h:?}").contains("hunter2"));
    }
}
