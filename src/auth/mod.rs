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
    pub session_ttl: Duration,
    pub login_attempts: usize,
    pub login_window: Duration,
    pub audit_file: PathBuf,
}

struct Session {
    user: String,
    csrf: String,
    expires: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Too many failed attempts from this client or for this user: wait this long.
    RateLimited(Duration),
    Invalid,
}

/// Users (reloaded when their file changes), sessions, the login limiter and the audit.
pub struct Auth {
    pub settings: AuthSettings,
    store: UserStore,
    users: Mutex<(Option<SystemTime>, Arc<Vec<User>>)>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    pub audit: audit::Audit,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Auth {
        Auth {
            store: UserStore::new(settings.users_file.clone()),
            audit: audit::Audit::new(settings.audit_file.clone()),
            settings,
            users: Mutex::new((None, Arc::new(Vec::new()))),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn threshold(&self) -> u64 {
        self.settings.threshold.max(disclosure::MIN_THRESHOLD)
    }

    /// The users, read again when the file's mtime changed (so `mirato users add` takes effect
    /// without a restart). An unreadable file keeps the last good list and is logged.
    pub fn users(&self) -> Arc<Vec<User>> {
        let mtime = std::fs::metadata(&self.store.path)
            .and_then(|m| m.modified())
            .ok();
        let mut g = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 != mtime || mtime.is_none() {
            match self.store.load() {
                Ok(u) => *g = (mtime, Arc::new(u)),
                Err(e) => tracing::error!(error = %e, "cannot read the users file"),
            }
        }
        Arc::clone(&g.1)
    }

    fn principal_of(&self, name: &str) -> Option<Principal> {
        self.users()
            .iter()
            .find(|u| u.name == name)
            .map(|u| Principal {
                name: u.name.clone(),
                role: u.role,
                scope: u.scope.clone(),
            })
    }

    fn limited(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let window = self.settings.login_window;
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for k in keys {
            if let Some(v) = f.get_mut(k) {
                v.retain(|t| now.duration_since(*t) < window);
                if v.len() >= self.settings.login_attempts
                    && let Some(first) = v.first()
                {
                    let left = window.saturating_sub(now.duration_since(*first));
                    wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
                }
            }
        }
        wait
    }

    /// Checks a password. Failed attempts count per client and per user name; past the limit,
    /// even a right password is refused until the window passes.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        client: &str,
    ) -> Result<(String, String), LoginError> {
        let keys = [format!("client:{client}"), format!("user:{name}")];
        if let Some(wait) = self.limited(&keys) {
            return Err(LoginError::RateLimited(wait));
        }
        let users = self.users();
        let ok = users
            .iter()
            .find(|u| u.name == name)
            .is_some_and(|u| users::verify_password(&u.password_hash, password));
        if !ok {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                f.entry(k).or_default().push(Instant::now());
            }
            return Err(LoginError::Invalid);
        }
        let sid = users::random_secret(32);
        let csrf = users::random_secret(32);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.retain(|_, v| v.expires > now);
        s.insert(
            sid.clone(),
            Session {
                user: name.to_owned(),
                csrf: csrf.clone(),
                expires: now + self.settings.session_ttl,
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

    /// The principal and CSRF token of a live session (its expiry slides forward). A user
    /// removed from the file loses their sessions at once.
    pub fn session(&self, sid: &str) -> Option<(Principal, String)> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let sess = s.get_mut(sid)?;
        if sess.expires <= now {
            s.remove(sid);
            return None;
        }
        sess.expires = now + self.settings.session_ttl;
        let (user, csrf) = (sess.user.clone(), sess.csrf.clone());
        drop(s);
        self.principal_of(&user).map(|p| (p, csrf))
    }

    /// The principal of an API token (`Authorization: Bearer …`).
    pub fn token(&self, token: &str) -> Option<Principal> {
        let digest = users::token_digest(token);
        self.users()
            .iter()
            .find(|u| u.tokens.iter().any(|t| constant_eq(&t.sha256, &digest)))
            .map(|u| Principal {
                name: u.name.clone(),
                role: u.role,
                scope: u.scope.clone(),
            })
    }
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
