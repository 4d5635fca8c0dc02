//! Substitution shared by pull-sync placeholders and segment templates: walks
//! the tokens of a template and writes each placeholder's value in a way that
//! depends on where the placeholder stands:
//!
//! - bare in SQL code, or the entire content of a '…' / "…" / $$…$$ literal
//!   (the quotes are replaced too): one value, as a bind marker or a literal;
//! - part of a larger string literal: the value's text spliced into that
//!   literal, escaped for the dialect;
//! - inside a comment: left untouched;
//! - inside a quoted identifier, or any place where escaping cannot be
//!   guaranteed: refused.

use crate::error::{Position, TemplateError};
use crate::lexer::{
    Flavor, Literal, NoPlaceholders, Prefix, Quote, Recognizer, Token, TokenKind,
    has_backslash_escapes, is_sticky, tokenize, tokenize_located,
};
use crate::value::{self, BindValue, ValueProblem};

/// How a value gets into the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputMode {
    Literals,
    Binds(BindStyle),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindStyle {
    /// `?` (MySQL, SQLite)
    QuestionMark,
    /// `@P1`, `@P2`, … (SQL Server via tiberius)
    AtP,
    /// `:1`, `:2`, … (Oracle)
    ColonNumber,
}

/// Where a placeholder inside a literal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    WholeLiteral,
    InsideLiteral,
}

/// One placeholder occurrence, handed to the value resolver.
pub(crate) struct Occurrence<'a, P> {
    pub item: &'a P,
    pub text: &'a str,
    pub start: usize,
}

pub(crate) struct Substituted {
    pub sql: String,
    pub binds: Vec<BindValue>,
}

/// What a placeholder stands for: one value, or (bare in SQL only) a
/// comma-separated list of values.
pub(crate) enum Resolved {
    One(BindValue),
    List(Vec<BindValue>),
}

pub(crate) type Resolver<'r, P> =
    dyn FnMut(Occurrence<'_, P>) -> Result<Resolved, TemplateError> + 'r;

pub(crate) struct Engine<'a, R: Recognizer> {
    pub src: &'a str,
    pub flavor: Flavor,
    pub mode: OutputMode,
    pub recognizer: &'a R,
    pub locate: &'a dyn Fn(usize) -> Position,
}

