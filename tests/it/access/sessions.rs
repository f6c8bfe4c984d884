//! Sessions and tokens end when they should: a change to a user ends all of theirs, one token is
//! revoked by its label, and a session ends at its absolute lifetime however active.

use super::*;

#[tokio::test]
async fn changing_a_user_ends_their_sessions_and_tokens() {
    use mirato::auth::{Role, Scope, UserStore};
    let (env, a, s) = fixture();
    let store = UserStore::new(&a.users_file);
    let role_of = |r: Reply| r.text();

    // Removed, then added again with another role: the old cookie and token are worthless, and
    // the old cookie never gets the new role.
    let viewer = session_for(&s, "viewer", &a.passwords["viewer"]).await;
    assert!(alive(&s, &viewer).await);
    assert!(role_of(get_with_cookie(&s, &viewer, "/logout").await).contains("viewer"));
    assert!(store.remove("viewer").unwrap());
    assert!(!alive(&s, &viewer).await);
    store
        .add(
            "viewer",
            Role::Admin,
            &Scope::default(),
            Some("a-new-password-456"),
        )
        .unwrap();
    assert!(
        !alive(&s, &viewer).await,
        "the old cookie does not come back"
    );
    let r = get_with_cookie(&s, &viewer, "/admin/audit").await;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(
        get_as(&s, &a.tokens["viewer"], "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The new account logs in afresh.
    let new = session_for(&s, "viewer", "a-new-password-456").await;
    assert_eq!(
        get_with_cookie(&s, &new, "/admin/audit").await.status,
        StatusCode::OK
    );

    // A new password (the same role) ends the sessions and tokens too.
    let admin = session_for(&s, "admin", &a.passwords["admin"]).await;
    assert!(alive(&s, &admin).await);
    store
        .add(
            "admin",
            Role::Admin,
            &Scope::default(),
            Some("another-password-789"),
        )
        .unwrap();
    assert!(!alive(&s, &admin).await);
    assert_eq!(
        get_as(&s, &a.tokens["admin"], "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A new role with the same password: the same.
    let manager = session_for(&s, "manager", &a.passwords["manager"]).await;
    store
        .add(
            "manager",
            Role::Viewer,
            &Scope::default(),
            Some(&a.passwords["manager"]),
        )
        .unwrap();
    assert!(!alive(&s, &manager).await);

    // Other users are untouched.
    assert_eq!(
        get_as(&s, &a.tokens["evaluator"], "/api/kpis").await.status,
        StatusCode::OK
    );
    drop(env);
}

#[tokio::test]
async fn one_token_is_revoked_by_its_label() {
    let (env, a, s) = fixture();
    let cli = |args: &[&str]| {
        env.cli()
            .arg("users")
            .args(args)
            .env("MIRATO_AUTH_USERS_FILE", &a.users_file)
            .output()
            .unwrap()
    };
    let out = cli(&["token", "evaluator", "--label", "script"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(script.starts_with("mrt_"));
    // A second token with the same label is refused: the label names one token.
    let out = cli(&["token", "evaluator", "--label", "script"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        get_as(&s, &script, "/api/kpis").await.status,
        StatusCode::OK
    );

    let out = cli(&["token", "revoke", "evaluator", "script"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get_as(&s, &script, "/api/kpis").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The user's other token still works; revoking an unknown label says so.
    assert_eq!(
        get_as(&s, &a.tokens["evaluator"], "/api/kpis").await.status,
        StatusCode::OK
    );
    let out = cli(&["token", "revoke", "evaluator", "script"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token labelled 'script'"));
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let (env, a, _s) = fixture();
    let mut setup = env.setup();
    setup.auth.session_max = std::time::Duration::from_millis(1500);
    let s = setup.state().unwrap();
    let r = log_in(&s, "viewer", &a.passwords["viewer"], "/").await;
    // The cookie says so too.
    let set = r.header("set-cookie");
    assert!(
        set.lines()
            .any(|c| c.starts_with("mirato_session=") && c.contains("Max-Age=1")),
        "{set}"
    );
    let cookie = session_of(&r);
    let started = std::time::Instant::now();
    // Active all along (the idle limit is an hour), yet over after 1.5 s.
    while started.elapsed() < std::time::Duration::from_millis(1200) {
        assert!(alive(&s, &cookie).await);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!alive(&s, &cookie).await);
}
