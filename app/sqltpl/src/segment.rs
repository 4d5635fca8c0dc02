//! Segment-sync templates (seed 003):
//!
//! | tag                              | renders                                              |
//! |----------------------------------|------------------------------------------------------|
//! | `{segment_id}`, `{segment_name}` | the segment's id / name                              |
//! | `{for $index, $lead = $batch}`…`{end}` | the body once per profile of the batch (`$index, ` optional) |
//! | `{$index}`                       | the 0-based position in the batch                    |
//! | `{$lead.FIELD}`                  | a profile field (dotted path; missing → NULL)         |
//! | `{autocomma}`                    | `,` after every iteration but the last               |
//! | `{batch_in "FIELD"}`             | `'a', 'b', 'c'`: the field of every profile (empty batch → `NULL`) |
//! | `{{`                             | a literal `{`                                        |
//!
//! A `{` not followed by a letter, `$` or `_` is plain SQL (JSON in a string
//! literal stays as written). A newline right after `{for …}` or `{end}` is
//! dropped, so loops can sit on lines of their own.
//!
//! Tags are processed before the SQL is read, then every value is written as
//! a literal according to where it stands in the SQL, with the rules of
//! [`crate::placeholders`]: bare, or the whole of a `'…'`/`"…"` literal (the
//! quotes are replaced), it becomes one literal of its own type (text as
//! `'…'` with `''` doubled — plus backslash escapes on MySQL, `\'` on
//! ClickHouse, `N'…'` on SQL Server, dollar quotes on PostgreSQL); inside a
//! larger literal its text is escaped into it; in comments tags stay as written.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::engine::{Engine, Occurrence, OutputMode, Resolved};
use crate::error::{Position, TemplateError};
use crate::lexer::{Flavor, Recognizer, TokenKind};
use crate::value::BindValue;

/// The SQL dialect segment templates are rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentDialect {
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
    Sqlserver,
    Oracle,
    /// ClickHouse-style: backslash escapes, `\'` for a quote.
    Clickhouse,
}

impl SegmentDialect {
    pub const ALL: [SegmentDialect; 6] = [
        SegmentDialect::Postgres,
        SegmentDialect::Mysql,
        SegmentDialect::Sqlite,
        SegmentDialect::Sqlserver,
        SegmentDialect::Oracle,
        SegmentDialect::Clickhouse,
    ];

    fn flavor(self) -> Flavor {
        match self {
            SegmentDialect::Postgres => Flavor::Postgres,
            SegmentDialect::Mysql => Flavor::Mysql,
            SegmentDialect::Sqlite => Flavor::Sqlite,
            SegmentDialect::Sqlserver => Flavor::Sqlserver,
            SegmentDialect::Oracle => Flavor::Oracle,
            SegmentDialect::Clickhouse => Flavor::Clickhouse,
        }
    }
}

/// The segment an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// A number or a string; typed like params (see [`BindValue::from_json`]).
    pub id: Value,
    pub name: String,
}

