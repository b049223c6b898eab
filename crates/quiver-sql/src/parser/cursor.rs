//! The token cursor every statement family parses with: sqlparser's [`Parser`] (which
//! skips whitespace and comments and knows where every token came from) plus the few
//! word-level helpers Quiver's grammar needs. Errors name the line and column of the token
//! that did not fit.

use std::str::FromStr;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use crate::error::{Result, SqlError};
use crate::names::RefSpec;

/// The dialect of every Quiver statement (DataFusion's default).
pub(crate) static DIALECT: GenericDialect = GenericDialect {};

/// The precedence a timestamp expression is parsed above: `DIFF ds BETWEEN TIMESTAMP
/// now() - INTERVAL '1 day' AND …` ends the expression at the `AND`.
pub(crate) fn above_and() -> u8 {
    use datafusion::sql::sqlparser::dialect::{Dialect, Precedence};
    DIALECT.prec_value(Precedence::And)
}

/// ` at line L, column C` for a token's span (`at the end of the statement` for the end).
pub(crate) fn location(span: Span) -> String {
    if span.start.line == 0 {
        " at the end of the statement".into()
    } else {
        format!(" at line {}, column {}", span.start.line, span.start.column)
    }
}

/// A sqlparser error as Quiver reports it (its text already names line and column).
pub(crate) fn parser_error(e: ParserError) -> SqlError {
    SqlError::Parse(e.to_string())
}

/// A cursor over the tokens of one statement.
pub(crate) struct Cursor {
    pub(crate) p: Parser<'static>,
}

impl Cursor {
    pub(crate) fn new(tokens: Vec<TokenWithSpan>) -> Self {
        Cursor {
            p: Parser::new(&DIALECT).with_tokens_with_locations(tokens),
        }
    }

