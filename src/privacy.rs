//! Pseudonymisation and masking. Raw codici fiscali and operator ids stop here: ingest replaces
//! them with keyed HMAC-SHA256 pseudonyms, and quarantine keeps rows only after masking.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of a pseudonym in hex characters: 128 bits of the HMAC, ample against collisions for
/// hundreds of millions of persons and half the width in every join.
pub const PSEUDONYM_HEX_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the key file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key file {path} holds no valid key (expected 64 hex characters); restore it from your backup"
    )]
    Malformed { path: PathBuf },
    #[error(
        "the key file {key} is inside the data folder {data}; keep it outside (set MIRATO_KEY_FILE)"
    )]
    InsideDataDir { key: PathBuf, data: PathBuf },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// The secret key of the pseudonyms. Losing it means new pseudonyms for the same persons.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// Where the key lives when `MIRATO_KEY_FILE` is not set: the user's config folder, outside any
/// data folder and any project checkout.
pub fn default_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mirato").join("hmac.key")
}

fn absolute(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    // Canonicalise what exists so that `a/../data` and symlinks compare equal.
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
    let mut out = fs::canonicalize(&existing).unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

impl Key {
    /// Loads the key, creating it (mode 0600) on first use. Refuses a key inside `data_dir`.
    pub fn load_or_create(path: &Path, data_dir: &Path) -> Result<Key, PrivacyError> {
        let (key_abs, data_abs) = (absolute(path), absolute(data_dir));
        if key_abs.starts_with(&data_abs) {
            return Err(PrivacyError::InsideDataDir {
                key: key_abs,
                data: data_abs,
            });
        }
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(text.trim()).ok_or_else(|| PrivacyError::Malformed {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(PrivacyError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn parse(hex_text: &str) -> Option<Key> {
        let bytes = hex::decode(hex_text).ok()?;
        Some(Key {
            bytes: bytes.try_into().ok()?,
        })
    }

    fn create(path: &Path) -> Result<Key, PrivacyError> {
        use rand::TryRngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| PrivacyError::Random(e.to_string()))?;
        let err = |source| PrivacyError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(err)?;
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(mut f) => {
                f.write_all(hex::encode(bytes).as_bytes()).map_err(err)?;
                f.write_all(b"\n").map_err(err)?;
                f.sync_all().map_err(err)?;
                tracing::info!(path = %path.display(), "created a new pseudonymisation key");
                Ok(Key { bytes })
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = fs::read_to_string(path).map_err(err)?;
                Self::parse(text.trim()).ok_or_else(|| PrivacyError::Malformed {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => Err(err(e)),
        }
    }

    /// A key for one purpose (such as exported files), derived as HMAC(key, purpose): its
    /// pseudonyms cannot be matched with the store's without the key itself.
    pub fn derive(&self, purpose: &[u8]) -> Key {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.bytes).expect("HMAC takes any key size");
        mac.update(purpose);
        Key {
            bytes: mac.finalize().into_bytes().into(),
        }
    }

    /// A key for tests and examples only.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key { bytes }
    }
}

/// Turns identifiers into pseudonyms. Keeps a cache because a person appears in many events.
pub struct Pseudonymiser {
    mac: HmacSha256,
    cache: HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>,
}

impl Pseudonymiser {
    pub fn new(key: &Key) -> Self {
        Pseudonymiser {
            mac: <HmacSha256 as Mac>::new_from_slice(&key.bytes).expect("HMAC takes any key size"),
            cache: HashMap::default(),
        }
    }

    /// The pseudonym of a normalised identifier: 32 hex characters of HMAC-SHA256.
    pub fn pseudonym(&mut self, value: &str) -> Arc<str> {
        if let Some(p) = self.cache.get(value) {
            return Arc::clone(p);
        }
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let out = mac.finalize().into_bytes();
        let p: Arc<str> = hex::encode(&out[..PSEUDONYM_HEX_LEN / 2]).into();
        // Bound the cache: a huge file of distinct ids must not grow memory without limit.
        if self.cache.len() >= 1_000_000 {
            self.cache.clear();
        }
        self.cache.insert(value.into(), Arc::clone(&p));
        p
    }
}

/// What a masked value looks like in quarantine and messages.
pub const MASK: &str = "[masked]";

/// Whether free text holds anything [`mask_identifiers`] would mask; allocates nothing.
pub fn contains_identifier(text: &str) -> bool {
    let b = text.as_bytes();
    // Every identifier shape is a whole run of 9 to 16 letters and digits: check only the
    // starts of such runs.
    if b.len() < 9 {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let run = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if (9..=16).contains(&run) && identifier_at(b, i).is_some() {
            return true;
        }
        i += run;
    }
    false
}

/// The length of the identifier starting at `i`, if one does.
fn identifier_at(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && b[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    let len = if looks_like_cf16(&b[i..]) {
        16
    } else if let Some(n) = partial_cf_len(&b[i..]) {
        n
    } else if looks_like_numeric11(&b[i..]) {
        11
    } else {
        return None;
    };
    (i + len == b.len() || !b[i + len].is_ascii_alphanumeric()).then_some(len)
}

/// Masks anything in free text that looks like a codice fiscale (16 characters of the CF shape,
/// omocodia included) or an 11-digit code, whatever the case.
pub fn mask_identifiers(text: &str) -> String {
    if !contains_identifier(text) {
        return text.to_owned();
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if let Some(len) = identifier_at(b, i) {
            out.push_str(&text[last..i]);
            out.push_str(MASK);
            i += len;
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    out
}

/// How many characters from the start of `b` follow the shape of a codice fiscale (letters for
/// the name and month, digits or omocodia letters for the year, day and town), up to 16.
fn cf_shape_len(b: &[u8]) -> usize {
    b.iter()
        .take(16)
        .enumerate()
        .take_while(|&(i, c)| {
            let c = c.to_ascii_uppercase();
            match i {
                8 => crate::codes::MONTH_LETTERS.contains(&c),
                0..=5 | 11 | 15 => c.is_ascii_uppercase(),
                _ => c.is_ascii_digit() || crate::codes::OMOCODIA.contains(&c),
            }
        })
        .count()
}

/// Masks the identifiers in a file name or path before it is stored (ledger, quarantine) or
/// shown (reports, pages, logs). Stricter than [`mask_identifiers`] about where a code may sit,
/// since names glue words together (`cv_RSSMRA85T10F205Y.csv`, `rossiRSSMRA85T10F205Y`): any
/// stretch of a codice fiscale's shape through the birth day (11 characters or more) is masked
/// wherever it starts, and so is a run of exactly 11 digits (a temporary code or partita IVA).
/// Shorter runs, such as a temporary folder's `.tmpAb3xYz`, are left as they are.
pub fn mask_file_name(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let len = if digits == 11 && (i == 0 || !b[i - 1].is_ascii_digit()) {
            11
        } else if cf_shape_len(&b[i..]) >= 11 {
            // Letters before the code can start an earlier, misaligned match: mask up to the
            // end of the longest match starting within the next few characters too.
            (i..(i + 6).min(b.len()))
                .filter_map(|j| Some(j + cf_shape_len(&b[j..])).filter(|e| e - j >= 11))
                .max()
                .map_or(0, |end| end - i)
        } else {
            0
        };
        if len > 0 {
            out.push_str(&name[last..i]);
            out.push_str(MASK);
            i += len;
            last = i;
        } else {
            // A digit run of another length is a date or a counter: skip it whole.
            i += digits.max(1);
            while !name.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    out.push_str(&name[last..]);
    out
}

fn looks_like_cf16(b: &[u8]) -> bool {
    if b.len() < 16 {
        return false;
    }
    b[..16].iter().enumerate().all(|(i, c)| {
        let c = c.to_ascii_uppercase();
        match i {
            0..=5 | 8 | 11 | 15 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit() || crate::codes::OMOCODIA.contains(&c),
        }
    })
}

/// A truncated CF (9–15 characters of the CF shape): still identifying, so masked too.
fn partial_cf_len(b: &[u8]) -> Option<usize> {
    let run = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if !(9..16).contains(&run) {
        return None;
    }
    let ok = b[..run].iter().enumerate().all(|(i, c)| {
        let c = c.to_ascii_uppercase();
        match i {
            0..=5 | 8 | 11 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit() || crate::codes::OMOCODIA.contains(&c),
        }
    }) && crate::codes::MONTH_LETTERS.contains(&b[8].to_ascii_uppercase());
    ok.then_some(run)
}

fn looks_like_numeric11(b: &[u8]) -> bool {
    b.len() >= 11 && b[..11].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        let mut a = Pseudonymiser::new(&Key::from_bytes([1; 32]));
        let mut b = Pseudonymiser::new(&Key::from_bytes([2; 32]));
        let p = a.pseudonym("RSSMRA85T10A562S");
        assert_eq!(p.len(), PSEUDONYM_HEX_LEN);
        assert_eq!(p, a.pseudonym("RSSMRA85T10A562S"));
        assert_ne!(p, b.pseudonym("RSSMRA85T10A562S"));
        assert!(!p.contains("RSS"));
        assert!(contains_identifier("x RSSMRA85T10A562S"));
        assert!(!contains_identifier("MI-03"));
    }

    #[test]
    fn masking_finds_codes_in_text() {
        assert_eq!(
            mask_identifiers("cf rssmra85t10a562s here"),
            format!("cf {MASK} here")
        );
        assert_eq!(
            mask_identifiers("{\"employer_id\":\"00743110157\"}"),
            format!("{{\"employer_id\":\"{MASK}\"}}")
        );
        assert_eq!(mask_identifiers("MI-03 2024-01-05"), "MI-03 2024-01-05");
        assert_eq!(mask_identifiers("123456789012"), "123456789012");
        assert_eq!(mask_identifiers("x RSSMRA85T10F205"), format!("x {MASK}"));
        assert_eq!(mask_identifiers("basic_orientation"), "basic_orientation");
    }

    #[test]
    fn file_names_are_masked_wherever_the_code_sits() {
        let m = |s: &str| mask_file_name(s);
        assert_eq!(m("/in/RSSMRA85T10F205Y.csv"), format!("/in/{MASK}.csv"));
        assert_eq!(
            m("cv_rssmra85t10f205y_2024.csv"),
            format!("cv_{MASK}_2024.csv")
        );
        // Glued to a name: what precedes may be masked too, never less than the code.
        assert_eq!(
            m("rossiRSSMRA85T10F205Ymario.csv"),
            format!("ro{MASK}mario.csv")
        );
        assert_eq!(m("rossiRSSMRA85T10F205.csv"), format!("ro{MASK}.csv"));
        assert_eq!(m("RSSMRA85T10.csv"), format!("{MASK}.csv"));
        assert_eq!(m("piva-00743110157.csv"), format!("piva-{MASK}.csv"));
        assert_eq!(m("x00743110157y.jsonl"), format!("x{MASK}y.jsonl"));
        for kept in [
            "/tmp/.tmpAbC4L2/in/events-03-2024.csv.gz",
            "/tmp/.tmpabcL4B/batch.csv",
            "export-20240105123456.csv",
            "évènements-MI-01.csv",
        ] {
            assert_eq!(m(kept), kept);
        }
    }

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/k");
        let data = dir.path().join("data");
        let k1 = Key::load_or_create(&path, &data).unwrap();
        let k2 = Key::load_or_create(&path, &data).unwrap();
        assert_eq!(k1.bytes, k2.bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let inside = data.join("k");
        assert!(matches!(
            Key::load_or_create(&inside, &data),
            Err(PrivacyError::InsideDataDir { .. })
        ));
    }
}
