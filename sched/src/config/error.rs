//! How a rejected configuration is reported: the object, the field, the
//! value, and where in the text.

use std::fmt;

/// Where in the text an error is: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFileError {
    /// Not TOML, or not shaped like a configuration (an unknown key, a table
    /// where a list of tables belongs): the TOML library's message.
    Toml {
        /// Where, if known.
        at: Option<Location>,
        /// The TOML library's message.
        message: String,
    },
    /// Well-formed, but a value is not valid.
    Invalid {
        /// Where, if known.
        at: Option<Location>,
        /// The object: `pipe "wan"`, `pipe 2` (no valid name yet), `flowset "web"`,
        /// `rule 3` (counted from 1), `default` or `config`.
        object: String,
        /// The field, the value and what is allowed.
        message: String,
    },
}

impl ConfigFileError {
    /// Where in the text the error is, if known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigFileError::Toml { at, .. } | ConfigFileError::Invalid { at, .. } => *at,
        }
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.location();
        if let Some(at) = at {
            write!(f, "{at}: ")?;
        }
        match self {
            ConfigFileError::Toml { message, .. } => f.write_str(message),
            ConfigFileError::Invalid {
                object, message, ..
            } => write!(f, "{object}: {message}"),
        }
    }
}

impl std::error::Error for ConfigFileError {}
