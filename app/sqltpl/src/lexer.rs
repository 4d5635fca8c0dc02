//! A small SQL lexer: just enough to know, for every character of a template,
//! whether it is code, a comment, or inside a quoted literal or identifier, and
//! where placeholders are. It follows each dialect's quoting and comment rules,
//! because a placeholder's meaning (and how its value must be written) depends
//! on that context.

use crate::error::{Position, TemplateError};

/// The lexical rules of one SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Flavor {
    Postgres,
    Mysql,
    Sqlite,
    Sqlserver,
    Oracle,
    Clickhouse,
}

impl Flavor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Postgres => "PostgreSQL",
            Flavor::Mysql => "MySQL",
            Flavor::Sqlite => "SQLite",
            Flavor::Sqlserver => "SQL Server",
            Flavor::Oracle => "Oracle",
            Flavor::Clickhouse => "ClickHouse",
        }
    }

    /// Whether `\` escapes the next character inside '…' and "…".
    pub(crate) fn backslash_escapes(self) -> bool {
        matches!(self, Flavor::Mysql | Flavor::Clickhouse)
    }

    fn nested_block_comments(self) -> bool {
        matches!(self, Flavor::Postgres | Flavor::Sqlserver)
    }

    fn hash_comments(self) -> bool {
        matches!(self, Flavor::Mysql | Flavor::Clickhouse)
    }

    /// MySQL only starts a `--` comment when a space or control character follows.
    fn dash_comment_needs_space(self) -> bool {
        self == Flavor::Mysql
    }

    fn dollar_quotes(self) -> bool {
        self == Flavor::Postgres
    }

    fn backtick_identifiers(self) -> bool {
        matches!(self, Flavor::Mysql | Flavor::Sqlite | Flavor::Clickhouse)
    }

    fn bracket_identifiers(self) -> bool {
        matches!(self, Flavor::Sqlserver | Flavor::Sqlite)
    }

    /// Whether "…" is a string (MySQL without ANSI_QUOTES) rather than an identifier.
    pub(crate) fn double_quotes_are_strings(self) -> bool {
        self == Flavor::Mysql
    }

    /// What a word written right before a `'` means, if it is a literal prefix.
    fn literal_prefix(self, word: &str) -> Option<Prefix> {
        let lower = word.to_ascii_lowercase();
        match (self, lower.as_str()) {
            (_, "n") => Some(Prefix::Droppable),
            (Flavor::Postgres, "e") => Some(Prefix::Escape),
            (Flavor::Postgres, "b" | "x") => Some(Prefix::Opaque),
            (Flavor::Mysql, "b" | "x") => Some(Prefix::Opaque),
            (Flavor::Mysql, charset) if charset.starts_with('_') => Some(Prefix::Droppable),
            (Flavor::Sqlite, "x") => Some(Prefix::Opaque),
            _ => None,
        }
    }

    fn is_oracle_q_prefix(self, word: &str) -> bool {
        self == Flavor::Oracle && matches!(word.to_ascii_lowercase().as_str(), "q" | "nq")
    }
}

