//! The native embedding answer read straight from its bytes, each number turned into float32
//! as it is read: the `base64` path's hot loop, without serde_json's per-element machinery.
//!
//! Only the usual shape is read — `{"output":{"embeddings":[{"text_index":N,"embedding":[…]}…]},
//! "usage":{"total_tokens":N},"request_id":"…"}` (any order, any JSON whitespace, `index` for
//! `text_index`, optional `code`/`message` strings). Anything else (`null`, a sparse vector, an
//! unknown or repeated key, an escaped string, invalid JSON) returns `None`, and the caller parses
//! the body with serde instead: the reader never accepts what serde would refuse, and where it
//! answers it answers what serde's types would hold.
//!
//! Numbers are JSON numbers, strictly; each becomes the float32 nearest to its decimal value.
//! Up to 19 significant digits and a power of ten within ±22 are computed in one float64
//! multiplication (off by at most 3 units in the last place) and rounded to float32 when no
//! float32 rounding boundary lies within 8 units; every other number goes to the standard
//! library's correctly rounded parser. (Measured: `bench/README.md`, "embeddings".)

use crate::dashscope::embedding as ds;

/// A vector made from the float32 values the reader read, as little-endian bytes.
pub trait FromF32Le: Sized {
    fn from_f32_le(bytes: &[u8]) -> Result<Self, String>;
}

/// The answer in `raw`, if it has the usual shape (see the module documentation).
pub fn read<V: FromF32Le>(raw: &[u8]) -> Option<ds::EmbeddingResponse<V>> {
    let mut r = Reader { b: raw, i: 0 };
    let mut resp = ds::EmbeddingResponse::default();
    let mut buf = Vec::new();
    r.object(|r, key| match key {
        "output" => set(&mut resp.output, r.output(&mut buf)?),
        "usage" => set(&mut resp.usage, r.usage()?),
        "request_id" => set(&mut resp.request_id, r.string()?),
        "code" => set(&mut resp.code, r.string()?),
        "message" => set(&mut resp.message, r.string()?),
        _ => None,
    })?;
    r.ws();
    (r.i == raw.len()).then_some(resp)
}

/// Fill a field once: a repeated key is not the usual shape.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// Powers of ten exact in float64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The float64 values nearest to 10⁻ᵏ (a multiplication instead of a division: a fraction of
/// the latency, and within the error the rounding check allows for).
const POW10_NEG: [f64; 23] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14,
    1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
];

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `{ "key": value, … }`, `member` reading each value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.list(b'{', b'}', |r| {
            let key = r.str()?;
            r.eat(b':')?;
            member(r, key)
        })
    }

    /// `[ value, … ]`, `element` reading each value.
    fn array(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.list(b'[', b']', element)
    }

    /// `open` entries separated by commas `close`, `entry` reading each.
    fn list(
        &mut self,
        open: u8,
        close: u8,
        mut entry: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            entry(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters, borrowed.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = self.b.get(self.i..)?;
        let len = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let s = std::str::from_utf8(&rest[..len]).ok()?;
        self.i += len + 1;
        Some(s)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// A non-negative integer without fraction or exponent.
    fn uint(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b[start] == b'0';
        (digits > 0 && !leading_zero && !matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')))
            .then_some(n)
    }

    fn output<V: FromF32Le>(&mut self, buf: &mut Vec<u8>) -> Option<ds::EmbeddingOutput<V>> {
        let mut embeddings = None;
        self.object(|r, key| match key {
            "embeddings" => {
                let mut items = Vec::new();
                r.array(|r| {
                    items.push(r.item(buf)?);
                    Some(())
                })?;
                set(&mut embeddings, items)
            }
            _ => None,
        })?;
        Some(ds::EmbeddingOutput {
            embeddings: embeddings?,
        })
    }

    fn item<V: FromF32Le>(&mut self, buf: &mut Vec<u8>) -> Option<ds::EmbeddingItem<V>> {
        let (mut text_index, mut embedding) = (None, None);
        self.object(|r, key| match key {
            "text_index" | "index" => set(&mut text_index, usize::try_from(r.uint()?).ok()?),
            "embedding" => {
                buf.clear();
                r.array(|r| {
                    buf.extend_from_slice(&r.f32()?.to_le_bytes());
                    Some(())
                })?;
                set(&mut embedding, V::from_f32_le(buf).ok()?)
            }
            _ => None,
        })?;
        Some(ds::EmbeddingItem {
            text_index,
            embedding,
            sparse_embedding: None,
        })
    }

    fn usage(&mut self) -> Option<ds::EmbeddingUsage> {
        let mut total_tokens = None;
        self.object(|r, key| match key {
            "total_tokens" => set(&mut total_tokens, r.uint()?),
            _ => None,
        })?;
        Some(ds::EmbeddingUsage { total_tokens })
    }

    /// A JSON number, as the float32 nearest to it. (Inlined into the array loop: called once
    /// per number.)
    #[inline(always)]
    fn f32(&mut self) -> Option<f32> {
        self.ws();
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        // The digits in `m`, up to 19 of them (more send the number to the slow path).
        let (mut m, mut count) = (0u64, 0u32);
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => digits(b, &mut i, &mut m, &mut count),
            _ => return None,
        }
        let mut exp10: i64 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac = i;
            digits(b, &mut i, &mut m, &mut count);
            if i == frac {
                return None;
            }
            exp10 = -((i - frac) as i64);
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let sign = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    -1
                }
                Some(b'+') => {
                    i += 1;
                    1
                }
                _ => 1,
            };
            let first = i;
            let mut e: i64 = 0;
            while let Some(&d @ b'0'..=b'9') = b.get(i) {
                e = (e * 10 + i64::from(d - b'0')).min(100_000);
                i += 1;
            }
            if i == first {
                return None;
            }
            exp10 += sign * e;
        }
        self.i = i;
        let exact = count <= 19;
        if m == 0 && exact {
            return Some(if negative { -0.0 } else { 0.0 });
        }
        if exact && exp10.abs() <= 22 {
            let k = exp10.unsigned_abs() as usize;
            // `m` below 2⁶³ (at most 18 digits, or a 19-digit one that small) converts in one step.
            let mf = match i64::try_from(m) {
                Ok(small) => small as f64,
                Err(_) => m as f64,
            };
            let v = mf * if exp10 >= 0 { POW10[k] } else { POW10_NEG[k] };
            if rounds_safely(v) {
                return Some(if negative { -(v as f32) } else { v as f32 });
            }
        }
        slow(&b[start..i])
    }
}

