//! Who sees what: the role × route × territory matrix, small-cell protection identical in HTML,
//! API and CSV, the audit of views and exports, the ANPAL report within a user's scope, and the
//! rejected rows for administrators only.

use super::*;

fn values_by_region(rows: &Value) -> Vec<(String, Value)> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["region"].as_str().unwrap().to_owned(), r["value"].clone()))
        .collect()
}

#[tokio::test]
async fn role_route_territory_matrix() {
    let (_env, a, s) = fixture();
    let t = |role: &str| a.tokens[role].clone();
    // API, national and by region, for each role.
    let api = |role: &'static str, q: &'static str| {
        let s = s.clone();
        let tok = t(role);
        async move {
            get_as(&s, &tok, &format!("/api/kpi/hires?{Y}{q}"))
                .await
                .json()
        }
    };
    assert_eq!(api("admin", "").await["rows"][0]["value"], 15);
    assert_eq!(api("admin", "&region=Lazio").await["rows"][0]["value"], 2);
    // Below admin every count is perturbed by at most 3 and never shown between 1 and 4.
    let near = |v: &Value, exact: i64| {
        let n = v.as_i64().unwrap_or_else(|| panic!("a number: {v}"));
        assert!(n >= 5 && (n - exact).abs() <= 3, "{n} is not near {exact}");
    };
    for role in ["evaluator", "viewer"] {
        near(&api(role, "").await["rows"][0]["value"], 15);
        let by = values_by_region(&api(role, "&by=region").await["rows"]);
        assert_eq!(by[0].0, "Campania");
        near(&by[0].1, 7);
        assert_eq!(by[1], ("Lazio".into(), json!("<5")));
        assert_eq!(by[2].0, "Lombardia");
        near(&by[2].1, 6);
    }
    // The manager of Lombardia: Lombardia only, whatever they ask, and always the same
    // perturbed value (the same records, the same noise).
    let mine = api("manager", "").await["rows"][0]["value"].clone();
    near(&mine, 6);
    for q in [
        "",
        "&region=Lazio",
        "&province=RM",
        "&region=Lombardia",
        "&cpi=RM-01",
    ] {
        let j = api("manager", q).await;
        assert_eq!(j["rows"][0]["value"], mine, "{q}: {j}");
        assert!(
            j["params"]["scope"]["provinces"]
                .as_array()
                .unwrap()
                .contains(&json!("MI"))
        );
    }
    assert_eq!(
        values_by_region(&api("manager", "&by=region").await["rows"]),
        [("Lombardia".into(), mine.clone())]
    );
    let j = api("manager", "&by=province").await;
    assert_eq!(
        j["rows"],
        json!([{"province": "MI", "province_label": "Milano (MI)", "value": mine}])
    );

    // Pages and every export: no figure of another territory reaches the manager.
    for uri in [
        format!("/p/panoramica?{Y}"),
        format!("/p/panoramica?{Y}&region=Lazio"),
        format!("/export/panoramica/11.csv?{Y}&region=Lazio"),
        format!("/export/panoramica/11.json?{Y}"),
        format!("/export/panoramica/7.csv?{Y}&province=RM"),
        format!("/p/qualita?{Y}"),
    ] {
        let r = get_as(&s, &t("manager"), &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let body = r.text();
        for other in ["Lazio,", "Campania", "\"Lazio\"", "RM-01", ">15<", ">2<"] {
            assert!(!body.contains(other), "{uri} leaks {other}");
        }
    }
    let csv = get_as(
        &s,
        &t("manager"),
        &format!("/export/panoramica/11.csv?{Y}&region=Lazio"),
    )
    .await
    .text();
    assert!(
        csv.ends_with(&format!("region,value\nLombardia,{mine}\n")),
        "{csv}"
    );
    let xlsx = get_as(
        &s,
        &t("manager"),
        &format!("/export/panoramica/11.xlsx?{Y}"),
    )
    .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert_eq!(&xlsx.body[..2], b"PK");
    let tile = get_as(
        &s,
        &t("manager"),
        &format!("/p/panoramica?{Y}&region=Lazio"),
    )
    .await
    .text();
    let tile = &tile[tile.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains(&format!("<p class=\"value\">{mine}</p>")));

    // Admin-only routes.
    for uri in [
        "/jobs",
        "/api/jobs",
        "/metrics",
        "/admin/audit",
        "/api/audit",
    ] {
        for role in ["manager", "evaluator", "viewer"] {
            assert_eq!(
                get_as(&s, &t(role), uri).await.status,
                StatusCode::FORBIDDEN,
                "{role} {uri}"
            );
        }
        assert_eq!(
            get_as(&s, &t("admin"), uri).await.status,
            StatusCode::OK,
            "admin {uri}"
        );
    }
    // Ingest batches are administrators' only.
    let q = get_as(&s, &t("viewer"), "/p/qualita").await.text();
    assert!(q.contains("Riservato agli amministratori"));
    assert!(!q.contains("hires.csv"));
    assert!(
        get_as(&s, &t("admin"), "/p/qualita")
            .await
            .text()
            .contains("hires.csv")
    );
    assert_eq!(
        get_as(&s, &t("viewer"), "/export/qualita/1.csv")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn suppression_is_identical_in_html_api_and_csv() {
    let (_env, a, s) = fixture();
    let tok = a.tokens["viewer"].clone();
    let api = get_as(&s, &tok, &format!("/api/kpi/hires?{Y}&by=region"))
        .await
        .json();
    let api_csv = get_as(
        &s,
        &tok,
        &format!("/api/kpi/hires?{Y}&by=region&format=csv"),
    )
    .await;
    // Each output says what protects its cells.
    assert_eq!(
        api_csv.header("x-mirato-protection"),
        "cell_key_perturbation; threshold=5; noise_max=3; noise_variance=1.4"
    );
    assert_eq!(api["protection"]["method"], "cell_key_perturbation");
    let api_csv = api_csv.text();
    // Perturbed (see the role matrix); the JSON, the CSV, the exports and the page agree.
    let campania = api["rows"][0]["value"].as_i64().unwrap();
    let lombardia = api["rows"][2]["value"].as_i64().unwrap();
    assert_eq!(
        api_csv,
        format!("region,value\nCampania,{campania}\nLazio,<5\nLombardia,{lombardia}\n")
    );
    let export = get_as(&s, &tok, &format!("/export/panoramica/11.csv?{Y}"))
        .await
        .text();
    assert!(export.ends_with(&api_csv), "{export}");
    let xjson = get_as(&s, &tok, &format!("/export/panoramica/11.json?{Y}"))
        .await
        .json();
    assert_eq!(xjson["rows"], api["rows"]);
    // The HTML table of the same panel (Assunzioni per regione), cell by cell.
    let html = get_as(&s, &tok, &format!("/p/panoramica?{Y}")).await.text();
    let panel = &html[html.find("id=\"panel-11\"").unwrap()..];
    let panel = &panel[..panel.find("</article>").unwrap()];
    for (region, value) in [
        ("Campania", campania.to_string()),
        ("Lazio", "&lt;5".to_owned()),
        ("Lombardia", lombardia.to_string()),
    ] {
        assert!(
            panel.contains(&format!(">{region}</td><td class=\"num\""))
                || panel.contains(&format!(">{region}</td>")),
            "{region}"
        );
        let row = &panel[panel.find(&format!(">{region}</td>")).unwrap()..];
        let cell = &row[..row.find("</tr>").unwrap()];
        assert!(cell.contains(&format!(">{value}</td>")), "{region}: {cell}");
    }
    // The chart labels say the same.
    assert!(panel.contains("&lt;5"), "{panel}");
    // The total (the tile of the same page) is perturbed on its own: total minus the shown
    // cells is Lazio plus three noises, never Lazio for sure.
    let total = get_as(&s, &tok, &format!("/api/kpi/hires?{Y}"))
        .await
        .json()["rows"][0]["value"]
        .as_i64()
        .unwrap();
    let tile = &html[html.find("Inserimenti lavorativi").unwrap()..];
    assert!(tile.contains(&format!("<p class=\"value\">{total}</p>")));
    let hidden = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["value"] == "<5")
        .count();
    assert_eq!(hidden, 1);
    assert!(html.contains("Valori perturbati"), "the page says so");
    // The admin sees every cell.
    let admin = get_as(
        &s,
        &a.tokens["admin"],
        &format!("/api/kpi/hires?{Y}&by=region&format=csv"),
    )
    .await;
    assert_eq!(admin.header("x-mirato-protection"), "exact");
    assert_eq!(
        admin.text(),
        "region,value\nCampania,7\nLazio,2\nLombardia,6\n"
    );
    // A rate with a small denominator hides value, numerator and denominator.
    let r = get_as(
        &s,
        &tok,
        &format!("/api/kpi/stable_hire_rate?{Y}&province=RM"),
    )
    .await
    .json();
    assert_eq!(
        r["rows"][0],
        json!({"value": "<5", "numerator": "<5", "denominator": "<5"})
    );
}

#[tokio::test]
async fn views_and_exports_are_audited() {
    let (env, a, s) = fixture();
    get_as(
        &s,
        &a.tokens["manager"],
        &format!("/p/esiti?{Y}&region=Lazio"),
    )
    .await;
    get_as(
        &s,
        &a.tokens["viewer"],
        &format!("/export/panoramica/11.xlsx?{Y}"),
    )
    .await;
    get_as(
        &s,
        &a.tokens["evaluator"],
        &format!("/api/kpi/hires?{Y}&by=region"),
    )
    .await;
    get_as(&s, &a.tokens["viewer"], "/admin/audit").await;
    let text = std::fs::read_to_string(env.data.join("audit/audit.jsonl")).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |user: &str, action: &str, path: &str, params: &str| {
        entries.iter().any(|e| {
            e["user"] == user
                && e["action"] == action
                && e["path"] == path
                && e["params"].as_str().unwrap().contains(params)
        })
    };
    assert!(has("manager", "view", "/p/esiti", "region=Lazio"), "{text}");
    assert!(has(
        "viewer",
        "export",
        "/export/panoramica/11.xlsx",
        "from=2025-01-01"
    ));
    assert!(has("evaluator", "api", "/api/kpi/hires", "by=region"));
    assert!(
        entries
            .iter()
            .any(|e| e["user"] == "viewer" && e["action"] == "denied" && e["status"] == 403)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.data.join("audit/audit.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Admins read it.
    let j = get_as(&s, &a.tokens["admin"], "/api/audit").await.json();
    assert!(
        j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "manager")
    );
    let html = get_as(&s, &a.tokens["admin"], "/admin/audit").await.text();
    assert!(html.contains("/export/panoramica/11.xlsx"));
}

#[tokio::test]
async fn the_anpal_report_downloads_within_scope() {
    let (env, a, s) = fixture();
    // Every role may download it; a bad year is a 400 naming it.
    for role in ["admin", "evaluator", "viewer", "manager"] {
        let r = get_as(&s, &a.tokens[role], "/report/anpal?year=2025").await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.text());
        assert_eq!(&r.body[..2], b"PK");
        assert!(
            r.header("content-disposition")
                .contains("mirato-anpal-2025.xlsx")
        );
    }
    let r = get_as(&s, &a.tokens["viewer"], "/report/anpal?year=soon").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["param"], "year");
    let r = get_as(&s, &a.tokens["viewer"], "/report/anpal").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The manager's workbook covers Lombardia only, whatever region was asked: read it back.
    let r = get_as(
        &s,
        &a.tokens["manager"],
        "/report/anpal?year=2025&region=Lazio",
    )
    .await;
    let path = env.dir.path().join("manager.xlsx");
    std::fs::write(&path, &r.body).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,openpyxl; wb=openpyxl.load_workbook(sys.argv[1], read_only=True); \
             print(json.dumps({ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, default=str))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wb: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hires = wb["4 Assunzioni"].as_array().unwrap();
    assert!(
        hires
            .iter()
            .any(|r| r[0] == "Territorio" && r[1] == "Lombardia"),
        "{hires:?}"
    );
    let text = serde_json::to_string(&wb).unwrap();
    assert!(
        !text.contains("\"RM\"") && !text.contains("\"NA\""),
        "no other province"
    );
    // MI: 6 hires, numerica, open-ended contract class: shown (not below 5), perturbed by at
    // most 3 and never below 5. Columns: each breakdown's code and Italian label, then the value.
    assert!(
        hires
            .iter()
            .any(|r| r[0] == "MI" && r[6].as_i64().is_some_and(|n| (5..=9).contains(&n))),
        "{hires:?}"
    );
}

#[tokio::test]
async fn rejected_rows_are_for_administrators_only() {
    let (env, a, s) = fixture();
    // A row refused by ingest, with its CPI.
    let bad = env.write(
        "bad.csv",
        csv_of(&[ev(
            "no_such_type",
            "x1",
            "2025-04-01",
            Some(99),
            &[("province", "RM"), ("cpi_code", "RM-01")],
        )]),
    );
    env.ingest_one(&bad);
    let panel = |html: &str, n: usize| {
        let p = &html[html.find(&format!("id=\"panel-{n}\"")).unwrap()..];
        p[..p.find("</article>").unwrap()].to_owned()
    };
    for role in ["viewer", "evaluator", "manager"] {
        let html = get_as(&s, &a.tokens[role], "/p/qualita").await.text();
        for n in 1..=3 {
            let p = panel(&html, n);
            assert!(
                p.contains("Riservato agli amministratori"),
                "{role} {n}: {p}"
            );
            assert!(!p.contains("RM-01"), "{role} {n}");
        }
        for n in 1..=3 {
            assert_eq!(
                get_as(&s, &a.tokens[role], &format!("/export/qualita/{n}.csv"))
                    .await
                    .status,
                StatusCode::FORBIDDEN,
                "{role} {n}"
            );
        }
    }
    let html = get_as(&s, &a.tokens["admin"], "/p/qualita").await.text();
    assert!(panel(&html, 3).contains("RM-01"), "{}", panel(&html, 3));
    // The rule reads in Italian on the page; the export keeps its code beside the words.
    let rules = panel(&html, 2);
    assert!(
        rules.contains(">Tipo evento: non previsto<") && !rules.contains(">event_type.unknown<")
    );
    let csv = get_as(&s, &a.tokens["admin"], "/export/qualita/2.csv")
        .await
        .text();
    assert!(
        csv.contains("event_type.unknown,Tipo evento: non previsto,1"),
        "{csv}"
    );
    assert_eq!(
        get_as(&s, &a.tokens["admin"], "/export/qualita/3.csv")
            .await
            .status,
        StatusCode::OK
    );
}