impl<R: Recognizer> Engine<'_, R> {
    pub(crate) fn tokens(&self) -> Result<Vec<Token<R::Item>>, TemplateError> {
        tokenize_located(self.src, self.flavor, self.recognizer, self.locate)
    }

    /// Every placeholder that would be substituted (not those in comments), in
    /// order; with `judge_places`, refusing any that stands where no value can go.
    pub(crate) fn occurrences(&self, judge_places: bool) -> Result<Vec<R::Item>, TemplateError> {
        let mut found = Vec::new();
        for token in self.tokens()? {
            match &token.kind {
                TokenKind::Placeholder(item) => {
                    found.push(item.clone());
                }
                TokenKind::Literal(literal) => {
                    let inside = self.placeholders_in(literal)?;
                    let Some(first) = inside.first() else {
                        continue;
                    };
                    let context = if self.is_whole(literal, &inside) {
                        Context::WholeLiteral
                    } else {
                        Context::InsideLiteral
                    };
                    if judge_places {
                        self.check_literal_accepts(literal, context, first.0, first.1)?;
                    }
                    found.extend(inside.into_iter().map(|(_, _, item)| item));
                }
                _ => {}
            }
        }
        Ok(found)
    }

    pub(crate) fn substitute(
        &self,
        resolve: &mut Resolver<'_, R::Item>,
    ) -> Result<Substituted, TemplateError> {
        let tokens = self.tokens()?;
        let mut out = Output {
            sql: String::with_capacity(self.src.len()),
            binds: Vec::new(),
        };
        for token in &tokens {
            let next = self.src[token.end..].chars().next();
            match &token.kind {
                TokenKind::Placeholder(item) => {
                    let occurrence = self.occurrence(item, token.start, token.end);
                    match resolve(occurrence)? {
                        Resolved::One(value) => {
                            self.emit_value(&mut out, &value, token.start, token.end, next)?;
                        }
                        Resolved::List(values) => {
                            self.emit_list(&mut out, &values, token.start, token.end, next)?;
                        }
                    }
                }
                TokenKind::Literal(literal) => {
                    self.literal_token(&mut out, token, literal, next, resolve)?;
                }
                _ => out.sql.push_str(&self.src[token.start..token.end]),
            }
        }
        Ok(Substituted {
            sql: out.sql,
            binds: out.binds,
        })
    }

    fn occurrence<'i>(
        &'i self,
        item: &'i R::Item,
        start: usize,
        end: usize,
    ) -> Occurrence<'i, R::Item> {
        Occurrence {
            item,
            text: &self.src[start..end],
            start,
        }
    }

    /// Placeholders in a literal's content, as (start, end, item). Only at
    /// character boundaries: with backslash escapes, the character after a `\`
    /// belongs to the escape and cannot start a placeholder.
    fn placeholders_in(
        &self,
        literal: &Literal,
    ) -> Result<Vec<(usize, usize, R::Item)>, TemplateError> {
        let bounded = &self.src[..literal.content_end];
        let backslashes = has_backslash_escapes(self.flavor, literal.quote, literal.prefix);
        let mut found = Vec::new();
        let mut at = literal.content_start;
        while let Some(c) = bounded[at..].chars().next() {
            if backslashes && c == '\\' {
                at += 1;
                at += bounded[at..].chars().next().map_or(0, char::len_utf8);
                continue;
            }
            match self.recognizer.recognize(bounded, at)? {
                Some((len, item)) => {
                    let end = (at + len.max(1)).min(literal.content_end);
                    found.push((at, end, item));
                    at = end;
                }
                None => at += c.len_utf8(),
            }
        }
        Ok(found)
    }

    fn is_whole(&self, literal: &Literal, inside: &[(usize, usize, R::Item)]) -> bool {
        matches!(inside, [(start, end, _)]
            if *start == literal.content_start && *end == literal.content_end)
    }

    /// Refuses places where no value can be written safely, whatever the value.
    fn check_literal_accepts(
        &self,
        literal: &Literal,
        context: Context,
        start: usize,
        end: usize,
    ) -> Result<(), TemplateError> {
        let refuse = |reason| {
            Err(TemplateError::CannotSplice {
                placeholder: self.src[start..end].to_string(),
                reason,
                position: (self.locate)(start),
            })
        };
        let is_identifier = match literal.quote {
            Quote::Backtick | Quote::Bracket => true,
            Quote::Double => {
                context == Context::InsideLiteral && !self.flavor.double_quotes_are_strings()
            }
            _ => false,
        };
        if is_identifier {
            return refuse("a value cannot be part of a quoted identifier");
        }
        if literal.prefix == Prefix::Opaque {
            return refuse("a value cannot go inside a bit-string, hex or Unicode-escape literal");
        }
        if literal.quote == Quote::Dollar && context == Context::InsideLiteral {
            return refuse(
                "a value cannot be spliced into a dollar-quoted string; \
                 make the placeholder the whole string, or use a '…' literal",
            );
        }
        Ok(())
    }

    fn literal_token(
        &self,
        out: &mut Output,
        token: &Token<R::Item>,
        literal: &Literal,
        next: Option<char>,
        resolve: &mut Resolver<'_, R::Item>,
    ) -> Result<(), TemplateError> {
        let inside = self.placeholders_in(literal)?;
        let Some(first) = inside.first() else {
            out.sql.push_str(&self.src[token.start..token.end]);
            return Ok(());
        };
        if self.is_whole(literal, &inside) {
            self.check_literal_accepts(literal, Context::WholeLiteral, first.0, first.1)?;
            let (start, end, item) = first;
            let resolved = resolve(self.occurrence(item, *start, *end))?;
            let value = self.single(resolved, *start, *end)?;
            return self.emit_value(out, &value, *start, *end, next);
        }
        self.check_literal_accepts(literal, Context::InsideLiteral, first.0, first.1)?;
        let mut pieces = Vec::with_capacity(inside.len() * 2 + 1);
        let mut raw_from = literal.content_start;
        for (start, end, item) in &inside {
            pieces.push(Piece::Raw(&self.src[raw_from..*start]));
            let resolved = resolve(self.occurrence(item, *start, *end))?;
            let value = self.single(resolved, *start, *end)?;
            pieces.push(Piece::Value(value, *start, *end));
            raw_from = *end;
        }
        pieces.push(Piece::Raw(&self.src[raw_from..literal.content_end]));
        self.splice(out, token, literal, &pieces, next)
    }

    fn splice(
        &self,
        out: &mut Output,
        token: &Token<R::Item>,
        literal: &Literal,
        pieces: &[Piece<'_>],
        next: Option<char>,
    ) -> Result<(), TemplateError> {
        let requote_as_dollar = self.flavor == Flavor::Postgres
            && literal.quote == Quote::Single
            && matches!(literal.prefix, Prefix::None | Prefix::Droppable);
        if requote_as_dollar {
            let text = self.plain_postgres_content(pieces)?;
            let requoted =
                value::dollar_quote(&text).map_err(|problem| self.value_error(problem, pieces))?;
            self.verify_one_literal(&requoted, pieces)?;
            push_separated(&mut out.sql, &requoted, next);
            return Ok(());
        }
        let mut spliced = String::from(&self.src[token.start..literal.content_start]);
        for piece in pieces {
            match piece {
                Piece::Raw(raw) => spliced.push_str(raw),
                Piece::Value(value, start, end) => {
                    let escaped = self
                        .escape_value(literal, value)
                        .map_err(|problem| self.problem(problem, *start, *end))?;
                    spliced.push_str(&escaped);
                }
            }
        }
        spliced.push_str(&self.src[literal.content_end..token.end]);
        self.verify_one_literal(&spliced, pieces)?;
        out.sql.push_str(&spliced);
        Ok(())
    }

    /// A PostgreSQL '…' literal's text (`''` read as `'`) with the values in
    /// place: its content once re-quoted with dollars, which no value can
    /// break out of, whatever `standard_conforming_strings` says.
    fn plain_postgres_content(&self, pieces: &[Piece<'_>]) -> Result<String, TemplateError> {
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Raw(raw) => text.push_str(&raw.replace("''", "'")),
                Piece::Value(value, start, end) => {
                    let spliced =
                        value::splice_text(value).map_err(|p| self.problem(p, *start, *end))?;
                    text.push_str(&spliced);
                }
            }
        }
        Ok(text)
    }

    fn escape_value(&self, literal: &Literal, value: &BindValue) -> Result<String, ValueProblem> {
        let text = value::splice_text(value)?;
        match literal.quote {
            Quote::OracleQ(_) if text.contains('\0') => Err(ValueProblem::Nul),
            Quote::OracleQ(_) => Ok(text.into_owned()),
            Quote::Double => value::escape_in_quotes(self.flavor, '"', &text),
            _ if literal.prefix == Prefix::Escape => postgres_escape_string(&text),
            _ => value::escape_in_quotes(self.flavor, '\'', &text),
        }
    }

    /// Lexes generated text again and refuses it unless it is exactly one literal.
    /// The escaping above makes this always true; the check keeps it so, should
    /// a dialect rule be missed (an Oracle q'[…]' literal, for one, cannot
    /// escape its closing delimiter at all).
    fn verify_one_literal(&self, text: &str, pieces: &[Piece<'_>]) -> Result<(), TemplateError> {
        let tokens = tokenize(text, self.flavor, &NoPlaceholders);
        let is_one_literal = matches!(tokens.as_deref(),
            Ok([Token { kind: TokenKind::Literal(_), start: 0, end }]) if *end == text.len());
        if is_one_literal {
            return Ok(());
        }
        let (start, end) = first_value_span(pieces);
        Err(TemplateError::CannotSplice {
            placeholder: self.src[start..end].to_string(),
            reason: "its value would end the literal it is in",
            position: (self.locate)(start),
        })
    }

    fn single(
        &self,
        resolved: Resolved,
        start: usize,
        end: usize,
    ) -> Result<BindValue, TemplateError> {
        match resolved {
            Resolved::One(value) => Ok(value),
            Resolved::List(_) => Err(TemplateError::CannotSplice {
                placeholder: self.src[start..end].to_string(),
                reason: "a list of values must stand bare in SQL, not inside quotes",
                position: (self.locate)(start),
            }),
        }
    }

    /// `a, b, c` (or `NULL` for an empty list, so that `IN (…)` stays valid
    /// and matches nothing).
    fn emit_list(
        &self,
        out: &mut Output,
        values: &[BindValue],
        start: usize,
        end: usize,
        next: Option<char>,
    ) -> Result<(), TemplateError> {
        if values.is_empty() {
            return self.emit_value(out, &BindValue::Null, start, end, next);
        }
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                out.sql.push_str(", ");
            }
            let after = if index + 1 == values.len() {
                next
            } else {
                None
            };
            self.emit_value(out, value, start, end, after)?;
        }
        Ok(())
    }

    fn emit_value(
        &self,
        out: &mut Output,
        value: &BindValue,
        start: usize,
        end: usize,
        next: Option<char>,
    ) -> Result<(), TemplateError> {
        let written = match self.mode {
            OutputMode::Binds(style) => {
                out.binds.push(value.clone());
                bind_marker(style, out.binds.len())
            }
            OutputMode::Literals => {
                let literal = value::literal(self.flavor, value)
                    .map_err(|problem| self.problem(problem, start, end))?;
                if matches!(value, BindValue::Text(_)) {
                    let piece = [Piece::Value(value.clone(), start, end)];
                    self.verify_one_literal(&literal, &piece)?;
                }
                literal
            }
        };
        push_separated(&mut out.sql, &written, next);
        Ok(())
    }

    fn problem(&self, problem: ValueProblem, start: usize, end: usize) -> TemplateError {
        let placeholder = self.src[start..end].to_string();
        let position = (self.locate)(start);
        match problem {
            ValueProblem::Nul => TemplateError::NulInValue {
                placeholder,
                dialect: self.flavor.name(),
                position,
            },
            ValueProblem::NonFinite => TemplateError::NonFiniteNumber {
                placeholder,
                position,
            },
        }
    }

    fn value_error(&self, problem: ValueProblem, pieces: &[Piece<'_>]) -> TemplateError {
        let (start, end) = first_value_span(pieces);
        self.problem(problem, start, end)
    }
}

