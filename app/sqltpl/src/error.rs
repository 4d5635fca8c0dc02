//! Why a template could not be checked or rendered, always with the line and
//! column (1-based) in the template where the problem is.

use std::fmt;

/// A place in a template: 1-based line and 1-based column (counted in
/// characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `src` (clamped to the text, and to the
    /// start of a character if `offset` falls inside one).
    pub fn at(src: &str, offset: usize) -> Position {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{position}: unterminated string literal")]
    UnterminatedString { position: Position },
    #[error("{position}: unterminated quoted identifier")]
    UnterminatedIdentifier { position: Position },
    #[error("{position}: unterminated block comment")]
    UnterminatedComment { position: Position },
    #[error("{position}: unknown placeholder `{text}`")]
    UnknownPlaceholder { text: String, position: Position },
    #[error("{position}: no value for {placeholder}")]
    Missing {
        placeholder: String,
        position: Position,
    },
    #[error(
        "{position}: the value of {placeholder} contains a NUL character, which {dialect} text cannot hold"
    )]
    NulInValue {
        placeholder: String,
        dialect: &'static str,
        position: Position,
    },
    #[error("{position}: the value of {placeholder} is not a finite number")]
    NonFiniteNumber {
        placeholder: String,
        position: Position,
    },
    #[error("{position}: {placeholder} cannot be used here: {reason}")]
    CannotSplice {
        placeholder: String,
        reason: &'static str,
        position: Position,
    },
    #[error("{position}: {message}")]
    Syntax { message: String, position: Position },
}

impl TemplateError {
    pub fn position(&self) -> Position {
        match self {
            TemplateError::UnterminatedString { position }
            | TemplateError::UnterminatedIdentifier { position }
            | TemplateError::UnterminatedComment { position }
            | TemplateError::UnknownPlaceholder { position, .. }
            | TemplateError::Missing { position, .. }
            | TemplateError::NulInValue { position, .. }
            | TemplateError::NonFiniteNumber { position, .. }
            | TemplateError::CannotSplice { position, .. }
            | TemplateError::Syntax { position, .. } => *position,
        }
    }

    pub fn line(&self) -> usize {
        self.position().line
    }

    pub fn column(&self) -> usize {
        self.position().column
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = "ab\ncé\nx";
        assert_eq!(Position::at(src, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::at(src, 3), Position { line: 2, column: 1 });
        // 'é' is two bytes; the 'x' line starts after it.
        assert_eq!(Position::at(src, 6), Position { line: 2, column: 3 });
        assert_eq!(Position::at(src, 7), Position { line: 3, column: 1 });
        assert_eq!(Position::at(src, 99), Position { line: 3, column: 2 });
        // Inside a multi-byte character: the character's own position.
        assert_eq!(Position::at(src, 5), Position { line: 2, column: 2 });
    }

    #[test]
    fn display_names_line_and_column() {
        let error = TemplateError::UnterminatedString {
            position: Position { line: 2, column: 7 },
        };
        assert_eq!(
            error.to_string(),
            "line 2, column 7: unterminated string literal"
        );
        assert_eq!((error.line(), error.column()), (2, 7));
    }
}
