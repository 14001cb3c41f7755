//! One multi-document YAML file → [`Contents`]: every document that parses becomes an object;
//! every one that does not becomes a [`Problem`] naming the file, the document and the field.
//!
//! The file is split into documents at `---` / `...` lines before parsing, so a syntax error
//! costs only the document it is in (a YAML parser stops at the first one). The YAML spec forbids
//! these markers inside a document's content, so the split is exact.

use serde_norway::Value;

use crate::{self as api, DocumentError, Note, Object, ObjectKey};
use meshfleet_model::parallel;
use meshfleet_model::problem::{Problem, Source};

/// One document's object.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// 0-based index of the document in its file.
    pub index: usize,
    pub object: Object,
}

/// Everything one origin holds (a file of the config directory, a member cluster's watch): its
/// objects and what was wrong with the rest of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    pub documents: Vec<Document>,
    pub problems: Vec<Problem>,
    /// Documents refused (they did not parse or validate) whose object could still be told:
    /// document index and key. The index keeps that object's last valid version from the
    /// same file in effect.
    pub rejected: Vec<(usize, ObjectKey)>,
    /// The file could not be read or decoded at all: what it held before stays in effect.
    pub unreadable: bool,
    /// How many documents were refused (did not parse or validate).
    pub refused: usize,
}

/// Below this many documents per core a file is parsed on one thread.
const DOCUMENTS_PER_THREAD: usize = 256;

/// At most this many problems are listed per file; one more says how many were left out.
pub const MAX_PROBLEMS_PER_FILE: usize = 100;

/// Parses every document of `text`, the contents of `file` (a path relative to the source root).
///
/// Nothing is logged here: the problems are the caller's to report, and a file of 700,000 bad
/// documents gives [`MAX_PROBLEMS_PER_FILE`] of them and one that counts the rest.
pub fn parse_file(file: &str, text: &str) -> Contents {
    // Editors on Windows start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chunks = split_documents(text);
    // Parsing YAML is most of a load: big files use every core.
    let parsed = parallel::map_ordered(&chunks, DOCUMENTS_PER_THREAD, parse_chunk);
    let mut contents = Contents::default();
    let mut problems = Capped::default();
    let results = parsed
        .into_iter()
        .enumerate()
        .flat_map(|(index, results)| results.into_iter().map(move |result| (index, result)));
    for (index, parsed) in results {
        let source = Source::document(file, index);
        for note in parsed.notes {
            problems.push(|| Problem::new(source.clone(), note.message).at(note.field));
        }
        match parsed.result {
            Ok(object) => contents.documents.push(Document { index, object }),
            Err(DocumentError::Invalid { field, message }) => {
                problems.push(|| Problem {
                    source,
                    field,
                    message,
                });
                contents
                    .rejected
                    .extend(parsed.identity.map(|key| (index, key)));
                contents.refused += 1;
            }
            Err(DocumentError::UnknownKind { api_version, kind }) => {
                problems.push(|| {
                    Problem::new(
                        source,
                        format!("unknown kind {kind} ({api_version}); skipped"),
                    )
                });
            }
        }
    }
    contents.problems = problems.finish(file);
    contents
}

/// A file's problems, the first [`MAX_PROBLEMS_PER_FILE`] of them built and the rest counted.
#[derive(Default)]
struct Capped {
    listed: Vec<Problem>,
    left_out: usize,
}

impl Capped {
    fn push(&mut self, problem: impl FnOnce() -> Problem) {
        if self.listed.len() < MAX_PROBLEMS_PER_FILE {
            self.listed.push(problem());
        } else {
            self.left_out += 1;
        }
    }

    fn finish(mut self, file: &str) -> Vec<Problem> {
        if self.left_out > 0 {
            self.listed.push(Problem::new(
                Source::file(file),
                format!(
                    "{} more problems in this file, not listed (only the first {MAX_PROBLEMS_PER_FILE} are)",
                    self.left_out
                ),
            ));
        }
        self.listed
    }
}

/// One document's text and the 0-based line of the file it starts on.
#[derive(Debug, PartialEq)]
struct Chunk<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a YAML stream into its documents. A document is counted (given an index) when it was
/// started by `---` or has content; blank or comment-only text around markers is not a document.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start, mut first_line, mut explicit) = (0, 0, false);
    let mut offset = 0;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let marker = marker(line);
        if marker.is_some() {
            push_chunk(&mut chunks, &text[start..offset], first_line, explicit);
        }
        match marker {
            Some(Marker::Start) => (start, first_line, explicit) = (offset, line_no, true),
            Some(Marker::End) => {
                (start, first_line, explicit) = (offset + line.len(), line_no + 1, false);
            }
            None => {}
        }
        offset += line.len();
    }
    push_chunk(&mut chunks, &text[start..], first_line, explicit);
    chunks
}