    /// The `n`th next token, when it is an unquoted word, upper-cased.
    pub(crate) fn peek_word(&self, n: usize) -> Option<String> {
        match &self.p.peek_nth_token_ref(n).token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Whether the `n`th next token is the unquoted word `kw` (upper case).
    pub(crate) fn is_kw(&self, n: usize, kw: &str) -> bool {
        self.peek_word(n).as_deref() == Some(kw)
    }

    /// Consume `kw` when it is next.
    pub(crate) fn eat(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(0, kw);
        if yes {
            self.p.next_token();
        }
        yes
    }

    /// Consume the words `kws` when they are all next (nothing otherwise).
    pub(crate) fn eat_all(&mut self, kws: &[&str]) -> bool {
        let yes = kws.iter().enumerate().all(|(i, k)| self.is_kw(i, k));
        if yes {
            for _ in kws {
                self.p.next_token();
            }
        }
        yes
    }

    /// Consume `kw` or fail naming it.
    pub(crate) fn expect(&mut self, kw: &str) -> Result<()> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {kw}")))
        }
    }

    /// Consume the punctuation `t` or fail with `what`.
    pub(crate) fn expect_token(&mut self, t: Token, what: &str) -> Result<()> {
        if self.p.consume_token(&t) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// `what`, the token found instead and where it is.
    pub(crate) fn error(&self, what: &str) -> SqlError {
        let next = self.p.peek_token_ref();
        let found = match &next.token {
            Token::EOF => "end of statement".to_string(),
            t => format!("'{t}'"),
        };
        SqlError::Parse(format!("{what}, found {found}{}", location(next.span)))
    }

    /// A name: an identifier (as written; quoted or not) or a string literal.
    pub(crate) fn name(&mut self, what: &str) -> Result<String> {
        let name = match &self.p.peek_token_ref().token {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) => s.clone(),
            _ => return Err(self.error(&format!("expected {what}"))),
        };
        self.p.next_token();
        Ok(name)
    }

    /// A string literal; `expected <what>` otherwise.
    pub(crate) fn string(&mut self, what: &str) -> Result<String> {
        match &self.p.peek_token_ref().token {
            Token::SingleQuotedString(s) => {
                let s = s.clone();
                self.p.next_token();
                Ok(s)
            }
            _ => Err(self.error(&format!("expected {what}"))),
        }
    }

    /// A number literal of type `T`; `error` otherwise.
    pub(crate) fn number<T: FromStr>(&mut self, error: &str) -> Result<T> {
        let v = match &self.p.peek_token_ref().token {
            Token::Number(n, _) => n.parse::<T>().ok(),
            _ => None,
        };
        let v = v.ok_or_else(|| self.error(error))?;
        self.p.next_token();
        Ok(v)
    }

    /// `BRANCH 'b' | TAG 't' | VERSION 'id' | TIMESTAMP <time>`.
    pub(crate) fn version_ref(&mut self) -> Result<RefSpec> {
        let kind = self.peek_word(0).unwrap_or_default();
        if !matches!(kind.as_str(), "BRANCH" | "TAG" | "VERSION" | "TIMESTAMP") {
            return Err(self.error("expected BRANCH, TAG, VERSION or TIMESTAMP"));
        }
        self.p.next_token();
        if kind == "TIMESTAMP" {
            return self.timestamp().map(RefSpec::Timestamp);
        }
        let v = self.name(&format!("a {} name", kind.to_ascii_lowercase()))?;
        RefSpec::from_kind(&kind, v)
            .ok_or_else(|| self.error("expected BRANCH, TAG, VERSION or TIMESTAMP"))
    }

    /// `'name'` (read as the part after `@` in `"ds@name"`: a branch, then a tag, then a
    /// commit id prefix; `'tag:v1'`, `'branch:b'`, … name the kind) or
    /// `BRANCH 'b' | TAG 't' | VERSION 'id' | TIMESTAMP <time>`.
    pub(crate) fn loose_or_version_ref(&mut self) -> Result<RefSpec> {
        if let Token::SingleQuotedString(s) = &self.p.peek_token_ref().token {
            let r = RefSpec::decode(s);
            self.p.next_token();
            return Ok(r);
        }
        self.version_ref()
    }

    /// Whether the `n`th next token is a string literal.
    pub(crate) fn is_string(&self, n: usize) -> bool {
        matches!(
            self.p.peek_nth_token_ref(n).token,
            Token::SingleQuotedString(_)
        )
    }

    /// A timestamp: a string literal (its text) or a constant expression (its SQL, evaluated
    /// when the version is resolved: [`crate::names::timestamp_bound`]).
    pub(crate) fn timestamp(&mut self) -> Result<String> {
        if let Token::SingleQuotedString(s) = &self.p.peek_token_ref().token {
            let s = s.clone();
            self.p.next_token();
            return Ok(s);
        }
        let e = self.error(
            "expected a timestamp ('2026-03-03 10:00:00' or an expression like \
             now() - INTERVAL '7 days')",
        );
        self.p
            .parse_subexpr(above_and())
            .map(|x| x.to_string())
            .map_err(|_| e)
    }

    /// `[AS OF <ref>]`, the session's branch when absent.
    pub(crate) fn opt_as_of(&mut self) -> Result<RefSpec> {
        if self.eat_all(&["AS", "OF"]) {
            self.version_ref()
        } else {
            Ok(RefSpec::Session)
        }
    }

    /// `[MESSAGE 'm']`.
    pub(crate) fn opt_message(&mut self) -> Result<Option<String>> {
        if self.eat("MESSAGE") {
            Ok(Some(self.name("a message")?))
        } else {
            Ok(None)
        }
    }

    /// Run one of sqlparser's own productions (an expression, a column definition, …).
    pub(crate) fn sql<T>(
        &mut self,
        f: impl FnOnce(&mut Parser<'static>) -> std::result::Result<T, ParserError>,
    ) -> Result<T> {
        f(&mut self.p).map_err(parser_error)
    }

    /// Fail unless every token was consumed.
    pub(crate) fn end(&self) -> Result<()> {
        if self.p.peek_token_ref().token == Token::EOF {
            Ok(())
        } else {
            Err(self.error("expected end of statement"))
        }
    }
}
