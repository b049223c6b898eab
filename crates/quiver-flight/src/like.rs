//! SQL `LIKE` patterns of Flight SQL's metadata calls (`GetTables`, `GetDbSchemas`).
//!
//! `%` matches any run of characters (none included), `_` exactly one character, and the
//! search-string escape [`ESCAPE`] (advertised through `SqlInfo::SqlSearchStringEscape`)
//! makes the next character literal (`\%`, `\_`, `\\`). Matching is greedy with one
//! backtrack point (the last `%` seen), so it takes at most O(pattern × name) steps whatever
//! the pattern: `%%%…%x` over a long name costs the same as `%x`, where the recursive
//! matcher this replaces took exponential time. Patterns are bounded ([`MAX_PATTERN_CHARS`])
//! so one call cannot make the server compare megabytes per table either.

use crate::error::{FlightError, Result};

/// The escape character of metadata patterns.
pub const ESCAPE: char = '\\';
/// [`ESCAPE`] as a string (for `SqlInfo`).
pub const ESCAPE_STR: &str = "\\";

/// Longest pattern accepted, in characters (names are at most 240 bytes).
pub const MAX_PATTERN_CHARS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `%`: any run of characters.
    Any,
    /// `_`: one character.
    One,
    Char(char),
}

/// A parsed `LIKE` pattern.
#[derive(Debug, Clone)]
pub struct LikePattern {
    tokens: Vec<Token>,
}

impl LikePattern {
    /// Parse `pattern`; fails when it is longer than [`MAX_PATTERN_CHARS`] or ends in a lone
    /// escape.
    pub fn parse(pattern: &str) -> Result<LikePattern> {
        let n = pattern.chars().count();
        if n > MAX_PATTERN_CHARS {
            return Err(FlightError::InvalidArgument(format!(
                "a name pattern may be at most {MAX_PATTERN_CHARS} characters long, this one has {n}"
            )));
        }
        let mut tokens = Vec::with_capacity(n);
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let t = match c {
                '%' => Token::Any,
                '_' => Token::One,
                ESCAPE => match chars.next() {
                    Some(e) => Token::Char(e),
                    None => {
                        return Err(FlightError::InvalidArgument(format!(
                            "name pattern '{pattern}' ends with the escape character '{ESCAPE}'"
                        )))
                    }
                },
                c => Token::Char(c),
            };
            // `%%` matches what `%` matches: keep one
            if t == Token::Any && tokens.last() == Some(&Token::Any) {
                continue;
            }
            tokens.push(t);
        }
        Ok(LikePattern { tokens })
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        let p = &self.tokens;
        let (mut pi, mut si) = (0usize, 0usize);
        // the last `%` seen and the name position its run currently ends at
        let mut backtrack: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Token::One) => {
                    pi += 1;
                    si += 1;
                }
                Some(Token::Char(c)) if *c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                Some(Token::Any) => {
                    backtrack = Some((pi, si));
                    pi += 1;
                }
                _ => match backtrack {
                    // let the last `%` swallow one more character and retry after it
                    Some((bp, bs)) => {
                        backtrack = Some((bp, bs + 1));
                        pi = bp + 1;
                        si = bs + 1;
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == Token::Any)
    }
}

/// Whether `name` matches `pattern` (`None`: no filter, everything matches).
pub fn filter(pattern: Option<&LikePattern>, name: &str) -> bool {
    pattern.is_none_or(|p| p.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(p: &str, s: &str) -> bool {
        LikePattern::parse(p).expect("pattern").matches(s)
    }

    /// A naive recursive matcher: the definition, for small inputs.
    fn oracle(p: &[Token], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(Token::Any) => (0..=s.len()).any(|i| oracle(&p[1..], &s[i..])),
            Some(Token::One) => !s.is_empty() && oracle(&p[1..], &s[1..]),
            Some(Token::Char(c)) => s.first() == Some(c) && oracle(&p[1..], &s[1..]),
        }
    }

    #[test]
    fn pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("demo%", "demo@v1", true),
            ("demo%", "demo", true),
            ("demo%", "dem", false),
            ("d_mo", "demo", true),
            ("d_mo", "dmo", false),
            ("demo", "demo@v1", false),
            ("demo", "demo", true),
            ("%", "", true),
            ("%", "anything", true),
            ("_", "", false),
            ("", "", true),
            ("", "a", false),
            ("%@%", "demo@v1", true),
            ("%@%", "demo", false),
            ("%v1", "demo@v1", true),
            ("%v1", "demo@v10", false),
            ("a%b%c", "aXXbYYc", true),
            ("a%b%c", "aXXcYYb", false),
            ("%a%b", "ab", true),
            ("%aab", "aaab", true),
            ("__%", "ab", true),
            ("__%", "a", false),
            (r"demo\_x", "demo_x", true),
            (r"demo\_x", "demoyx", false),
            (r"100\%", "100%", true),
            (r"100\%", "1000", false),
            (r"a\\b", r"a\b", true),
            ("ü_", "üß", true),
            ("DEMO", "demo", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(like(p, s), *want, "{p:?} LIKE {s:?}");
        }
    }

    #[test]
    fn agrees_with_the_definition() {
        let alphabet = ['a', 'b', '%', '_'];
        let names = [
            "", "a", "b", "ab", "ba", "aab", "abab", "bbba", "aaaa", "abba",
        ];
        // every pattern of up to 4 tokens over the alphabet
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &patterns {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            patterns.extend(next);
        }
        for p in &patterns {
            let parsed = LikePattern::parse(p).expect("pattern");
            for s in names {
                let chars: Vec<char> = s.chars().collect();
                assert_eq!(
                    parsed.matches(s),
                    oracle(&parsed.tokens, &chars),
                    "{p:?} LIKE {s:?}"
                );
            }
        }
    }

    /// Patterns like the one that froze the server: answered right, in at most
    /// pattern × name steps (the recursive matcher took exponential time on these).
    #[test]
    fn pathological_patterns_are_linear() {
        let name = "a".repeat(240);
        let pattern = format!("{}x", "%a".repeat(500));
        assert!(!like(&pattern, &name));
        let pattern = format!("{}x", "%".repeat(1000));
        assert!(!like(&pattern, &name));
        assert!(like(&format!("{}a", "%a".repeat(100)), &name));
    }

    #[test]
    fn bad_patterns_are_refused() {
        let err = LikePattern::parse(&"%".repeat(MAX_PATTERN_CHARS + 1)).expect_err("long");
        assert!(err.to_string().contains("at most 1024"), "{err}");
        assert!(LikePattern::parse("abc\\").is_err());
    }
}