/// A parsed template, checked for syntax; render it with [`SegmentTemplate::render`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentTemplate {
    source: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text {
        start: usize,
        end: usize,
    },
    /// `{{`, rendered as `{`.
    Brace {
        start: usize,
    },
    Value {
        tag: ValueTag,
        span: Span,
    },
    Autocomma {
        span: Span,
    },
    BatchIn {
        field: String,
        span: Span,
    },
    Loop {
        body: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ValueTag {
    SegmentId,
    SegmentName,
    Index,
    LeadField(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// Checks a template's syntax (at save time) and keeps it for rendering.
pub fn parse_segment_template(src: &str) -> Result<SegmentTemplate, TemplateError> {
    let mut parser = Parser { src, pos: 0 };
    let nodes = parser.sequence(None)?;
    Ok(SegmentTemplate {
        source: src.to_string(),
        nodes,
    })
}

impl SegmentTemplate {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The SQL for one event about `segment` and a batch of profiles (each a
    /// JSON object of fields; empty for clear/create/delete events).
    pub fn render(
        &self,
        dialect: SegmentDialect,
        segment: &SegmentInfo,
        batch: &[Map<String, Value>],
    ) -> Result<String, TemplateError> {
        let flat = Flattener::new(&self.source, segment, batch).flatten(&self.nodes);
        flat.render(&self.source, dialect.flavor())
    }
}

// ---- parsing ----

struct LoopVars {
    index: Option<String>,
    item: String,
}

enum Tag {
    SegmentId,
    SegmentName,
    Autocomma,
    End,
    For(LoopVars),
    Variable { name: String, path: Option<String> },
    BatchIn(String),
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn syntax(&self, message: impl Into<String>, offset: usize) -> TemplateError {
        TemplateError::Syntax {
            message: message.into(),
            position: Position::at(self.src, offset),
        }
    }

    /// Nodes up to the end of the text, or (inside a loop) up to its `{end}`.
    fn sequence(
        &mut self,
        in_loop: Option<(&LoopVars, usize)>,
    ) -> Result<Vec<Node>, TemplateError> {
        let mut nodes = Vec::new();
        let mut text_start = self.pos;
        while let Some(found) = self.src[self.pos..].find('{') {
            let at = self.pos + found;
            self.pos = at;
            if self.src[at..].starts_with("{{") {
                push_text(&mut nodes, text_start, at);
                nodes.push(Node::Brace { start: at });
                self.pos = at + 2;
                text_start = self.pos;
                continue;
            }
            if !self.tag_starts_here() {
                self.pos = at + 1;
                continue;
            }
            push_text(&mut nodes, text_start, at);
            let (tag, span) = self.tag()?;
            match self.node(tag, span, in_loop.map(|(vars, _)| vars))? {
                Some(node) => nodes.push(node),
                None if in_loop.is_some() => return Ok(nodes),
                None => return Err(self.syntax("{end} without a {for …}", span.start)),
            }
            text_start = self.pos;
        }
        self.pos = self.src.len();
        if let Some((_, for_start)) = in_loop {
            let line = Position::at(self.src, for_start).line;
            return Err(self.syntax(
                format!("the loop opened on line {line} has no {{end}}"),
                for_start,
            ));
        }
        push_text(&mut nodes, text_start, self.src.len());
        Ok(nodes)
    }

    /// The node for a tag; `None` for `{end}`.
    fn node(
        &mut self,
        tag: Tag,
        span: Span,
        in_loop: Option<&LoopVars>,
    ) -> Result<Option<Node>, TemplateError> {
        let value = |tag| Ok(Some(Node::Value { tag, span }));
        match tag {
            Tag::SegmentId => value(ValueTag::SegmentId),
            Tag::SegmentName => value(ValueTag::SegmentName),
            Tag::BatchIn(field) => Ok(Some(Node::BatchIn { field, span })),
            Tag::End => {
                self.skip_newline();
                Ok(None)
            }
            Tag::Autocomma if in_loop.is_some() => Ok(Some(Node::Autocomma { span })),
            Tag::Autocomma => {
                Err(self.syntax("{autocomma} is only allowed inside {for …}", span.start))
            }
            Tag::For(_) if in_loop.is_some() => {
                Err(self.syntax("loops cannot be nested", span.start))
            }
            Tag::For(vars) => {
                self.skip_newline();
                let body = self.sequence(Some((&vars, span.start)))?;
                Ok(Some(Node::Loop { body }))
            }
            Tag::Variable { name, path } => self.variable(name, path, span, in_loop).map(Some),
        }
    }

    fn variable(
        &self,
        name: String,
        path: Option<String>,
        span: Span,
        in_loop: Option<&LoopVars>,
    ) -> Result<Node, TemplateError> {
        let Some(vars) = in_loop else {
            return Err(self.syntax(
                format!("${name} is only available inside {{for …}}"),
                span.start,
            ));
        };
        let tag = match path {
            None if vars.index.as_deref() == Some(name.as_str()) => ValueTag::Index,
            Some(path) if vars.item == name => ValueTag::LeadField(path),
            None if vars.item == name => {
                return Err(self.syntax(format!("name a field: {{${name}.FIELD}}"), span.start));
            }
            _ => return Err(self.syntax(format!("unknown variable ${name}"), span.start)),
        };
        Ok(Node::Value { tag, span })
    }

    fn skip_newline(&mut self) {
        let rest = &self.src[self.pos..];
        if rest.starts_with("\r\n") {
            self.pos += 2;
        } else if rest.starts_with('\n') {
            self.pos += 1;
        }
    }

    /// A tag starts with `{`, optional spaces, then a letter, `$` or `_`.
    fn tag_starts_here(&self) -> bool {
        self.src[self.pos + 1..]
            .trim_start_matches([' ', '\t'])
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '$' || c == '_')
    }

    fn tag(&mut self) -> Result<(Tag, Span), TemplateError> {
        let start = self.pos;
        let line_end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |i| start + i);
        let Some(close) = self.src[start..line_end].find('}') else {
            return Err(self.syntax("unclosed tag: expected `}` on the same line", start));
        };
        let end = start + close + 1;
        self.pos = end;
        let span = Span { start, end };
        let content = self.src[start + 1..end - 1].trim();
        let tag = self.tag_content(content, start)?;
        Ok((tag, span))
    }

    fn tag_content(&self, content: &str, start: usize) -> Result<Tag, TemplateError> {
        match content {
            "segment_id" => return Ok(Tag::SegmentId),
            "segment_name" => return Ok(Tag::SegmentName),
            "autocomma" => return Ok(Tag::Autocomma),
            "end" => return Ok(Tag::End),
            _ => {}
        }
        if let Some(header) = keyword_rest(content, "for") {
            return self.loop_header(header, start).map(Tag::For);
        }
        if let Some(argument) = keyword_rest(content, "batch_in") {
            return self.batch_in_field(argument, start).map(Tag::BatchIn);
        }
        if let Some(variable) = content.strip_prefix('$') {
            return self.variable_tag(variable, start);
        }
        Err(self.syntax(format!("unknown tag {{{content}}}"), start))
    }

    /// `$index, $lead = $batch` or `$lead = $batch`.
    fn loop_header(&self, header: &str, start: usize) -> Result<LoopVars, TemplateError> {
        let expected = "expected {for $index, $lead = $batch}";
        let Some((variables, collection)) = header.split_once('=') else {
            return Err(self.syntax(expected, start));
        };
        if collection.trim() != "$batch" {
            return Err(self.syntax("a loop can only go over $batch", start));
        }
        let names: Vec<Option<&str>> = variables
            .split(',')
            .map(|name| variable_name(name.trim()))
            .collect();
        match names.as_slice() {
            [Some(item)] => Ok(LoopVars {
                index: None,
                item: item.to_string(),
            }),
            [Some(index), Some(item)] if index != item => Ok(LoopVars {
                index: Some(index.to_string()),
                item: item.to_string(),
            }),
            _ => Err(self.syntax(expected, start)),
        }
    }

    fn batch_in_field(&self, argument: &str, start: usize) -> Result<String, TemplateError> {
        let field = argument
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'));
        match field {
            Some(field) if is_field_path(field) => Ok(field.to_string()),
            _ => Err(self.syntax("expected {batch_in \"FIELD\"}", start)),
        }
    }

    fn variable_tag(&self, variable: &str, start: usize) -> Result<Tag, TemplateError> {
        let (name, path) = match variable.split_once('.') {
            Some((name, path)) => (name, Some(path)),
            None => (variable, None),
        };
        let name_ok = is_identifier(name);
        let path_ok = path.is_none_or(is_field_path);
        if !name_ok || !path_ok {
            return Err(self.syntax(format!("malformed variable {{${variable}}}"), start));
        }
        Ok(Tag::Variable {
            name: name.to_string(),
            path: path.map(str::to_string),
        })
    }
}

fn push_text(nodes: &mut Vec<Node>, start: usize, end: usize) {
    if start < end {
        nodes.push(Node::Text { start, end });
    }
}

/// What follows `keyword` and at least one space in `content`.
fn keyword_rest<'c>(content: &'c str, keyword: &str) -> Option<&'c str> {
    let rest = content.strip_prefix(keyword)?;
    rest.starts_with([' ', '\t']).then(|| rest.trim())
}

