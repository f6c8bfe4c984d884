//! Access control and confidentiality: who is asking (users, sessions, API tokens), what they
//! may see (roles, territorial scope, small-cell suppression), and the audit of what they saw.
//! HTTP-free: the server module turns requests into a [`Principal`] through [`Auth`].

pub mod audit;
pub mod disclosure;
pub mod users;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::query::TerritoryScope;
pub use users::{Role, Scope, User, UserStore};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The restriction the query layer applies: a manager's scope; nobody else has one.
    pub fn territory(&self) -> Option<TerritoryScope> {
        (self.role == Role::Manager).then(|| TerritoryScope {
            provinces: self.scope.provinces_covered(),
            cpis: self.scope.cpis.clone(),
        })
    }

    /// Whether small cells are suppressed for this principal (all roles but admin).
    pub fn suppressed(&self) -> bool {
        !self.is_admin()
    }

    /// What decides the content of a page for this principal: role class and scope (not the
    /// name), so that users who see the same figures share cached pages.
    pub fn view_class(&self, threshold: u64) -> String {
        match self.role {
            Role::Admin => "admin".into(),
            Role::Manager => format!("manager|{:?}|{threshold}", self.scope),
            Role::Evaluator | Role::Viewer => format!("national|{threshold}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub users_file: PathBuf,
    pub threshold: u64,
    pub secure_cookies: bool,
    /// Idle time after which a session ends (each request moves it forward).
    pub session_ttl: Duration,
    /// Time after login at which a session ends however active it is.
    pub session_max: Duration,
    /// Failed logins for one user name from one address before each further try waits.
    pub login_attempts: usize,
    /// The longest wait; failures are forgotten after this long without one (past the wait).
    pub login_window: Duration,
    pub audit_file: PathBuf,
    pub audit_rotation: audit::Rotation,
}

struct Session {
    user: String,
    /// The user's credential stamp at login: a different one now means the user was removed,
    /// re-added or changed, and the session is over.
    stamp: String,
    csrf: String,
    expires: Instant,
    ends: Instant,
}

/// Consecutive failed logins for one user name from one address.
struct Failures {
    count: u32,
    last: Instant,
}

/// The first wait after `login_attempts` failures; it doubles with each further failure.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Past this many (user, address) pairs with failures, the forgotten ones are dropped.
const MAX_TRACKED: usize = 10_000;

/// How long a login form's CSRF token is good for.
pub const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Too many failed attempts for this user name from this address: wait this long.
    RateLimited(Duration),
    Invalid,
}

/// Users (reloaded when their file changes), sessions, the login limiter and the audit.
pub struct Auth {
    pub settings: AuthSettings,
    store: UserStore,
    users: Mutex<(Option<FileId>, Arc<Vec<User>>)>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<(String, String), Failures>>,
    /// Signs the login form's CSRF tokens: random per process, so a token is this server's.
    secret: [u8; 32],
    pub audit: audit::Audit,
}

/// What tells that the users file changed: a rewrite replaces it (rename), so its inode, size
/// or mtime differ even within one mtime tick.
type FileId = (SystemTime, u64, u64);

impl Auth {
    pub fn new(settings: AuthSettings) -> Auth {
        // Made now, so that the first unknown name does not pay for it.
        let _ = users::dummy_hash();
        let mut secret = [0u8; 32];
        {
            use rand::TryRngCore;
            rand::rngs::OsRng
                .try_fill_bytes(&mut secret)
                .expect("the OS random source");
        }
        Auth {
            store: UserStore::new(settings.users_file.clone()),
            audit: audit::Audit::with_rotation(
                settings.audit_file.clone(),
                settings.audit_rotation,
            ),
            settings,
            users: Mutex::new((None, Arc::new(Vec::new()))),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            secret,
        }
    }

    pub fn threshold(&self) -> u64 {
        self.settings.threshold.max(disclosure::MIN_THRESHOLD)
    }

    /// The users, read again when the file changed (so `mirato users add` takes effect
    /// without a restart). An unreadable file keeps the last good list and is logged.
    pub fn users(&self) -> Arc<Vec<User>> {
        use std::os::unix::fs::MetadataExt;
        let id = std::fs::metadata(&self.store.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())));
        let mut g = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 != id || id.is_none() {
            match self.store.load() {
                Ok(u) => *g = (id, Arc::new(u)),
                Err(e) => tracing::error!(error = %e, "cannot read the users file"),
            }
        }
        Arc::clone(&g.1)
    }

    fn principal(u: &User) -> Principal {
        Principal {
            name: u.name.clone(),
            role: u.role,
            scope: u.scope.clone(),
        }
    }

    /// How long `f` must still wait, if at all: nothing below `login_attempts` failures, then
    /// [`FIRST_WAIT`] doubling with each failure, at most `login_window`.
    fn wait(&self, f: &Failures, now: Instant) -> Option<Duration> {
        let over = (f.count as usize).checked_sub(self.settings.login_attempts)?;
        let delay = FIRST_WAIT
            .checked_mul(1u32 << over.min(20))
            .unwrap_or(Duration::MAX)
            .min(self.settings.login_window);
        let left = delay.saturating_sub(now.duration_since(f.last));
        (!left.is_zero()).then_some(left)
    }

    /// Whether `f` is old enough to forget: a whole window without failures past its wait.
    fn forgotten(&self, f: &Failures, now: Instant) -> bool {
        now.duration_since(f.last) >= self.settings.login_window * 2
    }

    /// Checks a password. Failures count per user name and address together: past
    /// `login_attempts` each further try from there waits, doubling, even with the right
    /// password; other users behind the same address, and this user elsewhere, are not held up.
    /// An unknown name costs the same password check as a known one.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        client: &str,
    ) -> Result<(String, String), LoginError> {
        // A name longer than any user's counts under its start: a flood of long made-up names
        // cannot make the limiter's memory large.
        let key = (name.chars().take(64).collect(), client.to_owned());
        {
            let now = Instant::now();
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if f.get(&key).is_some_and(|v| self.forgotten(v, now)) {
                f.remove(&key);
            }
            if let Some(wait) = f.get(&key).and_then(|v| self.wait(v, now)) {
                return Err(LoginError::RateLimited(wait));
            }
        }
        let users = self.users();
        let user = users.iter().find(|u| u.name == name);
        let hash = user.map_or(users::dummy_hash(), |u| u.password_hash.as_str());
        let ok = users::verify_password(hash, password) && user.is_some();
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(user) = user.filter(|_| ok) else {
            if f.len() >= MAX_TRACKED {
                f.retain(|_, v| !self.forgotten(v, now));
            }
            let e = f.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            e.count = e.count.saturating_add(1);
            e.last = now;
            return Err(LoginError::Invalid);
        };
        f.remove(&key);
        drop(f);
        let sid = users::random_secret(32);
        let csrf = users::random_secret(32);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, v| v.expires > now && v.ends > now);
        s.insert(
            sid.clone(),
            Session {
                user: name.to_owned(),
                stamp: user.stamp.clone(),
                csrf: csrf.clone(),
                expires: now + self.settings.session_ttl,
                ends: now + self.settings.session_max,
            },
        );
        Ok((sid, csrf))
    }

    pub fn logout(&self, sid: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }

    /// The principal and CSRF token of a live session (its idle expiry slides forward, its
    /// absolute end does not). A session ends at once when its user is removed, re-added or
    /// changed (the user's credential stamp is no longer the one it began under).
    pub fn session(&self, sid: &str) -> Option<(Principal, String)> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let sess = s.get_mut(sid)?;
        if sess.expires <= now || sess.ends <= now {
            s.remove(sid);
            return None;
        }
        let users = self.users();
        let Some(user) = users
            .iter()
            .find(|u| u.name == sess.user && constant_eq(&u.stamp, &sess.stamp))
        else {
            s.remove(sid);
            return None;
        };
        sess.expires = now + self.settings.session_ttl;
        Some((Self::principal(user), sess.csrf.clone()))
    }

    /// The principal of an API token (`Authorization: Bearer …`). Tokens live in their user's
    /// record: a revoked token, or one of a user removed or added again, is simply not there.
    pub fn token(&self, token: &str) -> Option<Principal> {
        let digest = users::token_digest(token);
        self.users()
            .iter()
            .find(|u| u.tokens.iter().any(|t| constant_eq(&t.sha256, &digest)))
            .map(Self::principal)
    }

    fn login_mac(&self, nonce: &str, issued: u64) -> HmacSha256 {
        use hmac::Mac;
        let mut m = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key");
        m.update(b"mirato login form\0");
        m.update(nonce.as_bytes());
        m.update(b"\0");
        m.update(&issued.to_be_bytes());
        m
    }

    /// A CSRF token for the login form, signed by this server: `nonce.issued.mac`.
    pub fn login_token(&self) -> String {
        use hmac::Mac;
        let nonce = users::random_secret(16);
        let issued = unix_now();
        let mac = self.login_mac(&nonce, issued).finalize().into_bytes();
        format!("{nonce}.{issued}.{}", hex::encode(mac))
    }

    /// Whether `token` is a login token this server signed within the last hour.
    pub fn check_login_token(&self, token: &str) -> bool {
        use hmac::Mac;
        let mut parts = token.split('.');
        let (Some(nonce), Some(issued), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(issued), Ok(mac)) = (issued.parse::<u64>(), hex::decode(mac)) else {
            return false;
        };
        let now = unix_now();
        let fresh = issued <= now + 60 && now.saturating_sub(issued) <= LOGIN_FORM_TTL.as_secs();
        fresh && self.login_mac(nonce, issued).verify_slice(&mac).is_ok()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Comparison whose time does not depend on where the strings differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Refuses a key file that others can read, or that is missing.
pub fn check_key_file(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(path).map_err(|e| {
        format!(
            "the pseudonymisation key {} cannot be read ({e}); ingest creates it, or restore it from its backup",
            path.display()
        )
    })?;
    let mode = m.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the pseudonymisation key {} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(AuthSettings {
            users_file: "/nonexistent/users.toml".into(),
            threshold: 5,
            secure_cookies: false,
            session_ttl: Duration::from_secs(3600),
            session_max: Duration::from_secs(12 * 3600),
            login_attempts: 5,
            login_window: Duration::from_secs(900),
            audit_file: "/nonexistent/audit.jsonl".into(),
            audit_rotation: audit::Rotation::default(),
        })
    }

    #[test]
    fn the_wait_doubles_past_the_attempts_up_to_the_window() {
        let a = auth();
        let now = Instant::now();
        let wait = |count| a.wait(&Failures { count, last: now }, now);
        assert_eq!(wait(4), None);
        assert_eq!(wait(5), Some(Duration::from_secs(1)));
        assert_eq!(wait(7), Some(Duration::from_secs(4)));
        assert_eq!(wait(40), Some(Duration::from_secs(900)));
        assert_eq!(wait(u32::MAX), Some(Duration::from_secs(900)));
        let later = now + Duration::from_secs(2);
        assert_eq!(
            a.wait(
                &Failures {
                    count: 6,
                    last: now
                },
                later
            ),
            None
        );
    }

    #[test]
    fn login_tokens_are_this_servers_and_expire() {
        use hmac::Mac;
        let a = auth();
        let t = a.login_token();
        assert!(a.check_login_token(&t));
        assert!(!auth().check_login_token(&t), "another server's");
        assert!(!a.check_login_token(&t.replace('.', "")));
        assert!(!a.check_login_token(&format!("{t}.x")));
        let old = unix_now() - LOGIN_FORM_TTL.as_secs() - 10;
        let mac = hex::encode(a.login_mac("abc", old).finalize().into_bytes());
        assert!(!a.check_login_token(&format!("abc.{old}.{mac}")), "expired");
        let now = unix_now();
        let mac = hex::encode(a.login_mac("abc", now).finalize().into_bytes());
        assert!(a.check_login_token(&format!("abc.{now}.{mac}")));
        assert!(!a.check_login_token(&format!("abd.{now}.{mac}")));
    }
}
