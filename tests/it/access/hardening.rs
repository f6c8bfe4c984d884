//! HTTP hardening: no traversal and no 500 from user input, no serving with a readable key or a
//! low threshold, `no-store` and HSTS, a safe `next`, a login token signed by this server, and a
//! `/healthz` that tells anonymous callers only `ok`.

use super::*;

#[tokio::test]
async fn no_traversal_and_no_500_from_user_input() {
    let (_env, a, s) = fixture();
    let tok = a.tokens["admin"].clone();
    for uri in [
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/p/..%2F..%2Fetc%2Fpasswd",
        "/export/..%2F..%2Fetc/1.csv",
        "/export/panoramica/..%2F1.csv",
        "/api/kpi/..%2F..%2Fetc%2Fpasswd",
        "/p/panoramica?from=..%2F..%2F",
        "/api/kpi/hires?by=..%2Fregion",
        "/api/kpi/hires?cpi=%27%3B%20DROP%20TABLE%20ev%3B--",
    ] {
        let r = get_as(&s, &tok, uri).await;
        assert!(
            matches!(
                r.status,
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::OK
            ),
            "{uri}: {}",
            r.status
        );
        assert!(!r.text().contains("root:"), "{uri}");
    }
    // The CPI filter is a placeholder value, not SQL: it simply matches nothing.
    for cpi in ["%27%20OR%201%3D1--", "%27OR%271%27"] {
        let r = get_as(&s, &tok, &format!("/api/kpi/hires?cpi={cpi}"))
            .await
            .json();
        assert_eq!(r["rows"][0]["value"], 0, "{cpi}");
    }
    // Security headers everywhere, the login page included.
    let r = send(&s, Method::GET, "/login", &[], "").await;
    let csp = r.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
}

#[test]
fn serve_refuses_a_key_readable_by_others_and_a_low_threshold() {
    use std::os::unix::fs::PermissionsExt;
    let (env, _a, _s) = fixture();
    std::fs::set_permissions(&env.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_USERS_FILE", env.users_file())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&env.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env
        .cli()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MIRATO_AUTH_SUPPRESSION_THRESHOLD", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("legal minimum is 3"));
}

#[tokio::test]
async fn authenticated_responses_are_no_store_and_tls_gets_hsts() {
    let (_env, a, s) = fixture();
    let session = session_for(&s, "viewer", &a.passwords["viewer"]).await;
    for uri in ["/p/panoramica", "/p/qualita", "/logout", "/api/kpis"] {
        let r = get_with_cookie(&s, &session, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("cache-control"), "no-store", "{uri}");
    }
    for uri in [
        "/api/kpi/hires",
        "/api/kpi/hires?format=csv",
        "/export/panoramica/11.csv",
        "/report/anpal?year=2025",
    ] {
        let r = get_as(&s, &a.tokens["viewer"], uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("cache-control"), "no-store", "{uri}");
    }
    // A revalidation (304) is no-store as well.
    let r = get_as(&s, &a.tokens["viewer"], "/api/kpi/hires").await;
    if !r.header("etag").is_empty() {
        let again = send(
            &s,
            Method::GET,
            "/api/kpi/hires",
            &[
                ("authorization", format!("Bearer {}", a.tokens["viewer"])),
                ("if-none-match", r.header("etag")),
            ],
            "",
        )
        .await;
        assert_eq!(again.header("cache-control"), "no-store");
    }

    // HSTS over TLS only (a proxy says so), on every response.
    let plain = send(&s, Method::GET, "/login", &[], "").await;
    assert!(plain.header("strict-transport-security").is_empty());
    for uri in ["/login", "/healthz", "/p/panoramica"] {
        let r = send(
            &s,
            Method::GET,
            uri,
            &[
                ("x-forwarded-proto", "https".into()),
                ("cookie", session.clone()),
            ],
            "",
        )
        .await;
        assert!(
            r.header("strict-transport-security")
                .starts_with("max-age="),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn a_bad_next_falls_back_to_the_home_page() {
    let (_env, a, s) = fixture();
    for bad in [
        "/\t/evil.example/x",
        "/\n/x",
        "/\r\n/x",
        "//evil",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil",
        "javascript:alert(1)",
        "/x\u{7f}",
        "/\u{0}x",
        "/é",
        "/a b",
        "",
    ] {
        // The form keeps only a safe value.
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("next", bad);
        let r = send(&s, Method::GET, &format!("/login?{}", q.finish()), &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}");
        assert!(r.text().contains("name=\"next\" value=\"/\""), "{bad:?}");
        // A login with it goes home, never a 500.
        let r = log_in(&s, "viewer", &a.passwords["viewer"], bad).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{bad:?}: {}", r.text());
        assert_eq!(r.header("location"), "/", "{bad:?}");
    }
    // A query string that does not decode is no error either.
    let r = send(&s, Method::GET, "/login?next=%ZZ&%%", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    // A same-site path with its filters is kept.
    let good = "/p/esiti?from=2025-01-01&region=Lazio";
    let r = log_in(&s, "viewer", &a.passwords["viewer"], good).await;
    assert_eq!(r.header("location"), good);
}

#[tokio::test]
async fn the_login_form_token_is_signed_by_this_server() {
    let (env, a, s) = fixture();
    let form = |csrf: &str| {
        let mut b = form_urlencoded::Serializer::new(String::new());
        b.append_pair("user", "viewer")
            .append_pair("password", &a.passwords["viewer"])
            .append_pair("csrf", csrf)
            .append_pair("next", "/");
        b.finish()
    };
    // A token the attacker made up (cookie and form agree: a plain double submit would pass).
    for forged in [
        "0123456789abcdef0123456789abcdef".to_owned(),
        format!(
            "{}.{}.{}",
            "ab".repeat(16),
            1_900_000_000u64,
            "cd".repeat(32)
        ),
        String::new(),
    ] {
        let r = send(
            &s,
            Method::POST,
            "/login",
            &[("cookie", format!("mirato_login_csrf={forged}"))],
            &form(&forged),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{forged}");
        assert!(!r.header("set-cookie").contains("mirato_session="));
    }
    // One another server signed is no good here either.
    let other = env.app_state();
    let (cookie, token) = login_form(&other).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // This server's own token, in cookie and form, opens the session.
    let (cookie, token) = login_form(&s).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Its token in the form but another in the cookie: refused.
    let (_, token) = login_form(&s).await;
    let (cookie, _) = login_form(&s).await;
    let r = send(
        &s,
        Method::POST,
        "/login",
        &[("cookie", cookie)],
        &form(&token),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn healthz_tells_anonymous_callers_only_ok() {
    let (_env, a, s) = fixture();
    let r = send(&s, Method::GET, "/healthz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok");
    // Nor more to a viewer, or with a bad token.
    assert_eq!(
        get_as(&s, &a.tokens["viewer"], "/healthz").await.text(),
        "ok"
    );
    assert_eq!(get_as(&s, "mrt_forged", "/healthz").await.text(), "ok");
    // An administrator gets the details.
    let j = get_as(&s, &a.tokens["admin"], "/healthz").await.json();
    assert_eq!(j["status"], "ok");
    assert!(j["data_version"].is_string(), "{j}");
}