fn variable_name(text: &str) -> Option<&str> {
    text.strip_prefix('$').filter(|name| is_identifier(name))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Dotted field names made of letters, digits, `_` and `-`.
fn is_field_path(path: &str) -> bool {
    path.split('.').all(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

// ---- rendering ----

/// The template with its tags expanded: SQL text in which every value tag
/// stays as written (so the SQL lexer sees the template's own text, and tags
/// in comments come out unchanged), with the tag's value noted at its offset.
struct Flat {
    text: String,
    /// (offset in `text`, offset in the template) where each run starts.
    origins: Vec<(usize, usize)>,
    /// offset in `text` → (length, index into `values`)
    markers: HashMap<usize, (usize, usize)>,
    values: Vec<(usize, MarkerValue)>,
}

enum MarkerValue {
    One(BindValue),
    List(Vec<BindValue>),
}

struct Flattener<'a> {
    source: &'a str,
    segment: &'a SegmentInfo,
    batch: &'a [Map<String, Value>],
    flat: Flat,
}

impl<'a> Flattener<'a> {
    fn new(source: &'a str, segment: &'a SegmentInfo, batch: &'a [Map<String, Value>]) -> Self {
        Flattener {
            source,
            segment,
            batch,
            flat: Flat {
                text: String::with_capacity(source.len()),
                origins: Vec::new(),
                markers: HashMap::new(),
                values: Vec::new(),
            },
        }
    }

    fn flatten(mut self, nodes: &[Node]) -> Flat {
        self.nodes(nodes, None);
        self.flat
    }

    /// `lead` is (index, profile, is_last) inside a loop.
    fn nodes(&mut self, nodes: &[Node], lead: Option<(usize, &Map<String, Value>, bool)>) {
        for node in nodes {
            match node {
                Node::Text { start, end } => self.text(&self.source[*start..*end], *start),
                Node::Brace { start } => self.text("{", *start),
                Node::Autocomma { span } => {
                    if lead.is_some_and(|(_, _, is_last)| !is_last) {
                        self.text(",", span.start);
                    }
                }
                Node::Value { tag, span } => {
                    let value = self.tag_value(tag, lead);
                    self.marker(*span, MarkerValue::One(value));
                }
                Node::BatchIn { field, span } => {
                    let values = self
                        .batch
                        .iter()
                        .map(|profile| field_value(profile, field))
                        .collect();
                    self.marker(*span, MarkerValue::List(values));
                }
                Node::Loop { body } => {
                    let batch = self.batch;
                    for (index, profile) in batch.iter().enumerate() {
                        self.nodes(body, Some((index, profile, index + 1 == batch.len())));
                    }
                }
            }
        }
    }

    fn tag_value(
        &self,
        tag: &ValueTag,
        lead: Option<(usize, &Map<String, Value>, bool)>,
    ) -> BindValue {
        match (tag, lead) {
            (ValueTag::SegmentId, _) => BindValue::from_json(&self.segment.id),
            (ValueTag::SegmentName, _) => BindValue::Text(self.segment.name.clone()),
            (ValueTag::Index, Some((index, _, _))) => {
                BindValue::Int(i64::try_from(index).unwrap_or(i64::MAX))
            }
            (ValueTag::LeadField(path), Some((_, profile, _))) => field_value(profile, path),
            // The parser only accepts loop variables inside loops.
            (ValueTag::Index | ValueTag::LeadField(_), None) => BindValue::Null,
        }
    }

    fn text(&mut self, text: &str, template_offset: usize) {
        self.flat
            .origins
            .push((self.flat.text.len(), template_offset));
        self.flat.text.push_str(text);
    }

    fn marker(&mut self, span: Span, value: MarkerValue) {
        let at = self.flat.text.len();
        let index = self.flat.values.len();
        self.flat.markers.insert(at, (span.end - span.start, index));
        self.flat.values.push((at, value));
        self.text(&self.source[span.start..span.end], span.start);
    }
}

fn field_value(profile: &Map<String, Value>, path: &str) -> BindValue {
    let mut names = path.split('.');
    let first = names.next().and_then(|name| profile.get(name));
    let found = names.fold(first, |current, name| {
        current.and_then(|value| value.get(name))
    });
    found.map_or(BindValue::Null, BindValue::from_json)
}

struct Markers<'a>(&'a HashMap<usize, (usize, usize)>);

impl Recognizer for Markers<'_> {
    type Item = usize;

    fn recognize(&self, src: &str, at: usize) -> Result<Option<(usize, usize)>, TemplateError> {
        Ok(self
            .0
            .get(&at)
            .filter(|(len, _)| at + len <= src.len())
            .map(|(len, index)| (*len, *index)))
    }
}