/// What a literal's prefix means for a value put in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    /// No prefix.
    None,
    /// `N'…'`, MySQL `_utf8mb4'…'`: a string whatever the prefix; it may be dropped.
    Droppable,
    /// PostgreSQL `E'…'`: backslash escapes are processed.
    Escape,
    /// `B'…'`, `X'…'`, `U&'…'`: the content is not plain text.
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    Single,
    Double,
    Backtick,
    Bracket,
    /// PostgreSQL `$tag$…$tag$`.
    Dollar,
    /// Oracle `q'X…X'`, holding the closing delimiter character.
    OracleQ(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Literal {
    pub quote: Quote,
    pub prefix: Prefix,
    /// Byte range of the raw content, between the opening and closing quotes.
    pub content_start: usize,
    pub content_end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind<P> {
    Whitespace,
    Word,
    Number,
    Punct,
    LineComment,
    BlockComment,
    Placeholder(P),
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<P> {
    pub kind: TokenKind<P>,
    pub start: usize,
    pub end: usize,
}

/// Finds placeholders: at byte `at` of `src`, either nothing, or a placeholder
/// of some length, or malformed placeholder syntax.
pub(crate) trait Recognizer {
    type Item: Clone;
    fn recognize(&self, src: &str, at: usize)
    -> Result<Option<(usize, Self::Item)>, TemplateError>;
}

/// For lexing plain SQL: nothing is a placeholder.
pub(crate) struct NoPlaceholders;

impl Recognizer for NoPlaceholders {
    type Item = ();
    fn recognize(&self, _: &str, _: usize) -> Result<Option<(usize, ())>, TemplateError> {
        Ok(None)
    }
}

/// Characters that glue onto a neighbouring word or number when written with no
/// space between: identifier characters (PostgreSQL also takes any non-ASCII
/// character and `$`, SQL Server `@` and `#`), and `.` (which joins numbers).
pub(crate) fn is_sticky(c: char) -> bool {
    c.is_alphanumeric() || !c.is_ascii() || matches!(c, '_' | '$' | '@' | '#' | '.')
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_word_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

fn is_dollar_tag_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_dollar_tag_continue(c: char) -> bool {
    is_dollar_tag_start(c) || c.is_ascii_digit()
}

pub(crate) fn tokenize<R: Recognizer>(
    src: &str,
    flavor: Flavor,
    recognizer: &R,
) -> Result<Vec<Token<R::Item>>, TemplateError> {
    tokenize_located(src, flavor, recognizer, &|offset| Position::at(src, offset))
}

/// Like [`tokenize`], reporting errors at `locate(offset)` (for text generated
/// from another template, whose positions are the ones a user can act on).
pub(crate) fn tokenize_located<R: Recognizer>(
    src: &str,
    flavor: Flavor,
    recognizer: &R,
    locate: &dyn Fn(usize) -> Position,
) -> Result<Vec<Token<R::Item>>, TemplateError> {
    let mut lexer = Lexer {
        src,
        flavor,
        recognizer,
        locate,
        pos: 0,
    };
    let mut tokens = Vec::new();
    while lexer.pos < src.len() {
        tokens.push(lexer.next_token()?);
    }
    Ok(tokens)
}

struct Lexer<'a, R> {
    src: &'a str,
    flavor: Flavor,
    recognizer: &'a R,
    locate: &'a dyn Fn(usize) -> Position,
    pos: usize,
}

impl<R: Recognizer> Lexer<'_, R> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|rest| rest.chars().next())
    }

    fn peek(&self) -> Option<char> {
        self.char_at(self.pos)
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.rest().chars();
        chars.next();
        chars.next()
    }

    fn advance_char(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn error_at(&self, offset: usize) -> Position {
        (self.locate)(offset)
    }

    fn token(&self, kind: TokenKind<R::Item>, start: usize) -> Token<R::Item> {
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    fn next_token(&mut self) -> Result<Token<R::Item>, TemplateError> {
        let start = self.pos;
        if let Some((len, item)) = self.recognizer.recognize(self.src, start)? {
            self.pos = (start + len.max(1)).min(self.src.len());
            return Ok(self.token(TokenKind::Placeholder(item), start));
        }
        let Some(c) = self.peek() else {
            return Ok(self.token(TokenKind::Whitespace, start));
        };
        let second = self.peek_second();
        match c {
            c if c.is_whitespace() => Ok(self.whitespace(start)),
            '-' if second == Some('-') && self.dash_comment_starts_here() => {
                Ok(self.line_comment(start))
            }
            '#' if self.flavor.hash_comments() => Ok(self.line_comment(start)),
            '/' if second == Some('*') => self.block_comment(start),
            '\'' => self.quoted(start, Quote::Single, Prefix::None),
            '"' => self.quoted(start, Quote::Double, Prefix::None),
            '`' if self.flavor.backtick_identifiers() => {
                self.quoted(start, Quote::Backtick, Prefix::None)
            }
            '[' if self.flavor.bracket_identifiers() => {
                self.quoted(start, Quote::Bracket, Prefix::None)
            }
            '$' if self.flavor.dollar_quotes() && self.dollar_tag_len(start).is_some() => {
                self.dollar_quoted(start)
            }
            c if c.is_ascii_digit() => Ok(self.number(start)),
            '.' if second.is_some_and(|d| d.is_ascii_digit()) => Ok(self.number(start)),
            c if is_word_start(c) => self.word(start),
            _ => {
                self.advance_char();
                Ok(self.token(TokenKind::Punct, start))
            }
        }
    }

    fn whitespace(&mut self, start: usize) -> Token<R::Item> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.advance_char();
        }
        self.token(TokenKind::Whitespace, start)
    }

    fn dash_comment_starts_here(&self) -> bool {
        if !self.flavor.dash_comment_needs_space() {
            return true;
        }
        self.char_at(self.pos + 2)
            .is_none_or(|c| c.is_whitespace() || c.is_control())
    }

    fn line_comment(&mut self, start: usize) -> Token<R::Item> {
        while self.peek().is_some_and(|c| c != '\n') {
            self.advance_char();
        }
        self.token(TokenKind::LineComment, start)
    }

    fn block_comment(&mut self, start: usize) -> Result<Token<R::Item>, TemplateError> {
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            let rest = self.rest();
            if rest.starts_with("*/") {
                depth -= 1;
                self.pos += 2;
            } else if rest.starts_with("/*") && self.flavor.nested_block_comments() {
                depth += 1;
                self.pos += 2;
            } else if rest.is_empty() {
                return Err(TemplateError::UnterminatedComment {
                    position: self.error_at(start),
                });
            } else {
                self.advance_char();
            }
        }
        Ok(self.token(TokenKind::BlockComment, start))
    }

    fn number(&mut self, start: usize) -> Token<R::Item> {
        self.skip_digits();
        if self.peek() == Some('.') {
            self.advance_char();
            self.skip_digits();
        }
        if self.peek().is_some_and(|c| c == 'e' || c == 'E') {
            let after_e = self.pos + 1;
            let digits_at = match self.char_at(after_e) {
                Some('+' | '-') => after_e + 1,
                _ => after_e,
            };
            if self.char_at(digits_at).is_some_and(|c| c.is_ascii_digit()) {
                self.pos = digits_at;
                self.skip_digits();
            }
        }
        self.token(TokenKind::Number, start)
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.advance_char();
        }
    }

    fn word(&mut self, start: usize) -> Result<Token<R::Item>, TemplateError> {
        self.advance_char();
        while self.peek().is_some_and(is_word_continue) && !self.placeholder_starts_here()? {
            self.advance_char();
        }
        let word = &self.src[start..self.pos];
        if self.peek() == Some('\'') {
            if self.flavor.is_oracle_q_prefix(word) {
                return self.oracle_q_quoted(start);
            }
            if let Some(prefix) = self.flavor.literal_prefix(word) {
                return self.quoted(start, Quote::Single, prefix);
            }
        }
        if self.flavor == Flavor::Postgres
            && word.eq_ignore_ascii_case("u")
            && self.rest().starts_with("&'")
        {
            self.pos += 1;
            return self.quoted(start, Quote::Single, Prefix::Opaque);
        }
        Ok(self.token(TokenKind::Word, start))
    }

    fn placeholder_starts_here(&self) -> Result<bool, TemplateError> {
        Ok(self.recognizer.recognize(self.src, self.pos)?.is_some())
    }

    /// A literal or identifier closed by the same character that opened it (or
    /// `]` for `[`); the opening quote is at `self.pos`, any prefix before it.
    fn quoted(
        &mut self,
        start: usize,
        quote: Quote,
        prefix: Prefix,
    ) -> Result<Token<R::Item>, TemplateError> {
        let close = match quote {
            Quote::Single => '\'',
            Quote::Double => '"',
            Quote::Backtick => '`',
            _ => ']',
        };
        let backslash = has_backslash_escapes(self.flavor, quote, prefix);
        self.advance_char();
        let content_start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.unterminated(quote, start)),
                Some('\\') if backslash => {
                    self.advance_char();
                    self.advance_char();
                }
                Some(c) if c == close => {
                    let content_end = self.pos;
                    self.advance_char();
                    if self.peek() == Some(close) {
                        self.advance_char();
                        continue;
                    }
                    let literal = Literal {
                        quote,
                        prefix,
                        content_start,
                        content_end,
                    };
                    return Ok(self.token(TokenKind::Literal(literal), start));
                }
                Some(_) => self.advance_char(),
            }
        }
    }

    fn unterminated(&self, quote: Quote, start: usize) -> TemplateError {
        let position = self.error_at(start);
        let is_identifier = match quote {
            Quote::Double => !self.flavor.double_quotes_are_strings(),
            Quote::Backtick | Quote::Bracket => true,
            _ => false,
        };
        if is_identifier {
            TemplateError::UnterminatedIdentifier { position }
        } else {
            TemplateError::UnterminatedString { position }
        }
    }

    /// The length of a `$tag$` (or `$$`) opening at `at`, if one is there.
    fn dollar_tag_len(&self, at: usize) -> Option<usize> {
        let after_dollar = self.src.get(at + 1..)?;
        let mut chars = after_dollar.char_indices();
        match chars.next()? {
            (_, '$') => return Some(2),
            (_, c) if is_dollar_tag_start(c) => {}
            _ => return None,
        }
        for (index, c) in chars {
            if c == '$' {
                return Some(index + 2);
            }
            if !is_dollar_tag_continue(c) {
                return None;
            }
        }
        None
    }

    /// PostgreSQL ends a dollar-quoted string at the first occurrence of its tag.
    fn dollar_quoted(&mut self, start: usize) -> Result<Token<R::Item>, TemplateError> {
        let tag_len = self.dollar_tag_len(start).unwrap_or(1);
        let tag = &self.src[start..start + tag_len];
        let content_start = start + tag_len;
        let Some(found) = self.src[content_start..].find(tag) else {
            return Err(TemplateError::UnterminatedString {
                position: self.error_at(start),
            });
        };
        let content_end = content_start + found;
        self.pos = content_end + tag_len;
        let literal = Literal {
            quote: Quote::Dollar,
            prefix: Prefix::None,
            content_start,
            content_end,
        };
        Ok(self.token(TokenKind::Literal(literal), start))
    }

    /// Oracle `q'X…X'`: no escapes; ends at the first closing delimiter followed by `'`.
    fn oracle_q_quoted(&mut self, start: usize) -> Result<Token<R::Item>, TemplateError> {
        self.advance_char();
        let unterminated = TemplateError::UnterminatedString {
            position: self.error_at(start),
        };
        let Some(open) = self.peek().filter(|c| !c.is_whitespace()) else {
            return Err(unterminated);
        };
        let close = oracle_q_closing(open);
        self.advance_char();
        let content_start = self.pos;
        let mut closing = String::from(close);
        closing.push('\'');
        let Some(found) = self.rest().find(&closing) else {
            return Err(unterminated);
        };
        let content_end = content_start + found;
        self.pos = content_end + closing.len();
        let literal = Literal {
            quote: Quote::OracleQ(close),
            prefix: Prefix::None,
            content_start,
            content_end,
        };
        Ok(self.token(TokenKind::Literal(literal), start))
    }
}

