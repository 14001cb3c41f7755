//! How deeply a YAML document nests, told from its text in one pass, before a parser sees it.
//!
//! The YAML parser's work grows with the square of the nesting depth (an 80 KB document of
//! 40,000 nested flow sequences takes seconds), and the deserializer refuses anything deeper
//! than 128 levels anyway. So a document nested deeper than [`MAX_DEPTH`] is refused unparsed.
//!
//! # Caveats
//! The count is an estimate that errs on the high side only for odd text: every block level
//! (a deeper indentation, or each `- ` of a compact nested sequence) and every flow
//! collection opened (`[` or `{` where a node starts) counts one level. Quoted scalars,
//! comments and the content of block scalars (`|`, `>`) are skipped.

/// The deepest nesting a document may have: the deserializer's own limit.
pub(super) const MAX_DEPTH: usize = 128;

/// The 1-based line of `text` where its nesting first goes deeper than `limit`, if it does.
pub(super) fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let mut scan = Scan::default();
    for (line_no, line) in text.lines().enumerate() {
        if scan.line(line) > limit {
            return Some(line_no + 1);
        }
    }
    None
}

#[derive(Default)]
struct Scan {
    /// Indentations of the open block levels, innermost last.
    indents: Vec<usize>,
    /// Open flow collections.
    flow: usize,
    /// Inside a quoted scalar that goes on past its line: the quote.
    quote: Option<char>,
    /// Inside a block scalar: lines indented more than this are its content.
    block_scalar: Option<usize>,
}

impl Scan {
    /// Reads one line; returns the deepest nesting seen on it.
    fn line(&mut self, line: &str) -> usize {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return 0;
            }
            self.block_scalar = None;
        }
        if blank && self.quote.is_none() {
            return 0;
        }
        let mut column = indent;
        if self.flow == 0 && self.quote.is_none() {
            // `- - x` is a sequence in a sequence: each `- ` opens a level at its column, and
            // what follows it is indented past it.
            let mut rest = &line[indent..];
            while let Some(after) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
                self.open(column);
                let skipped = after.len() - after.trim_start().len();
                column += 2 + skipped;
                rest = after.trim_start();
            }
            if !rest.is_empty() {
                self.open(column);
            }
        }
        let mut deepest = self.indents.len() + self.flow;
        let mut prev = ' ';
        let mut chars = line[column.min(line.len())..].chars().peekable();
        while let Some(c) = chars.next() {
            if let Some(q) = self.quote {
                // `''` in single quotes and `\x` in double quotes do not end them.
                let escaped =
                    (c == q && q == '\'' && chars.peek() == Some(&'\'')) || (c == '\\' && q == '"');
                if escaped {
                    chars.next();
                } else if c == q {
                    self.quote = None;
                }
                prev = c;
                continue;
            }
            let node_start = prev.is_whitespace()
                || matches!(prev, '[' | '{' | ',')
                || (prev == ':' && self.flow > 0);
            match c {
                '#' if prev.is_whitespace() => break,
                '"' | '\'' if node_start => self.quote = Some(c),
                '[' | '{' if node_start || self.flow > 0 => self.flow += 1,
                ']' | '}' if self.flow > 0 => self.flow -= 1,
                _ => {}
            }
            deepest = deepest.max(self.indents.len() + self.flow);
            prev = c;
        }
        if self.flow == 0 && self.quote.is_none() && starts_block_scalar(line) {
            self.block_scalar = Some(indent);
        }
        deepest
    }
}

impl Scan {
    /// A block level starting at `column`: it closes those at or right of it.
    fn open(&mut self, column: usize) {
        while self.indents.last().is_some_and(|&top| top >= column) {
            self.indents.pop();
        }
        self.indents.push(column);
    }
}

/// Whether a line ends with a block scalar's header: `|`, `>`, with optional chomping and
/// indentation indicators (`|-`, `>+2`), then perhaps a comment.
fn starts_block_scalar(line: &str) -> bool {
    let code = match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    };
    let Some(last) = code.trim_end().rsplit(' ').next() else {
        return false;
    };
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        let mut scan = Scan::default();
        text.lines().map(|l| scan.line(l)).max().unwrap_or(0)
    }

    #[test]
    fn counts_block_and_flow_levels() {
        assert_eq!(depth("a: 1\n"), 1);
        assert_eq!(depth("a:\n  b:\n    c: 1\n"), 3);
        assert_eq!(depth("a: [1, [2, {b: 3}]]\n"), 4);
        assert_eq!(depth("- - - x\n"), 4);
        assert_eq!(depth("a:\n  - b: 1\n    c: 2\n"), 3);
        assert_eq!(depth("a:\n- b\n- c\n"), 2);
        assert_eq!(depth("a:\n  b: 1\nc: 2\n"), 2);
    }

    #[test]
    fn skips_quotes_comments_block_scalars_and_brackets_inside_words() {
        assert_eq!(depth("a: \"[[[\"\nb: '{{'' [['\n"), 1);
        assert_eq!(depth("a: 1 # [[[[\n"), 1);
        assert_eq!(depth("image: repo/x[1]\n"), 1);
        let script =
            "data:\n  run.json: |\n    {\"a\": [[[[1]]]],\n        \"b\": 2}\n  other: x\n";
        assert_eq!(depth(script), 2);
        assert_eq!(depth("a: \"multi [\n  line [\"\nb: 1\n"), 1);
        assert_eq!(depth("{\"a\":\"[[[\"}\n"), 2);
    }

    #[test]
    fn finds_the_line_that_goes_too_deep() {
        let text = format!("a: 1\nb: {}1{}\n", "[".repeat(200), "]".repeat(200));
        assert_eq!(too_deep(&text, MAX_DEPTH), Some(2));
        assert_eq!(too_deep("a: [[1]]\n", MAX_DEPTH), None);
    }
}