impl Flat {
    fn template_offset(&self, flat_offset: usize) -> usize {
        let run = self
            .origins
            .partition_point(|(start, _)| *start <= flat_offset);
        match run.checked_sub(1).and_then(|index| self.origins.get(index)) {
            Some((flat_start, template_start)) => template_start + (flat_offset - flat_start),
            None => 0,
        }
    }

    fn render(&self, source: &str, flavor: Flavor) -> Result<String, TemplateError> {
        let locate = |offset| Position::at(source, self.template_offset(offset));
        let markers = Markers(&self.markers);
        let engine = Engine {
            src: &self.text,
            flavor,
            mode: OutputMode::Literals,
            recognizer: &markers,
            locate: &locate,
        };
        let mut visited = vec![false; self.values.len()];
        let mut resolve = |occurrence: Occurrence<'_, usize>| {
            let index = *occurrence.item;
            if let Some(seen) = visited.get_mut(index) {
                *seen = true;
            }
            self.resolve(index)
        };
        let sql = engine.substitute(&mut resolve)?.sql;
        self.check_all_placed(&engine, &visited)?;
        Ok(sql)
    }

    /// Lists are refused by the engine anywhere but bare in SQL.
    fn resolve(&self, index: usize) -> Result<Resolved, TemplateError> {
        Ok(match self.values.get(index).map(|(_, value)| value) {
            Some(MarkerValue::One(value)) => Resolved::One(value.clone()),
            Some(MarkerValue::List(values)) => Resolved::List(values.clone()),
            None => Resolved::One(BindValue::Null),
        })
    }

    /// Every tag outside a comment got its value: one the SQL lexer could not
    /// see (right after a backslash escape, say) would otherwise go out as
    /// template text.
    fn check_all_placed(
        &self,
        engine: &Engine<'_, Markers<'_>>,
        visited: &[bool],
    ) -> Result<(), TemplateError> {
        let tokens = engine.tokens()?;
        let in_comment = |offset: usize| {
            tokens.iter().any(|token| {
                matches!(token.kind, TokenKind::LineComment | TokenKind::BlockComment)
                    && token.start <= offset
                    && offset < token.end
            })
        };
        for ((offset, _), seen) in self.values.iter().zip(visited) {
            if !seen && !in_comment(*offset) {
                let (len, _) = self.markers.get(offset).copied().unwrap_or((0, 0));
                let tag = self.text.get(*offset..*offset + len).unwrap_or_default();
                return Err(TemplateError::CannotSplice {
                    placeholder: tag.to_string(),
                    reason: "the tag is not where a value can go (after a backslash escape?)",
                    position: (engine.locate)(*offset),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