/// Whether `\` escapes the next character in such a literal.
pub(crate) fn has_backslash_escapes(flavor: Flavor, quote: Quote, prefix: Prefix) -> bool {
    match quote {
        Quote::Single => flavor.backslash_escapes() || prefix == Prefix::Escape,
        Quote::Double => flavor.backslash_escapes(),
        _ => false,
    }
}

pub(crate) fn oracle_q_closing(open: char) -> char {
    match open {
        '[' => ']',
        '(' => ')',
        '{' => '}',
        '<' => '>',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str, flavor: Flavor) -> Vec<String> {
        tokenize(src, flavor, &NoPlaceholders)
            .unwrap()
            .into_iter()
            .filter(|token| token.kind != TokenKind::Whitespace)
            .map(|token| {
                let text = &src[token.start..token.end];
                match token.kind {
                    TokenKind::Literal(_) => format!("lit:{text}"),
                    TokenKind::LineComment | TokenKind::BlockComment => format!("comment:{text}"),
                    _ => text.to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn single_quotes_double_to_escape() {
        assert_eq!(
            kinds("x = 'it''s' AND", Flavor::Postgres),
            ["x", "=", "lit:'it''s'", "AND"]
        );
    }

    #[test]
    fn backslash_escapes_only_in_mysql_like_dialects() {
        assert_eq!(kinds(r"'a\'b'", Flavor::Mysql), [r"lit:'a\'b'"]);
        assert_eq!(kinds(r"'a\'", Flavor::Postgres), [r"lit:'a\'"]);
        assert!(tokenize(r"'a\'", Flavor::Mysql, &NoPlaceholders).is_err());
    }

    #[test]
    fn postgres_escape_string_prefix_is_part_of_the_literal() {
        assert_eq!(kinds(r"E'a\'b' x", Flavor::Postgres), [r"lit:E'a\'b'", "x"]);
    }

    #[test]
    fn dollar_quotes_end_at_their_own_tag() {
        assert_eq!(
            kinds("$a$ $b$ ' $a$ x", Flavor::Postgres),
            ["lit:$a$ $b$ ' $a$", "x"]
        );
        assert_eq!(kinds("$$x$$", Flavor::Postgres), ["lit:$$x$$"]);
        assert_eq!(kinds("$1", Flavor::Postgres), ["$", "1"]);
        assert_eq!(kinds("a$b$", Flavor::Postgres), ["a$b$"]);
    }

    #[test]
    fn comments_by_dialect() {
        assert_eq!(
            kinds("a -- b\nc", Flavor::Postgres),
            ["a", "comment:-- b", "c"]
        );
        assert_eq!(kinds("1--1", Flavor::Mysql), ["1", "-", "-", "1"]);
        assert_eq!(kinds("a # b", Flavor::Mysql), ["a", "comment:# b"]);
        assert_eq!(kinds("a # b", Flavor::Postgres), ["a", "#", "b"]);
        assert_eq!(
            kinds("/* /* */ x */ y", Flavor::Postgres),
            ["comment:/* /* */ x */", "y"]
        );
        assert_eq!(
            kinds("/* /* */ x", Flavor::Mysql),
            ["comment:/* /* */", "x"]
        );
    }

    #[test]
    fn identifiers_by_dialect() {
        assert_eq!(kinds("[a]]b] x", Flavor::Sqlserver), ["lit:[a]]b]", "x"]);
        assert_eq!(kinds("a[1]", Flavor::Postgres), ["a", "[", "1", "]"]);
        assert_eq!(kinds("`a``b`", Flavor::Mysql), ["lit:`a``b`"]);
    }

    #[test]
    fn oracle_q_quotes() {
        assert_eq!(kinds("q'[it's]' x", Flavor::Oracle), ["lit:q'[it's]'", "x"]);
        assert_eq!(kinds("Nq'!a!' x", Flavor::Oracle), ["lit:Nq'!a!'", "x"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            kinds("1.5e-3 .5 7", Flavor::Postgres),
            ["1.5e-3", ".5", "7"]
        );
    }

    #[test]
    fn unterminated_things_report_where_they_start() {
        let err = tokenize("select\n  'abc", Flavor::Postgres, &NoPlaceholders).unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnterminatedString {
                position: Position { line: 2, column: 3 }
            }
        );
        let err = tokenize("x /* y", Flavor::Sqlite, &NoPlaceholders).unwrap_err();
        assert!(matches!(err, TemplateError::UnterminatedComment { .. }));
        assert_eq!(err.column(), 3);
        let err = tokenize("\"abc", Flavor::Postgres, &NoPlaceholders).unwrap_err();
        assert!(matches!(err, TemplateError::UnterminatedIdentifier { .. }));
        let err = tokenize("\"abc", Flavor::Mysql, &NoPlaceholders).unwrap_err();
        assert!(matches!(err, TemplateError::UnterminatedString { .. }));
        let err = tokenize("[abc", Flavor::Sqlserver, &NoPlaceholders).unwrap_err();
        assert!(matches!(err, TemplateError::UnterminatedIdentifier { .. }));
        let err = tokenize("$x$ abc", Flavor::Postgres, &NoPlaceholders).unwrap_err();
        assert!(matches!(err, TemplateError::UnterminatedString { .. }));
    }
}