enum Marker {
    Start,
    End,
}

fn marker(line: &str) -> Option<Marker> {
    let is = |m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    };
    if is("---") {
        Some(Marker::Start)
    } else if is("...") {
        Some(Marker::End)
    } else {
        None
    }
}

fn push_chunk<'a>(chunks: &mut Vec<Chunk<'a>>, text: &'a str, first_line: usize, explicit: bool) {
    let has_content = text.lines().any(|line| {
        let line = line.trim();
        !(line.is_empty() || line.starts_with('#') || line.starts_with('%'))
    });
    if explicit || has_content {
        chunks.push(Chunk { text, first_line });
    }
}

/// The objects of one document: none when it is empty, one, or the items of a `v1 List` (what
/// `kubectl get ... -o yaml` prints), each item's problem with its `items[i]` field.
fn parse_chunk(chunk: &Chunk<'_>) -> Vec<Parsed> {
    if let Some(line) = depth::too_deep(chunk.text, depth::MAX_DEPTH) {
        let error = DocumentError::Invalid {
            field: None,
            message: format!(
                "nested deeper than {} levels at line {}; not parsed",
                depth::MAX_DEPTH,
                chunk.first_line + line
            ),
        };
        return vec![Parsed::failed(error, None)];
    }
    let mut value: Value = match serde_norway::from_str(chunk.text) {
        Ok(value) => value,
        Err(error) => return vec![Parsed::failed(syntax_error(chunk, &error), None)],
    };
    if value.is_null() {
        return Vec::new();
    }
    if let Err(error) = value.apply_merge() {
        let error = DocumentError::Invalid {
            field: None,
            message: format!("invalid YAML: {error}"),
        };
        return vec![Parsed::failed(error, api::identity(&value))];
    }
    match list_items(&value) {
        Some(items) => items.iter().enumerate().map(list_item).collect(),
        None => vec![Parsed::of(&value, "")],
    }
}

/// One document (or list item) parsed.
struct Parsed {
    result: Result<Object, DocumentError>,
    /// When it failed but the object it meant to define can be told: that object's key.
    identity: Option<ObjectKey>,
    /// What in an accepted document has no effect.
    notes: Vec<Note>,
}

impl Parsed {
    fn failed(error: DocumentError, identity: Option<ObjectKey>) -> Self {
        Self {
            result: Err(error),
            identity,
            notes: Vec::new(),
        }
    }

    /// Parses `value`; `prefix` (`items[3].`) goes before every field path.
    fn of(value: &Value, prefix: &str) -> Self {
        let mut notes = Vec::new();
        let result = api::parse_document_noting(value, &mut notes);
        let identity = match &result {
            Err(DocumentError::Invalid { .. }) => api::identity(value),
            _ => None,
        };
        let result = result.map_err(|error| match error {
            DocumentError::Invalid { field, message } if !prefix.is_empty() => {
                DocumentError::Invalid {
                    field: Some(match field {
                        Some(field) => format!("{prefix}{field}"),
                        None => prefix.trim_end_matches('.').to_owned(),
                    }),
                    message,
                }
            }
            other => other,
        });
        // A refused document's notes are noise beside why it was refused.
        let notes = notes
            .into_iter()
            .filter(|_| result.is_ok())
            .map(|note| Note {
                field: format!("{prefix}{}", note.field),
                ..note
            })
            .collect();
        Self {
            result,
            identity,
            notes,
        }
    }
}

/// The `items` of a document of kind `List` (apiVersion `v1`).
fn list_items(value: &Value) -> Option<&Vec<Value>> {
    let is_list = value.get("kind").and_then(Value::as_str) == Some("List")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if !is_list {
        return None;
    }
    value.get("items").and_then(Value::as_sequence)
}

fn list_item((i, item): (usize, &Value)) -> Parsed {
    Parsed::of(item, &format!("items[{i}]."))
}

/// The syntax error of a chunk, with line numbers of the whole file: the parser counts from
/// the chunk's start, so every `line N` of its message moves down by the chunk's first line
/// (parsing the chunk again behind that many empty lines would make a file of many broken
/// documents cost the square of its length).
fn syntax_error(chunk: &Chunk<'_>, error: &serde_norway::Error) -> DocumentError {
    let mut message = error.to_string();
    if let (false, Some(at)) = (message.contains(" at line "), error.location()) {
        message.push_str(&format!(" at line {} column {}", at.line(), at.column()));
    }
    DocumentError::Invalid {
        field: None,
        message: format!("invalid YAML: {}", shift_lines(&message, chunk.first_line)),
    }
}

/// `message` with `by` added to the number after every `line `.
fn shift_lines(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let (before, after) = rest.split_at(at + "line ".len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(line) => out.push_str(&(line + by).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

mod depth;
#[cfg(test)]
mod tests;
