//! The source text of a Lua function, cut from the chunk that defined it,
//! so that a function assigned to an external table is stored as text (the
//! sandbox refuses binary chunks) and compiled again where it is read.
//!
//! Lua keeps no function's text, only the lines it spans
//! (`linedefined`..`lastlinedefined`) and its chunk. This file tokenizes
//! the chunk (strings, long brackets and comments included), finds the
//! `function` keywords on the first line whose matching `end` is on the last
//! line, and keeps the one whose parameters match the function's. A function
//! statement (`function m.f(x)`, `function obj:method(x)`) becomes the
//! expression it stands for (`function(x)`, `function(self, x)`).

/// Why a function's text cannot be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuncSourceError {
    /// No function defined on those lines has these parameters.
    #[error("no function with {nparams} parameter(s) is defined at lines {first}-{last}")]
    NotFound {
        /// First line of the definition.
        first: usize,
        /// Last line of the definition.
        last: usize,
        /// Fixed parameters the function has.
        nparams: usize,
    },
    /// Several functions on those lines fit; which one is meant is unknown.
    #[error("{count} functions at lines {first}-{last} fit; define it on a line of its own")]
    Ambiguous {
        /// First line of the definition.
        first: usize,
        /// Last line of the definition.
        last: usize,
        /// How many fit.
        count: usize,
    },
}

/// A token: where it starts and ends (bytes), and its line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tok {
    start: usize,
    end: usize,
    line: usize,
}

/// A chunk split into tokens once, to find any number of its functions.
pub struct Chunk {
    src: Box<[u8]>,
    toks: Vec<Tok>,
}

/// The tokens of `src`, with their text.
struct Toks<'a> {
    src: &'a [u8],
    toks: &'a [Tok],
}

impl Toks<'_> {
    /// The text of token `i` (empty past the end).
    fn text(&self, i: usize) -> &[u8] {
        self.toks.get(i).map_or(&[], |t| &self.src[t.start..t.end])
    }
}

/// Whether `c` ends a line for Lua's lexer (`\n` or `\r`).
fn is_newline(c: u8) -> bool {
    c == b'\n' || c == b'\r'
}

/// Skips the line break at `i` as Lua's lexer does (`\n`, `\r`, `\r\n`
/// or `\n\r` is one line), counting it; returns where the next line starts.
fn newline(src: &[u8], i: usize, line: &mut usize) -> usize {
    *line += 1;
    match (src[i], src.get(i + 1)) {
        (a, Some(&b)) if is_newline(b) && a != b => i + 2,
        _ => i + 1,
    }
}

