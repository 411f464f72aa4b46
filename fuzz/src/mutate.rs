//! The built-in engine's mutations: byte-level ones for every format, and structure-aware
//! ones for text (numbers replaced by huge, negative or non-finite values, lines
//! duplicated, dropped or swapped, keywords of the format inserted).

/// A small, fast, seedable random number generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A length from 1 to `max`, short ones more likely.
    pub fn len(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let cap = [4, 16, 64, max][self.below(4)].min(max);
        1 + self.below(cap)
    }
}

/// Integers that break size and index arithmetic.
const INTERESTING_U64: [u64; 18] = [
    0,
    1,
    2,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Numbers (as text) that break parsers and size checks.
pub const INTERESTING_NUMBERS: [&str; 30] = [
    "0",
    "-1",
    "1",
    "-0",
    "2",
    "0.5",
    "-0.5",
    "65536",
    "1000000",
    "100000000",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e309",
    "1e-320",
    "3.5e38",
    "NaN",
    "nan",
    ".nan",
    "inf",
    "-.inf",
    "1e9",
];

/// Tokens of YAML, JSON and CSV that every text target's dictionary holds.
pub const TEXT_TOKENS: [&str; 40] = [
    "{",
    "}",
    "[",
    "]",
    ": ",
    ", ",
    "- ",
    "\n",
    "\n- ",
    "  ",
    "\t",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "? ",
    "|",
    ">",
    "---\n",
    "...",
    "~",
    "null",
    "true",
    "false",
    "yes",
    "\\u0000",
    "\\ud800",
    "\u{feff}",
    "\r\n",
    ",",
    "\"\"",
    "{}",
    "[]",
    "&b [*b]",
    "%YAML 1.2\n",
    "0x1F",
];

/// A mutator for one target: its dictionary and whether its inputs are text.
#[derive(Clone, Debug)]
pub struct Mutator {
    /// Tokens to insert: the format's keywords, taken from the seeds, and [`TEXT_TOKENS`].
    pub dict: Vec<Vec<u8>>,
    /// Whether the text mutations apply.
    pub text: bool,
}

impl Mutator {
    /// A mutator whose dictionary holds the words and keys found in `seeds` (and, for
    /// text formats, [`TEXT_TOKENS`] and [`INTERESTING_NUMBERS`]).
    pub fn new(seeds: &[Vec<u8>], text: bool) -> Mutator {
        let mut dict: Vec<Vec<u8>> = Vec::new();
        for s in seeds {
            for word in words(s) {
                if (2..=32).contains(&word.len()) && !dict.iter().any(|d| d == word) {
                    dict.push(word.to_vec());
                }
                if dict.len() >= 512 {
                    break;
                }
            }
        }
        dict.extend(TEXT_TOKENS.iter().map(|t| t.as_bytes().to_vec()));
        dict.extend(INTERESTING_NUMBERS.iter().map(|t| t.as_bytes().to_vec()));
        Mutator { dict, text }
    }

    /// Replaces `data` by a mutant of itself (1 or 2 stacked mutations, sometimes up to 8; `other` gives
    /// material for splices), at most `max_len` bytes long.
    pub fn mutate(&self, rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
        // Mostly one or two changes (a mutant of a valid file then often stays valid
        // enough to reach the later stages), sometimes up to eight.
        let n = if rng.one_in(4) {
            1 << rng.below(4)
        } else {
            1 + rng.below(2)
        };
        for _ in 0..n {
            if self.text && rng.below(2) == 0 {
                self.text_mutation(rng, data);
            } else {
                self.byte_mutation(rng, data, other);
            }
        }
        data.truncate(max_len);
    }

    fn byte_mutation(&self, rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
        let len = data.len();
        match rng.below(14) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            // A random byte.
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            // Insert random bytes.
            2 => {
                let at = rng.below(len + 1);
                let n = rng.len(32);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            // Delete a range.
            3 if len > 0 => {
                let at = rng.below(len);
                let n = rng.len(len - at);
                data.drain(at..at + n);
            }
            // Truncate.
            4 if len > 0 => data.truncate(rng.below(len)),
            // Splice: our head with another input's tail.
            5 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            // Insert a chunk of another input.
            6 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = rng.len(other.len() - from);
                let at = rng.below(len + 1);
                data.splice(at..at, other[from..from + n].iter().copied());
            }
            // Overwrite with an interesting integer, 1/2/4/8 bytes, either endianness.
            7 if len > 0 => {
                let width = [1, 2, 4, 8][rng.below(4)];
                let mut v = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
                if rng.one_in(3) {
                    v = v.wrapping_neg();
                }
                let bytes = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let bytes: &[u8] = if rng.one_in(2) {
                    &bytes[..width]
                } else {
                    &bytes[8 - width..]
                };
                let at = rng.below(len);
                for (k, &b) in bytes.iter().enumerate() {
                    if at + k < len {
                        data[at + k] = b;
                    }
                }
            }
            // Add or subtract a little from a byte or a 32-bit word.
            8 if len > 0 => {
                let at = rng.below(len);
                let d = 1 + rng.below(16) as u32;
                if len - at >= 4 && rng.one_in(2) {
                    let w = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                    let w = if rng.one_in(2) {
                        w.wrapping_add(d)
                    } else {
                        w.wrapping_sub(d)
                    };
                    data[at..at + 4].copy_from_slice(&w.to_le_bytes());
                } else {
                    data[at] = if rng.one_in(2) {
                        data[at].wrapping_add(d as u8)
                    } else {
                        data[at].wrapping_sub(d as u8)
                    };
                }
            }
            // Repeat a chunk several times.
            9 if len > 0 => {
                let at = rng.below(len);
                let n = rng.len((len - at).min(64));
                let chunk = data[at..at + n].to_vec();
                let most = if rng.one_in(8) { 256 } else { 8 };
                let times = 1 + rng.below(most);
                let insert: Vec<u8> = chunk.iter().copied().cycle().take(n * times).collect();
                data.splice(at..at, insert);
            }
            // Copy a chunk over another place.
            10 if len > 1 => {
                let from = rng.below(len);
                let n = rng.len(len - from);
                let to = rng.below(len);
                let chunk = data[from..from + n].to_vec();
                for (k, b) in chunk.into_iter().enumerate() {
                    if to + k < len {
                        data[to + k] = b;
                    }
                }
            }
            // A dictionary token, inserted or overwriting.
            11 | 12 if !self.dict.is_empty() => {
                let tok = &self.dict[rng.below(self.dict.len())];
                let at = rng.below(len + 1);
                if rng.one_in(2) {
                    data.splice(at..at, tok.iter().copied());
                } else {
                    let end = (at + tok.len()).min(len);
                    data.splice(at..end, tok.iter().copied());
                }
            }
            // A special byte.
            _ if len > 0 => {
                let i = rng.below(len);
                data[i] = [0, 0xff, 0x7f, 0x80, b'\n', b'0', b'9', b' '][rng.below(8)];
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }

    fn text_mutation(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        match rng.below(8) {
            // Replace a number by an interesting one.
            0 | 1 => {
                let nums = number_spans(data);
                if nums.is_empty() {
                    return;
                }
                let (a, b) = nums[rng.below(nums.len())];
                let with = INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())];
                data.splice(a..b, with.bytes());
            }
            // Duplicate, drop, swap or move a line.
            2..=4 => {
                let lines = line_spans(data);
                if lines.is_empty() {
                    return;
                }
                let (a, b) = lines[rng.below(lines.len())];
                match rng.below(4) {
                    0 => {
                        let line = data[a..b].to_vec();
                        let (c, _) = lines[rng.below(lines.len())];
                        data.splice(c..c, line);
                    }
                    1 => {
                        data.drain(a..b);
                    }
                    2 => {
                        let (c, d) = lines[rng.below(lines.len())];
                        if d <= a || c >= b {
                            let (first, second) = if c < a {
                                ((c, d), (a, b))
                            } else {
                                ((a, b), (c, d))
                            };
                            let l1 = data[first.0..first.1].to_vec();
                            let l2 = data[second.0..second.1].to_vec();
                            data.splice(second.0..second.1, l1);
                            data.splice(first.0..first.1, l2);
                        }
                    }
                    _ => {
                        // Indent or dedent.
                        if rng.one_in(2) {
                            data.splice(a..a, *b"  ");
                        } else if data[a..b].starts_with(b"  ") {
                            data.drain(a..a + 2);
                        }
                    }
                }
            }
            // Replace a word by a dictionary token.
            5 => {
                let spans = word_spans(data);
                if spans.is_empty() || self.dict.is_empty() {
                    return;
                }
                let (a, b) = spans[rng.below(spans.len())];
                let tok = &self.dict[rng.below(self.dict.len())];
                data.splice(a..b, tok.iter().copied());
            }
            // Insert a token at a line start or after a space.
            _ => {
                if self.dict.is_empty() {
                    return;
                }
                let starts: Vec<usize> = (0..=data.len())
                    .filter(|&i| i == 0 || matches!(data[i - 1], b'\n' | b' ' | b'{' | b'[' | b','))
                    .collect();
                let at = starts[rng.below(starts.len())];
                let tok = &self.dict[rng.below(self.dict.len())];
                data.splice(at..at, tok.iter().copied());
            }
        }
    }
}

