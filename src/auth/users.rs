//! Users, roles, territorial scopes and API tokens, kept in one TOML file (mode 0600) that
//! `mirato users` manages. Passwords are argon2id hashes; API tokens are random 256-bit values
//! stored as SHA-256 (a token is a secret with full entropy, so a fast hash is enough).
//!
//! Each user carries a random credential stamp, new whenever the user is added again (a new
//! password or role included): the server's sessions remember the stamp they began under and
//! end when it changes, and the tokens, kept in the user's record, go with the old record. So
//! removing, re-adding or changing a user ends every session and token they had, even though
//! the CLI and the server are different processes sharing only this file.

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::reference;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid users file: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Bad(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, unsuppressed; jobs, metrics, audit.
    Admin,
    /// Figures for their scope only.
    Manager,
    /// National aggregates and pseudonymised analysis files.
    Evaluator,
    /// Aggregates only.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "manager" => Role::Manager,
            "evaluator" => Role::Evaluator,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Evaluator => "evaluator",
            Role::Viewer => "viewer",
        }
    }
}

/// Where a manager may look: regions (by name), provinces (sigla) and CPIs (code).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provinces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpis: Vec<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty() && self.provinces.is_empty() && self.cpis.is_empty()
    }

    /// Checks and normalises: region codes or names become names, siglas upper case.
    pub fn normalised(&self) -> Result<Scope, String> {
        let mut out = Scope::default();
        for r in &self.regions {
            let p = reference::provinces()
                .iter()
                .find(|p| p.region_name.eq_ignore_ascii_case(r) || p.region_code == r.as_str())
                .ok_or_else(|| format!("unknown region '{r}'"))?;
            out.regions.push(p.region_name.to_owned());
        }
        for s in &self.provinces {
            let p = reference::province(&s.to_uppercase())
                .ok_or_else(|| format!("unknown province '{s}'"))?;
            out.provinces.push(p.sigla.to_owned());
        }
        for c in &self.cpis {
            if c.is_empty() || c.chars().count() > 16 {
                return Err(format!("'{c}' is not a CPI code"));
            }
            out.cpis.push(c.clone());
        }
        out.regions.sort();
        out.regions.dedup();
        out.provinces.sort();
        out.provinces.dedup();
        out.cpis.sort();
        out.cpis.dedup();
        Ok(out)
    }

    /// The provinces the scope covers whole (its regions' and its own).
    pub fn provinces_covered(&self) -> Vec<String> {
        let mut v: Vec<String> = reference::provinces()
            .iter()
            .filter(|p| self.regions.iter().any(|r| r == p.region_name))
            .map(|p| p.sigla.to_owned())
            .chain(self.provinces.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.regions.clone();
        parts.extend(self.provinces.iter().map(|p| format!("provincia {p}")));
        parts.extend(self.cpis.iter().map(|c| format!("CPI {c}")));
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub label: String,
    pub sha256: String,
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Scope::is_empty")]
    pub scope: Scope,
    pub password_hash: String,
    /// Random, new on every add: sessions begun under another stamp are over (see the module
    /// comment). Empty in files written before stamps existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stamp: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default, rename = "user")]
    users: Vec<User>,
}

pub fn hash_password(password: &str) -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random source");
    let salt = SaltString::encode_b64(&bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password nobody knows, made once per process with the same parameters as
/// real ones: checking an unknown user's password against it takes as long as a known user's,
/// so the answer's time does not tell whether a name exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret(16)))
}

/// A random secret as URL-safe text (`bytes` of entropy).
pub fn random_secret(bytes: usize) -> String {
    use rand::TryRngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng
        .try_fill_bytes(&mut b)
        .expect("the OS random source");
    hex::encode(b)
}

pub fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The users file.
#[derive(Debug, Clone)]
pub struct UserStore {
    pub path: PathBuf,
}

impl UserStore {
    pub fn new(path: impl Into<PathBuf>) -> UserStore {
        UserStore { path: path.into() }
    }

    /// Every user; a missing file means none.
    pub fn load(&self) -> Result<Vec<User>, UserError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(UserError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let f: File = toml::from_str(&text).map_err(|e| UserError::Invalid {
            path: self.path.clone(),
            message: e.message().to_owned(),
        })?;
        Ok(f.users)
    }

    fn save(&self, users: Vec<User>) -> Result<(), UserError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let werr = |source| UserError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let text = toml::to_string_pretty(&File { users }).expect("users serialise");
        let tmp = self.path.with_extension("toml.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(b"# mirato users: managed by `mirato users`. Passwords are argon2id hashes.\n")
            .and_then(|_| f.write_all(text.as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(werr)?;
        std::fs::rename(&tmp, &self.path).map_err(werr)
    }

    /// Adds a user (or replaces one of the same name); returns the password, generated when
    /// `password` is None. The user gets a new credential stamp and no tokens: whatever
    /// sessions and tokens a user of this name had end here.
    pub fn add(
        &self,
        name: &str,
        role: Role,
        scope: &Scope,
        password: Option<&str>,
    ) -> Result<String, UserError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err(UserError::Bad(format!(
                "'{name}' is not a user name: letters, digits, '.', '_', '-', '@'"
            )));
        }
        let scope = scope.normalised().map_err(UserError::Bad)?;
        if role == Role::Manager && scope.is_empty() {
            return Err(UserError::Bad(
                "a manager needs a scope: --region, --province or --cpi".into(),
            ));
        }
        if role != Role::Manager && !scope.is_empty() {
            return Err(UserError::Bad(format!(
                "only a manager has a territorial scope, not a {}",
                role.as_str()
            )));
        }
        let password = match password {
            Some(p) if p.chars().count() < 12 => {
                return Err(UserError::Bad(
                    "a password needs at least 12 characters".into(),
                ));
            }
            Some(p) => p.to_owned(),
            None => random_secret(12),
        };
        let mut users = self.load()?;
        users.retain(|u| u.name != name);
        users.push(User {
            name: name.to_owned(),
            role,
            scope,
            password_hash: hash_password(&password),
            stamp: random_secret(16),
            tokens: Vec::new(),
        });
        users.sort_by(|a, b| a.name.cmp(&b.name));
        self.save(users)?;
        Ok(password)
    }

    pub fn remove(&self, name: &str) -> Result<bool, UserError> {
        let mut users = self.load()?;
        let before = users.len();
        users.retain(|u| u.name != name);
        let removed = users.len() != before;
        if removed {
            self.save(users)?;
        }
        Ok(removed)
    }

    /// A new API token for `name`; the token is shown once and stored hashed. Its label names
    /// it for [`UserStore::revoke_token`], so it must be new for this user.
    pub fn add_token(&self, name: &str, label: &str) -> Result<String, UserError> {
        if label.trim().is_empty() {
            return Err(UserError::Bad("a token needs a label".into()));
        }
        let mut users = self.load()?;
        let u = users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserError::Bad(format!("no user '{name}'")))?;
        if u.tokens.iter().any(|t| t.label == label) {
            return Err(UserError::Bad(format!(
                "'{name}' already has a token labelled '{label}': revoke it first, or choose another label"
            )));
        }
        let token = format!("mrt_{}", random_secret(32));
        u.tokens.push(Token {
            label: label.to_owned(),
            sha256: token_digest(&token),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        self.save(users)?;
        Ok(token)
    }

    /// Revokes `name`'s token labelled `label` (every one so labelled, in files from before
    /// labels were unique); the server refuses it from its next request.
    pub fn revoke_token(&self, name: &str, label: &str) -> Result<usize, UserError> {
        let mut users = self.load()?;
        let u = users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserError::Bad(format!("no user '{name}'")))?;
        let before = u.tokens.len();
        u.tokens.retain(|t| t.label != label);
        let revoked = before - u.tokens.len();
        if revoked == 0 {
            return Err(UserError::Bad(format!(
                "'{name}' has no token labelled '{label}'"
            )));
        }
        self.save(users)?;
        Ok(revoked)
    }
}

/// The default users file, beside the default key: `~/.config/mirato/users.toml`.
pub fn default_users_path() -> PathBuf {
    crate::privacy::default_key_path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("users.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("users.toml"));
        let scope = Scope {
            regions: vec!["03".into()],
            ..Scope::default()
        };
        let pw = store.add("anna", Role::Manager, &scope, None).unwrap();
        let users = store.load().unwrap();
        assert_eq!(users[0].scope.regions, ["Lombardia"]);
        assert!(verify_password(&users[0].password_hash, &pw));
        assert!(!verify_password(&users[0].password_hash, "wrong password!"));
        assert!(!std::fs::read_to_string(&store.path).unwrap().contains(&pw));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&store.path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let t = store.add_token("anna", "script").unwrap();
        assert_eq!(store.load().unwrap()[0].tokens[0].sha256, token_digest(&t));
        assert!(
            store.add_token("anna", "script").is_err(),
            "labels are unique"
        );
        store.add_token("anna", "other").unwrap();
        assert_eq!(store.revoke_token("anna", "script").unwrap(), 1);
        assert_eq!(store.load().unwrap()[0].tokens.len(), 1);
        assert!(store.revoke_token("anna", "script").is_err());
        // Adding the user again (a new password, say) gives a new stamp and no tokens.
        let stamp = store.load().unwrap()[0].stamp.clone();
        assert!(!stamp.is_empty());
        store.add("anna", Role::Manager, &scope, None).unwrap();
        let again = &store.load().unwrap()[0];
        assert_ne!(again.stamp, stamp);
        assert!(again.tokens.is_empty());
        assert!(
            store
                .add("bob", Role::Manager, &Scope::default(), None)
                .is_err()
        );
        assert!(store.add("bob", Role::Viewer, &scope, None).is_err());
        assert!(
            store
                .add("bob", Role::Viewer, &Scope::default(), Some("short"))
                .is_err()
        );
        assert!(store.remove("anna").unwrap());
        assert!(store.load().unwrap().is_empty());
    }
}