struct Output {
    sql: String,
    binds: Vec<BindValue>,
}

enum Piece<'a> {
    Raw(&'a str),
    Value(BindValue, usize, usize),
}

fn first_value_span(pieces: &[Piece<'_>]) -> (usize, usize) {
    pieces
        .iter()
        .find_map(|piece| match piece {
            Piece::Value(_, start, end) => Some((*start, *end)),
            Piece::Raw(_) => None,
        })
        .unwrap_or((0, 0))
}

fn bind_marker(style: BindStyle, number: usize) -> String {
    match style {
        BindStyle::QuestionMark => "?".to_string(),
        BindStyle::AtP => format!("@P{number}"),
        BindStyle::ColonNumber => format!(":{number}"),
    }
}

/// Inside PostgreSQL `E'…'` both `\` and `'` are special.
fn postgres_escape_string(text: &str) -> Result<String, ValueProblem> {
    if text.contains('\0') {
        return Err(ValueProblem::Nul);
    }
    Ok(text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Appends `written` with a space on either side where it would otherwise
/// glue onto a neighbouring word or number (`abc$s_0$…` would be one
/// PostgreSQL identifier, `@P1` followed by `5` would be `@P15`).
fn push_separated(sql: &mut String, written: &str, next: Option<char>) {
    if sql.chars().next_back().is_some_and(is_sticky) {
        sql.push(' ');
    }
    sql.push_str(written);
    if next.is_some_and(is_sticky) {
        sql.push(' ');
    }
}