/// Read a run of digits at `b[i..]` into `m`, counting them in `count` (past 19, `m` is
/// meaningless and the caller takes the slow path). Eight bytes at a time: the digits among
/// them found and converted at once, then one digit at a time near the end of the body.
#[inline(always)]
fn digits(b: &[u8], i: &mut usize, m: &mut u64, count: &mut u32) {
    const POW10_U64: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    while let Some(chunk) = b.get(*i..*i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Digits become 0..=9; any other byte becomes ≥ 10 and sets its high bit below (a carry
        // only ever leaves a byte that is not a digit, so the first non-digit is exact).
        let t = u64::from_le_bytes(word) ^ 0x3030_3030_3030_3030;
        let other = (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080;
        let n = (other.trailing_zeros() / 8) as usize; // leading digits: 0..=8
        if n == 0 || *count as usize + n > 19 {
            break;
        }
        // The n digits moved to the top bytes: as eight digits, the lower ones leading zeros.
        *m = *m * POW10_U64[n] + eight_digits(t << (8 * (8 - n)));
        *count += n as u32;
        *i += n;
        if n < 8 {
            return;
        }
    }
    while let Some(&d @ b'0'..=b'9') = b.get(*i) {
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        *count += 1;
        *i += 1;
    }
}

/// The number written by eight digit values (0..=9, one per byte, the first in the lowest
/// byte): pairs, then quads, then the eight, one multiplication each.
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    let pairs = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(100) + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    (quads.wrapping_mul(10_000) + (quads >> 32)) & 0xFFFF_FFFF
}

/// Whether `v`, within 3 units in the last place of a decimal's value (three roundings of at
/// most half a unit each: `m`, the power of ten, the product), rounds to float32 as that value
/// does: it is in float32's normal range and no float32 midpoint lies within 8 units of it.
fn rounds_safely(v: f64) -> bool {
    const DROPPED: u32 = 52 - 23;
    const HALF: u64 = 1 << (DROPPED - 1);
    let low = v.to_bits() & ((1 << DROPPED) - 1);
    (f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&v) && low.abs_diff(HALF) > 8
}

/// The standard library's correctly rounded parse; a number float64 cannot hold is not read
/// (serde_json refuses it too).
fn slow(token: &[u8]) -> Option<f32> {
    let text = std::str::from_utf8(token).ok()?;
    let x = text.parse::<f32>().ok()?;
    (x.is_finite() || text.parse::<f64>().is_ok_and(f64::is_finite)).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector as float32 values.
    #[derive(Debug, PartialEq)]
    struct Floats(Vec<f32>);

    impl FromF32Le for Floats {
        fn from_f32_le(bytes: &[u8]) -> Result<Self, String> {
            Ok(Floats(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ))
        }
    }

    fn floats(json: &str) -> Option<Vec<f32>> {
        let body =
            format!(r#"{{"output":{{"embeddings":[{{"text_index":0,"embedding":{json}}}]}}}}"#);
        let mut resp = read::<Floats>(body.as_bytes())?;
        let item = resp.output.take()?.embeddings.pop()?;
        Some(item.embedding?.0)
    }

    #[test]
    fn the_usual_answer_is_read_whole() {
        let body = br#"{"output":{"embeddings":[{"text_index":1,"embedding":[-0.5,0.25]},
            {"embedding":[0.0009765625], "index":0}, {"text_index":2}]},
            "usage":{"total_tokens":17},"request_id":"b1c2-d3","code":"","message":""}"#;
        let resp = read::<Floats>(body).unwrap_or_else(|| panic!("not read"));
        let items = resp.output.map(|o| o.embeddings).unwrap_or_default();
        let got: Vec<(Option<usize>, Option<Vec<f32>>)> = items
            .into_iter()
            .map(|i| (i.text_index, i.embedding.map(|v| v.0)))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(1), Some(vec![-0.5, 0.25])),
                (Some(0), Some(vec![0.000_976_562_5])),
                (Some(2), None)
            ]
        );
        assert_eq!(resp.usage.and_then(|u| u.total_tokens), Some(17));
        assert_eq!(resp.request_id.as_deref(), Some("b1c2-d3"));
        assert_eq!(resp.code.as_deref(), Some(""));
        assert_eq!(resp.message.as_deref(), Some(""));
    }

    #[test]
    fn numbers_are_the_nearest_float32() {
        let texts = [
            "0",
            "-0",
            "0.0",
            "1",
            "-1",
            "0.5",
            "1e-7",
            "1E+2",
            "2.5e-3",
            "-0.006929283495992422",
            "0.018230289220809937",
            "16777217",
            "16777219",
            "0.1234567890123456789012345",
            "123456789012345678901234567890",
            "3.4028235e38",
            "1e39",
            "-3.5e38",
            "1e-40",
            "1e-46",
            "1.4e-45",
            "0.3000000119209289550781250001",
            "1.00000005960464477539062500",
            "9999999999999999999",
            "0.00000000000000000000000000001",
        ];
        let json = format!("[{}]", texts.join(","));
        let got = floats(&json).unwrap_or_else(|| panic!("not read: {json}"));
        assert_eq!(got.len(), texts.len());
        for (text, x) in texts.iter().zip(got) {
            let want = text
                .parse::<f32>()
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(x.to_bits(), want.to_bits(), "{text}");
        }
        assert_eq!(floats("[ ]"), Some(vec![]));
        assert_eq!(floats("[\n-0.5 ,\t1\r\n]"), Some(vec![-0.5, 1.0]));
    }

    #[test]
    fn digits_are_read_eight_at_a_time_and_one_at_a_time() {
        // Runs of every length, at the end of the body (byte loop) and before a comma.
        for text in [
            "7",
            "12",
            "1234567",
            "12345678",
            "123456789",
            "0000000001",
            "9876543210123456789",
        ] {
            for tail in ["", ",", "]", ",1234567", "e5"] {
                let body = format!("{text}{tail}");
                let (mut i, mut m, mut count) = (0, 0, 0);
                digits(body.as_bytes(), &mut i, &mut m, &mut count);
                assert_eq!((i, count as usize), (text.len(), text.len()), "{body}");
                assert_eq!(Some(m), text.parse::<u64>().ok(), "{body}");
            }
        }
        // Past 19 digits the count says so (and the slow path takes the number).
        let long = "12345678901234567890123";
        let (mut i, mut m, mut count) = (0, 0, 0);
        digits(long.as_bytes(), &mut i, &mut m, &mut count);
        assert_eq!((i, count), (long.len(), 23));
    }

    #[test]
    fn every_other_shape_is_left_to_serde() {
        let numbers = [
            "[01]", "[1.]", "[.5]", "[-]", "[+1]", "[1e]", "[1e+]", "[--1]", "[0x10]", "[NaN]",
            "[1e400]", "[1,]", "[1 2]", "[\"1\"]", "[null]", "null", "{}", "[1]]",
        ];
        for json in numbers {
            assert_eq!(floats(json), None, "{json}");
        }
        let bodies: &[&[u8]] = &[
            br#"{"output":{"embeddings":[{"text_index":0,"embedding":[1],"sparse_embedding":[]}]}}"#,
            br#"{"output":{"embeddings":[{"text_index":0,"index":0,"embedding":[1]}]}}"#,
            br#"{"output":{"embeddings":[{"text_index":-1,"embedding":[1]}]}}"#,
            br#"{"output":{"embeddings":[{"text_index":1.0,"embedding":[1]}]}}"#,
            br#"{"output":{"embeddings":[{"text_index":01,"embedding":[1]}]}}"#,
            br#"{"output":{"embeddings":[]},"output":{"embeddings":[]}}"#,
            br#"{"output":{"embeddings":[],"extra":1}}"#,
            br#"{"output":{"embeddings":[]},"usage":{"total_tokens":1,"input_tokens":1}}"#,
            br#"{"output":{"embeddings":[]},"request_id":"a\u0062"}"#,
            br#"{"output":{"embeddings":[]},"request_id":"tab	here"}"#,
            br#"{"output":{"embeddings":[]},"request_id":null}"#,
            br#"{"output":{"embeddings":[]},"status_code":200}"#,
            br#"{"output":{"embeddings":[]}} x"#,
            br#"{"output":{"embeddings":[]}"#,
            b"\xef\xbb\xbf{\"output\":{\"embeddings\":[]}}",
            b"{\"output\":{\"embeddings\":[]},\"request_id\":\"\xff\"}",
            b"",
        ];
        for body in bodies {
            assert!(
                read::<Floats>(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(read::<Floats>(br#" {"output":{"embeddings":[]}} "#).is_some());
    }
}