/// The identifier-like words of `data` (letters, digits, `_`, `.`, `-`, `/`).
fn words(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')))
        .filter(|w| w.first().is_some_and(|c| c.is_ascii_alphabetic()))
}

fn word_spans(data: &[u8]) -> Vec<(usize, usize)> {
    spans(data, |b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Byte ranges of numbers (digits with an optional sign, point and exponent).
fn number_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i].is_ascii_digit() {
            let mut a = i;
            if a > 0 && data[a - 1] == b'-' {
                a -= 1;
            }
            while i < data.len()
                && (data[i].is_ascii_digit() || matches!(data[i], b'.' | b'e' | b'E'))
            {
                i += 1;
            }
            if i < data.len()
                && matches!(data[i], b'-' | b'+')
                && matches!(data[i - 1], b'e' | b'E')
            {
                i += 1;
                while i < data.len() && data[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push((a, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of lines, each with its newline.
fn line_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut a = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            out.push((a, i + 1));
            a = i + 1;
        }
    }
    if a < data.len() {
        out.push((a, data.len()));
    }
    out
}

fn spans(data: &[u8], inside: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if inside(data[i]) {
            let a = i;
            while i < data.len() && inside(data[i]) {
                i += 1;
            }
            out.push((a, i));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_stay_within_the_length_and_differ() {
        let seeds =
            vec![b"layers:\n  - {type: Linear, config: {nout: 10}}\ncost: SumSquared\n".to_vec()];
        let m = Mutator::new(&seeds, true);
        assert!(m.dict.iter().any(|d| d == b"Linear"));
        let mut rng = Rng::new(1);
        let mut changed = 0;
        for _ in 0..2000 {
            let mut d = seeds[0].clone();
            m.mutate(&mut rng, &mut d, &seeds[0], 100);
            assert!(d.len() <= 100);
            changed += usize::from(d != seeds[0]);
        }
        assert!(changed > 1500, "{changed} of 2000 mutants differ");
    }

    #[test]
    fn numbers_and_lines_are_found() {
        assert_eq!(number_spans(b"a: -12.5e-3, b: 7"), vec![(3, 11), (16, 17)]);
        assert_eq!(line_spans(b"a\nbc\nd"), vec![(0, 2), (2, 5), (5, 6)]);
    }
}
