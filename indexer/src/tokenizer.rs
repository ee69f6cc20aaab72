//! The tokenizer of `body`: words of a log line, lowercased, with ids kept whole as well as
//! split.
//!
//! Log lines are full of compound tokens: `chatcmpl-a269fdcb`, `10.42.0.7`,
//! `async_llm.py`, `/v1/chat/completions`. A word is a run of letters and digits joined by
//! `-`, `_`, `.` or `/`; each word is indexed as its alphanumeric parts (so `a269fdcb` finds
//! the id) and, when it has several and is not a number, also whole at the position of its
//! first part (so the whole id is one exact term, and a prefix of it is a prefix of one
//! term). Phrase queries
//! are tokenized the same way, so the whole token and its parts line up in both.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens this long or longer are left out (tantivy's `RemoveLongFilter` limit).
const MAX_TOKEN_BYTES: usize = 128;

/// Characters that join the parts of one word.
fn joins(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '/')
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct LogTokenizer {
    token: Token,
    pending: Vec<(usize, usize, usize)>,
}

/// The tokens of one text.
pub struct LogTokenStream<'a> {
    text: &'a str,
    at: usize,
    next_position: usize,
    /// Tokens of the current word not yet returned: (from, to, position), in reverse.
    pending: &'a mut Vec<(usize, usize, usize)>,
    token: &'a mut Token,
}

impl Tokenizer for LogTokenizer {
    type TokenStream<'a> = LogTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LogTokenStream<'a> {
        self.token.reset();
        self.pending.clear();
        LogTokenStream {
            text,
            at: 0,
            next_position: 0,
            pending: &mut self.pending,
            token: &mut self.token,
        }
    }
}

impl LogTokenStream<'_> {
    /// Queues the tokens of the next word; false at the end of the text.
    fn next_word(&mut self) -> bool {
        let text = self.text;
        let rest = &text[self.at..];
        let Some(start) = rest.find(char::is_alphanumeric).map(|i| self.at + i) else {
            self.at = text.len();
            return false;
        };
        // The word: alphanumerics and joiners, ending on an alphanumeric. Its parts are
        // pushed in order, then reversed, so that they pop first to last.
        let base = self.pending.len();
        let position = self.next_position;
        let mut end = start;
        let mut part_start = None;
        for (i, c) in text[start..].char_indices() {
            let i = start + i;
            if c.is_alphanumeric() {
                if part_start.is_none() {
                    part_start = Some(i);
                }
                end = i + c.len_utf8();
            } else {
                if let Some(s) = part_start.take() {
                    let k = self.pending.len() - base;
                    self.pending.push((s, i, position + k));
                }
                if !joins(c) {
                    break;
                }
            }
        }
        if let Some(s) = part_start {
            let k = self.pending.len() - base;
            self.pending.push((s, end, position + k));
        }
        let parts = self.pending.len() - base;
        self.pending[base..].reverse();
        // Numbers (`0.95`, `10.42.0.7`, `2024-05-01`) are found by their parts as a phrase;
        // a whole token for them would only grow the index.
        let all_digits = text[start..end]
            .bytes()
            .all(|b| b.is_ascii_digit() || joins(b as char));
        if parts > 1 && !all_digits {
            self.pending.push((start, end, position));
        }
        self.at = end;
        self.next_position += parts;
        true
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let (from, to, position) = loop {
            if self.pending.is_empty() && !self.next_word() {
                return false;
            }
            match self.pending.pop() {
                // Absurdly long tokens (a base64 blob) would only bloat the dictionary.
                Some((from, to, _)) if to - from >= MAX_TOKEN_BYTES => continue,
                Some(token) => break token,
                None => return false,
            }
        };
        // Lowercased here rather than by a filter: one pass, and none at all for the usual
        // ASCII text.
        let text = &self.text[from..to];
        self.token.text.clear();
        if text.is_ascii() {
            self.token
                .text
                .extend(text.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            self.token
                .text
                .extend(text.chars().flat_map(char::to_lowercase));
        }
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = position;
        self.token.position_length = 1;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(String, usize)> {
        let mut t = LogTokenizer::default();
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while s.advance() {
            out.push((s.token().text.clone(), s.token().position));
        }
        out
    }

    #[test]
    fn ids_are_whole_and_split_at_the_same_position() {
        let got = tokens("Finished request chatcmpl-a269fdcb. (pid=1) ünïcode");
        let want = [
            ("finished", 0),
            ("request", 1),
            ("chatcmpl-a269fdcb", 2),
            ("chatcmpl", 2),
            ("a269fdcb", 3),
            ("pid", 4),
            ("1", 5),
            ("ünïcode", 6),
        ];
        let want: Vec<(String, usize)> = want.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        assert_eq!(got, want);
        assert_eq!(
            tokens("/v1/chat -x- .."),
            [
                ("v1/chat".to_string(), 0),
                ("v1".to_string(), 0),
                ("chat".to_string(), 1),
                ("x".to_string(), 2)
            ]
        );
        assert_eq!(
            tokens("10.42.0.7"),
            [
                ("10".to_string(), 0),
                ("42".to_string(), 1),
                ("0".to_string(), 2),
                ("7".to_string(), 3)
            ],
            "numbers only by parts"
        );
        assert!(tokens("").is_empty());
        assert!(tokens(" -- ").is_empty());
    }
}
