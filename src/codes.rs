//! Italian identification codes: codice fiscale (16 characters, omocodia included), the 11-digit
//! temporary code and the partita IVA. Pure functions, shared by ingest and the generator.

/// Letters that replace the digits 0–9 in an omocodic codice fiscale.
pub const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Month letters of a codice fiscale, January to December.
pub const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";
/// Positions (0-based) that hold digits in a regular CF and may hold omocodia letters.
pub const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

const ODD_VALUES: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Check character of a CF from its first 15 characters (ASCII upper case letters and digits).
/// Other bytes give some letter, never a panic: callers check the shape first.
pub fn cf_check_char(first15: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, &c) in first15.iter().take(15).enumerate() {
        let idx = if c.is_ascii_digit() {
            (c - b'0') as usize
        } else {
            c.to_ascii_uppercase().wrapping_sub(b'A') as usize % 26
        };
        // Positions are counted from 1: odd positions use the odd table.
        sum += if i % 2 == 0 {
            ODD_VALUES[idx]
        } else {
            idx as u32
        };
    }
    b'A' + (sum % 26) as u8
}

/// Check digit of an 11-digit numeric code (partita IVA, temporary CF) from its first 10 digits.
/// Other bytes give some digit, never a panic: callers check the shape first.
pub fn numeric_check_digit(first10: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, &c) in first10.iter().take(10).enumerate() {
        let d = (c.wrapping_sub(b'0') % 10) as u32;
        sum += if i % 2 == 0 {
            d
        } else {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        };
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

fn omocodia_digit(c: u8) -> Option<u8> {
    if c.is_ascii_digit() {
        Some(c - b'0')
    } else {
        OMOCODIA.iter().position(|&l| l == c).map(|p| p as u8)
    }
}

/// Normalises a CF as the contract says: trimmed, upper case.
pub fn normalise_cf(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

/// A valid 16-character CF (upper case): the right shape, a real month and day, the check letter.
pub fn is_valid_cf16(cf: &str) -> bool {
    let b = cf.as_bytes();
    if b.len() != 16 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            0..=5 | 8 | 11 | 15 => c.is_ascii_uppercase(),
            _ => omocodia_digit(c).is_some(),
        };
        if !ok {
            return false;
        }
    }
    if !MONTH_LETTERS.contains(&b[8]) {
        return false;
    }
    let day = cf_day(b);
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
        return false;
    }
    cf_check_char(&b[..15]) == b[15]
}

fn cf_day(b: &[u8]) -> u32 {
    let d1 = omocodia_digit(b[9]).unwrap_or(0) as u32;
    let d2 = omocodia_digit(b[10]).unwrap_or(0) as u32;
    d1 * 10 + d2
}

/// A valid 11-digit numeric code (temporary CF or partita IVA).
pub fn is_valid_numeric11(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 11 && b.iter().all(u8::is_ascii_digit) && numeric_check_digit(&b[..10]) == b[10]
}

/// What a valid 16-character CF encodes about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfFacts {
    pub female: bool,
    /// Two-digit year as written.
    pub yy: u32,
    pub month: u32,
    pub day: u32,
}

/// Decodes gender and birth date from a valid 16-character CF.
pub fn cf_facts(cf: &str) -> Option<CfFacts> {
    if !is_valid_cf16(cf) {
        return None;
    }
    let b = cf.as_bytes();
    let yy = omocodia_digit(b[6])? as u32 * 10 + omocodia_digit(b[7])? as u32;
    let month = MONTH_LETTERS.iter().position(|&m| m == b[8])? as u32 + 1;
    let raw_day = cf_day(b);
    let female = raw_day > 40;
    let day = if female { raw_day - 40 } else { raw_day };
    Some(CfFacts {
        female,
        yy,
        month,
        day,
    })
}

/// Full birth year from the CF's two digits: 20yy when 20yy ≤ reference year − 15, else 19yy.
pub fn cf_birth_year(yy: u32, reference_year: i32) -> i32 {
    let y2000 = 2000 + yy as i32;
    if y2000 <= reference_year - 15 {
        y2000
    } else {
        1900 + yy as i32
    }
}

/// A valid partita IVA, or a valid 16-character CF, as `employer_id` accepts.
pub fn is_valid_employer_id(id: &str) -> bool {
    is_valid_numeric11(id) || is_valid_cf16(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        // A textbook example: RSSMRA85T10A562S (Mario Rossi, 10/12/1985, San Giuliano Terme).
        assert!(is_valid_cf16("RSSMRA85T10A562S"));
        assert!(!is_valid_cf16("RSSMRA85T10A562T"));
        // Omocodic variant: the last digit of the comune code 2 -> N; check letter recomputed.
        let mut omo = *b"RSSMRA85T10A56N?";
        omo[15] = cf_check_char(&omo[..15]);
        assert!(is_valid_cf16(std::str::from_utf8(&omo).unwrap()));
        let f = cf_facts("RSSMRA85T10A562S").unwrap();
        assert_eq!((f.female, f.yy, f.month, f.day), (false, 85, 12, 10));
        assert_eq!(cf_birth_year(85, 2025), 1985);
        assert_eq!(cf_birth_year(5, 2025), 2005);
        assert_eq!(cf_birth_year(10, 2025), 2010);
        assert_eq!(cf_birth_year(11, 2025), 1911);
        // Partita IVA of a well-known company (check digit computed by the Luhn-like rule).
        assert!(is_valid_numeric11("00743110157"));
        assert!(!is_valid_numeric11("00743110158"));
        assert!(!is_valid_numeric11("0074311015"));
    }

    #[test]
    fn female_day_offset() {
        let mut cf = *b"BNCLRA90A41F205?";
        cf[15] = cf_check_char(&cf[..15]);
        let f = cf_facts(std::str::from_utf8(&cf).unwrap()).unwrap();
        assert!(f.female);
        assert_eq!(f.day, 1);
    }
}
