//! Synthetic identification codes that pass the contract's checks: codici fiscali (omocodia
//! included), 11-digit temporary codes and partite IVA.

use chrono::{Datelike, NaiveDate};
use rand::Rng;

use crate::codes;

/// A code of up to 16 ASCII bytes, stored inline so that tables of millions of persons stay
/// compact and hashable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Code {
    bytes: [u8; 16],
    len: u8,
}

impl Code {
    pub(super) fn new(b: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        let len = b.len().min(16);
        bytes[..len].copy_from_slice(&b[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ever built from ASCII letters and digits.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Letters a surname or name code is mostly made of (its consonants), with the vowels that
/// fill short names.
const CONSONANTS: &[u8] = b"BCDFGLMNPRSTVZ";
const VOWELS: &[u8] = b"AEIOU";
/// First letters of real cadastral codes of Italian comuni (A001..M999); `Z` is abroad.
const COMUNE_LETTERS: &[u8] = b"ABCDEFGHILM";

fn name_triple<R: Rng>(rng: &mut R, out: &mut [u8]) {
    for (i, c) in out.iter_mut().enumerate() {
        *c = if i == 2 && rng.random_bool(0.12) {
            VOWELS[rng.random_range(0..VOWELS.len())]
        } else {
            CONSONANTS[rng.random_range(0..CONSONANTS.len())]
        };
    }
    if rng.random_bool(0.005) {
        out[2] = b'X';
    }
}

/// A regular (non-omocodic) 16-character CF for a person of that sex and birth date.
pub(super) fn cf16<R: Rng>(rng: &mut R, female: bool, birth: NaiveDate) -> [u8; 16] {
    let mut cf = [0u8; 16];
    name_triple(rng, &mut cf[0..3]);
    name_triple(rng, &mut cf[3..6]);
    let yy = (birth.year().rem_euclid(100)) as u8;
    cf[6] = b'0' + yy / 10;
    cf[7] = b'0' + yy % 10;
    cf[8] = codes::MONTH_LETTERS[birth.month0() as usize];
    let day = birth.day() as u8 + if female { 40 } else { 0 };
    cf[9] = b'0' + day / 10;
    cf[10] = b'0' + day % 10;
    if rng.random_bool(0.04) {
        cf[11] = b'Z';
        let n: u16 = rng.random_range(100..=699);
        write_digits(&mut cf[12..15], n);
    } else {
        cf[11] = COMUNE_LETTERS[rng.random_range(0..COMUNE_LETTERS.len())];
        let n: u16 = rng.random_range(1..=999);
        write_digits(&mut cf[12..15], n);
    }
    cf[15] = codes::cf_check_char(&cf[..15]);
    cf
}

fn write_digits(out: &mut [u8], mut n: u16) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Omocodia as the Agenzia delle Entrate applies it: the next digit from the right becomes its
/// letter, and the check character is recomputed. Returns false when no digit is left.
pub(super) fn omocode_step(cf: &mut [u8; 16]) -> bool {
    for &pos in codes::DIGIT_POSITIONS.iter().rev() {
        let c = cf[pos];
        if c.is_ascii_digit() {
            cf[pos] = codes::OMOCODIA[(c - b'0') as usize];
            cf[15] = codes::cf_check_char(&cf[..15]);
            return true;
        }
    }
    false
}

/// An 11-digit code with a valid check digit; `office` (3 digits) fills positions 8–10 as the
/// provincial office does in a real partita IVA.
pub(super) fn numeric11<R: Rng>(rng: &mut R, office: Option<&str>) -> [u8; 11] {
    let mut b = [0u8; 11];
    for c in b.iter_mut().take(7) {
        *c = b'0' + rng.random_range(0..10u8);
    }
    match office.map(str::as_bytes) {
        Some(o) if o.len() == 3 && o.iter().all(u8::is_ascii_digit) => b[7..10].copy_from_slice(o),
        _ => {
            for c in b.iter_mut().take(10).skip(7) {
                *c = b'0' + rng.random_range(0..10u8);
            }
        }
    }
    b[10] = codes::numeric_check_digit(&b[..10]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn generated_codes_are_valid() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let birth = NaiveDate::from_ymd_opt(1984, 2, 29).unwrap();
        for i in 0..2000 {
            let mut cf = cf16(&mut rng, i % 2 == 0, birth);
            let s = std::str::from_utf8(&cf).unwrap().to_string();
            assert!(codes::is_valid_cf16(&s), "{s}");
            let f = codes::cf_facts(&s).unwrap();
            assert_eq!((f.female, f.yy, f.month, f.day), (i % 2 == 0, 84, 2, 29));
            let mut steps = 0;
            while omocode_step(&mut cf) {
                steps += 1;
                let s = std::str::from_utf8(&cf).unwrap();
                assert!(codes::is_valid_cf16(s), "{s}");
                assert_eq!(codes::cf_facts(s).unwrap().day, 29);
            }
            assert_eq!(steps, 7);
            let n = numeric11(&mut rng, if i % 2 == 0 { Some("015") } else { None });
            assert!(codes::is_valid_numeric11(std::str::from_utf8(&n).unwrap()));
        }
    }
}