/// Splits a chunk into tokens, skipping comments and white space. Strings
/// and long brackets are one token each. Never fails: bytes that are not
/// Lua come out as one-byte tokens (the chunk compiled, so this is rare).
/// Lines and the end of a comment follow Lua's lexer exactly (a `\r` ends a
/// line too), so that nothing Lua reads as code is taken for a comment.
fn tokens(src: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // A shebang line is skipped by Lua's file loader.
    if src.starts_with(b"#") {
        while i < src.len() && !is_newline(src[i]) {
            i += 1;
        }
    }
    while i < src.len() {
        let c = src[i];
        let start = i;
        let start_line = line;
        match c {
            b'\n' | b'\r' => {
                i = newline(src, i, &mut line);
                continue;
            }
            b' ' | b'\t' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'-' if src.get(i + 1) == Some(&b'-') => {
                i += 2;
                if let Some(level) = long_bracket(src, i) {
                    i = skip_long(src, i, level, &mut line);
                } else {
                    while i < src.len() && !is_newline(src[i]) {
                        i += 1;
                    }
                }
                continue;
            }
            b'[' if long_bracket(src, i).is_some() => {
                let level = long_bracket(src, i).unwrap_or(0);
                i = skip_long(src, i, level, &mut line);
            }
            b'"' | b'\'' => {
                i += 1;
                while i < src.len() && src[i] != c {
                    match src[i] {
                        // An escaped line break spans lines.
                        b'\\' if src.get(i + 1).is_some_and(|&n| is_newline(n)) => {
                            i = newline(src, i + 1, &mut line);
                        }
                        b'\\' => i += 2,
                        // Unfinished string: Lua refused it already.
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
                i = (i + 1).min(src.len());
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < src.len() && (src[i].is_ascii_alphanumeric() || src[i] == b'_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() => {
                // Numbers (hex, exponents, dots): letters and digits, and a
                // sign right after an exponent letter.
                i += 1;
                while i < src.len() {
                    let d = src[i];
                    let exp_sign =
                        (d == b'+' || d == b'-') && matches!(src[i - 1], b'e' | b'E' | b'p' | b'P');
                    if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exp_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            _ => {
                // Operators of two or three bytes are one token each.
                const LONG: [&[u8]; 10] = [
                    b"...", b"..", b"::", b"==", b"~=", b"<=", b">=", b"//", b"<<", b">>",
                ];
                i += LONG
                    .iter()
                    .find(|op| src[i..].starts_with(op))
                    .map_or(1, |op| op.len());
            }
        }
        out.push(Tok {
            start,
            end: i.min(src.len()),
            line: start_line,
        });
    }
    out
}

/// The level of a long bracket opening at `i` (`[[` is 0, `[==[` is 2).
fn long_bracket(src: &[u8], i: usize) -> Option<usize> {
    if src.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while src.get(j) == Some(&b'=') {
        j += 1;
    }
    (src.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// Skips a long bracket of `level` opening at `i`; returns where it ends.
fn skip_long(src: &[u8], i: usize, level: usize, line: &mut usize) -> usize {
    let mut j = i + level + 2;
    while j < src.len() {
        if is_newline(src[j]) {
            j = newline(src, j, line);
            continue;
        }
        if src[j] == b']'
            && src[j + 1..].len() > level
            && src[j + 1..j + 1 + level].iter().all(|&b| b == b'=')
            && src.get(j + 1 + level) == Some(&b']')
        {
            return j + level + 2;
        }
        j += 1;
    }
    src.len()
}

/// A function found in the chunk: its text as an expression, and its
/// parameters (a method's `self` counted).
struct Found {
    text: Vec<u8>,
    nparams: usize,
    vararg: bool,
    /// The index of its `end` token.
    end_token: usize,
}

/// Reads the function whose `function` keyword is token `k`: its
/// parameters, and its matching `end`. `None` if it does not parse.
fn function_at(t: &Toks<'_>, k: usize) -> Option<(Found, usize)> {
    let (src, toks) = (t.src, t.toks);
    let mut i = k + 1;
    let mut method = false;
    // A function statement's name: Name {'.' Name} [':' Name].
    if is_name(t.text(i)) {
        i += 1;
        while t.text(i) == b"." {
            i += 2;
        }
        if t.text(i) == b":" {
            method = true;
            i += 2;
        }
    }
    let open = toks.get(i).filter(|_| t.text(i) == b"(")?;
    let mut nparams = usize::from(method);
    let mut vararg = false;
    i += 1;
    loop {
        toks.get(i)?;
        match t.text(i) {
            b")" => break,
            b"," => {}
            b"..." => vararg = true,
            name if is_name(name) => nparams += 1,
            _ => return None,
        }
        i += 1;
    }
    // The body: blocks open with function/if/do/repeat (a while's or a
    // for's block opens at its `do`) and close with end/until.
    let mut depth = 1;
    i += 1;
    while depth > 0 {
        toks.get(i)?;
        match t.text(i) {
            b"function" | b"if" | b"do" | b"repeat" => depth += 1,
            b"end" | b"until" => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    let end = toks[i - 1];
    let mut text = b"function(".to_vec();
    if method {
        text.extend_from_slice(b"self");
        if nparams > 1 || vararg {
            text.extend_from_slice(b", ");
        }
    }
    text.extend_from_slice(&src[open.end..end.end]);
    Some((
        Found {
            text,
            nparams,
            vararg,
            end_token: i - 1,
        },
        end.line,
    ))
}

fn is_name(t: &[u8]) -> bool {
    const KEYWORDS: &[&[u8]] = &[
        b"and",
        b"break",
        b"do",
        b"else",
        b"elseif",
        b"end",
        b"false",
        b"for",
        b"function",
        b"goto",
        b"if",
        b"in",
        b"local",
        b"nil",
        b"not",
        b"or",
        b"repeat",
        b"return",
        b"then",
        b"true",
        b"until",
        b"while",
    ];
    t.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && !KEYWORDS.contains(&t)
}

/// The text, as a function expression, of the function defined in `chunk`
/// from line `first` to line `last` with `nparams` fixed parameters (a
/// method's `self` counted) and `vararg`.
#[cfg(test)]
pub fn function_text(
    chunk: &[u8],
    first: usize,
    last: usize,
    nparams: usize,
    vararg: bool,
) -> Result<Vec<u8>, FuncSourceError> {
    Chunk::new(chunk).function_text(first, last, nparams, vararg)
}

/// True if `text` is one function expression and nothing else:
/// `function (params) body end`, its `end` the last token.
pub fn is_function_expression(text: &[u8]) -> bool {
    let toks = tokens(text);
    let t = Toks {
        src: text,
        toks: &toks,
    };
    t.text(0) == b"function"
        && !is_name(t.text(1))
        && function_at(&t, 0).is_some_and(|(f, _)| f.end_token + 1 == toks.len())
}

impl Chunk {
    /// Splits `src` into tokens.
    pub fn new(src: &[u8]) -> Chunk {
        Chunk {
            toks: tokens(src),
            src: src.into(),
        }
    }

    /// The chunk's text.
    pub fn src(&self) -> &[u8] {
        &self.src
    }

    /// The texts of the functions defined from line `first` to line
    /// `last` with `nparams` fixed parameters and `vararg`, each once (the
    /// same text twice, `local a, b = function() end, function() end`, is
    /// the same function, whichever was meant). Several: functions on the
    /// same lines that the caller tells apart another way, or cannot.
    pub fn candidates(
        &self,
        first: usize,
        last: usize,
        nparams: usize,
        vararg: bool,
    ) -> Vec<Vec<u8>> {
        let t = Toks {
            src: &self.src,
            toks: &self.toks,
        };
        // Tokens are in line order: those of line `first` are one run.
        let from = self.toks.partition_point(|tok| tok.line < first);
        let to = self.toks.partition_point(|tok| tok.line <= first);
        let mut fits: Vec<Vec<u8>> = Vec::new();
        for k in (from..to).filter(|&k| t.text(k) == b"function") {
            if let Some((f, end_line)) = function_at(&t, k) {
                let fit = end_line == last && f.nparams == nparams && f.vararg == vararg;
                if fit && !fits.contains(&f.text) {
                    fits.push(f.text);
                }
            }
        }
        fits
    }

    /// The one function of [`candidates`](Self::candidates), or why there
    /// is not one.
    #[cfg(test)]
    pub fn function_text(
        &self,
        first: usize,
        last: usize,
        nparams: usize,
        vararg: bool,
    ) -> Result<Vec<u8>, FuncSourceError> {
        let mut fits = self.candidates(first, last, nparams, vararg);
        match fits.len() {
            1 => Ok(fits.remove(0)),
            0 => Err(FuncSourceError::NotFound {
                first,
                last,
                nparams,
            }),
            count => Err(FuncSourceError::Ambiguous { first, last, count }),
        }
    }
}

#[cfg(test)]
mod tests;
