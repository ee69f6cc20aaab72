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

/// What a byte is to the tokenizer, looked up in [`BYTE_CLASS`]: one load per byte instead
/// of a chain of range tests.
const SEPARATOR: u8 = 0;
const DIGIT: u8 = 1;
const LETTER: u8 = 2;
/// Joins the parts of one word: `-`, `_`, `.`, `/`.
const JOINER: u8 = 3;
/// Part of a multi-byte character, decoded to tell whether it is alphanumeric.
const NON_ASCII: u8 = 4;

static BYTE_CLASS: [u8; 256] = {
    let mut table = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_alphabetic() {
            LETTER
        } else if matches!(c, b'-' | b'_' | b'.' | b'/') {
            JOINER
        } else if c.is_ascii() {
            SEPARATOR
        } else {
            NON_ASCII
        };
        b += 1;
    }
    table
};

/// A token of the current word: its byte range and position.
#[derive(Clone, Copy, Debug)]
struct Pending {
    from: usize,
    to: usize,
    position: usize,
}

/// The tokenizer of the `body` field (see the module documentation). Public so that a bench
/// can measure tantivy alone with the same tokens.
#[derive(Clone, Default)]
pub struct LogTokenizer {
    token: Token,
    pending: Vec<Pending>,
}

/// The tokens of one text.
pub struct LogTokenStream<'a> {
    text: &'a str,
    at: usize,
    next_position: usize,
    /// Tokens of the current word, in the order they are returned (the whole word first).
    pending: &'a mut Vec<Pending>,
    /// The next of them to return.
    next_pending: usize,
    /// Whether the current word is all ASCII (nearly every word of a log line), so its
    /// tokens are lowercased without decoding.
    word_ascii: bool,
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
            next_pending: 0,
            word_ascii: true,
            token: &mut self.token,
        }
    }
}

/// Whether the character at byte `i` of `text` (a char boundary) is alphanumeric, and its
/// length in bytes. Log text is nearly all ASCII, which is answered without decoding.
#[inline]
fn alphanumeric_at(text: &str, i: usize) -> (bool, usize) {
    match BYTE_CLASS[usize::from(text.as_bytes()[i])] {
        DIGIT | LETTER => return (true, 1),
        NON_ASCII => {}
        _ => return (false, 1),
    }
    match text[i..].chars().next() {
        Some(c) => (c.is_alphanumeric(), c.len_utf8()),
        None => (false, 1),
    }
}

impl LogTokenStream<'_> {
    /// Queues the tokens of the next word; false at the end of the text.
    fn next_word(&mut self) -> bool {
        let text = self.text;
        let len = text.len();
        let mut i = self.at;
        let bytes = text.as_bytes();
        // The word starts at the next alphanumeric.
        loop {
            let Some(&b) = bytes.get(i) else {
                self.at = len;
                return false;
            };
            match BYTE_CLASS[usize::from(b)] {
                DIGIT | LETTER => break,
                NON_ASCII => match alphanumeric_at(text, i) {
                    (true, _) => break,
                    (false, width) => i += width,
                },
                _ => i += 1,
            }
        }
        let start = i;
        self.word_ascii = true;
        self.pending.clear();
        self.next_pending = 0;
        // A slot for the whole word, filled in once it is known to have several parts.
        self.pending.push(Pending {
            from: start,
            to: start,
            position: self.next_position,
        });
        // The word: runs of alphanumerics (its parts) joined by joiners, ending on an
        // alphanumeric.
        let mut only_digits = true;
        let end = loop {
            let from = i;
            while i < len {
                match BYTE_CLASS[usize::from(bytes[i])] {
                    DIGIT => i += 1,
                    LETTER => {
                        only_digits = false;
                        i += 1;
                    }
                    NON_ASCII => match alphanumeric_at(text, i) {
                        (true, width) => {
                            self.word_ascii = false;
                            only_digits = false;
                            i += width;
                        }
                        (false, _) => break,
                    },
                    _ => break,
                }
            }
            let position = self.next_position + self.pending.len() - 1;
            self.pending.push(Pending {
                from,
                to: i,
                position,
            });
            let part_end = i;
            while i < len && BYTE_CLASS[usize::from(bytes[i])] == JOINER {
                i += 1;
            }
            // Joiners continue the word only when another part follows them.
            if i == part_end || i >= len || !alphanumeric_at(text, i).0 {
                break part_end;
            }
        };
        let parts = self.pending.len() - 1;
        // Numbers (`0.95`, `10.42.0.7`, `2024-05-01`) are found by their parts as a phrase;
        // a whole token for them would only grow the index.
        if parts > 1 && !only_digits {
            self.pending[0].to = end;
        } else {
            self.next_pending = 1;
        }
        self.at = end;
        self.next_position += parts;
        true
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Pending { from, to, position } = loop {
            if self.next_pending >= self.pending.len() && !self.next_word() {
                return false;
            }
            let token = self.pending[self.next_pending];
            self.next_pending += 1;
            // Absurdly long tokens (a base64 blob) would only bloat the dictionary.
            if token.to - token.from < MAX_TOKEN_BYTES {
                break token;
            }
        };
        // Lowercased here rather than by a filter: one pass, and none at all for the usual
        // ASCII text.
        let text = &self.text[from..to];
        self.token.text.clear();
        if self.word_ascii {
            self.token.text.push_str(text);
            self.token.text.make_ascii_lowercase();
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
        let owned = |want: &[(&str, usize)]| -> Vec<(String, usize)> {
            want.iter().map(|(t, p)| (t.to_string(), *p)).collect()
        };
        assert_eq!(
            tokens("x--Y_ a—b État-2"),
            owned(&[
                ("x--y", 0),
                ("x", 0),
                ("y", 1),
                ("a", 2),
                ("b", 3),
                ("état-2", 4),
                ("état", 4),
                ("2", 5)
            ]),
            "joiners in a row, a non-ASCII separator, a non-ASCII word"
        );
        assert!(tokens("").is_empty());
        assert!(tokens(" -- ").is_empty());
    }
}
