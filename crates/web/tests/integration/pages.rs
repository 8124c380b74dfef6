//! Pages as a visitor sees them: Chinese by default, live counts, the wizard through plain
//! forms (no JavaScript), CSRF protection, the English switch, and role home pages.

use crate::common::*;
use opchub_domain::{Role, Zone};
use reqwest::StatusCode;

#[tokio::test]
async fn home_is_chinese_with_live_counts() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 3).await;
    let c = app.client();
    let home = c.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("lang=\"zh-CN\""));
    assert!(home.text.contains("工位"), "home mentions workstations in Chinese");
    assert!(home.text.contains("OPC+智能体开发"), "the theme packages come from the catalog");
    assert!(home.text.contains(r#"id="count-free""#));
    let count = |html: &str, id: &str| -> i64 {
        let start = html.find(&format!("id=\"{id}\"")).unwrap();
        let rest = &html[start..];
        let rest = &rest[rest.find('>').unwrap() + 1..];
        rest[..rest.find('<').unwrap()].trim().replace(',', "").parse().unwrap()
    };
    assert_eq!(count(&home.text, "count-free"), 3);
    assert_eq!(count(&home.text, "count-opcs"), 0);
    c.post_json("/api/v1/registrations", registration("homeopc", &uscc(40), "hexi_area", &ws[0]))
        .await;
    let home = c.get("/").await.text;
    assert_eq!((count(&home, "count-opcs"), count(&home, "count-free")), (1, 2));
    // Signed-in staff are not invited to register an OPC (it would refuse them).
    assert!(home.contains("href=\"/register\""));
    let (staff, _) = app.user("homecmte", Role::Committee).await;
    let staff_home = staff.get("/").await.text;
    assert!(!staff_home.contains("href=\"/register\""), "{staff_home}");

    // English on request, remembered by cookie.
    let r = c.get("/lang/en").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let en = c.get("/").await.text;
    assert!(en.contains("lang=\"en\""));
    assert!(!en.contains("工位"), "no Chinese UI text left on the English page");
}

#[tokio::test]
async fn the_wizard_works_with_plain_forms_and_refuses_forms_without_csrf() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::IbiIncubator, 2).await;
    let c = app.client();
    let step1 = c.get("/register").await;
    assert!(step1.text.contains("name=\"zone\""));
    let outside = c.get("/register?zone=outside").await;
    assert!(outside.text.contains("G2"), "a zone outside G2 is explained");
    let step2 = c.get("/register?zone=ibi_incubator").await;
    assert!(step2.text.contains(&ws[0]), "free workstations are offered");

    let form = [
        ("zone", "ibi_incubator"),
        ("username", "formopc"),
        ("password", PASSWORD),
        ("founder_name", "孙悦"),
        ("company_name", "北京表单数字人科技有限公司"),
        ("uscc", &uscc(41)),
        ("tax_registered", "1"),
        ("theme_package", "opc_digital_human"),
        ("workstation_id", &ws[1]),
    ];
    // Without the CSRF token: refused, nothing written.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = raw.post(format!("{}/register", app.base)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(app.store.user_by_username("formopc").await.unwrap().is_none());

    // With it: registered, signed in, redirected to my company.
    let r = c.post_form("/register", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/my/company");
    let page = c.get("/my/company").await;
    assert!(page.text.contains("北京表单数字人科技有限公司"));
    assert!(page.text.contains("A-002"));
    assert!(page.text.contains("OPC+数字人创作"));

    // Bad input re-renders the form with the message next to the field and keeps the values.
    let c2 = app.client();
    c2.get("/register?zone=ibi_incubator").await;
    let mut bad: Vec<(&str, &str)> = form.to_vec();
    bad[1] = ("username", "second");
    bad[5] = ("uscc", "91110106MA01ABCDE0");
    let r = c2.post_form("/register", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("id=\"error-uscc\""));
    assert!(r.text.contains("北京表单数字人科技有限公司"), "typed values are kept");
}

#[tokio::test]
async fn roles_land_on_their_pages_and_others_are_refused() {
    let app = TestApp::start().await;
    let (spec, _) = app.user("spec1", Role::Specialist).await;
    assert_eq!(spec.get("/specialist/queue").await.status, StatusCode::OK);
    assert_eq!(spec.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    let anon = app.client();
    let r = anon.get("/my/company").await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fmy%2Fcompany".to_string())
    );
    anon.get("/login").await;
    let bad = anon
        .post_form("/login", &[("username", "spec1"), ("password", "wrong-password")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("id=\"login-error\""));
    assert!(anon.cookie("opchub_session").is_none());

    let (platform, _) = app.user("plat1", Role::PlatformOperator).await;
    let r = platform
        .post_form(
            "/admin/users",
            &[
                ("username", "newauditor"),
                ("password", PASSWORD),
                ("display_name", "审计员"),
                ("role", "auditor"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(platform.get("/admin/users").await.text.contains("newauditor"));

    // Logout ends the session on the server, not only in the browser.
    let session = platform.cookie("opchub_session").unwrap();
    platform.post_form("/logout", &[]).await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/admin/users", app.base))
        .header("cookie", format!("opchub_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn session_cookies_are_httponly_samesite_and_secure() {
    let app = TestApp::start().await;
    app.user("cookieuser", Role::Auditor).await;
    let c = app.client();
    c.get("/login").await;
    let r = c.post_form("/login", &[("username", "cookieuser"), ("password", PASSWORD)]).await;
    let cookies: Vec<String> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies.iter().find(|c| c.starts_with("opchub_session=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("opchub_csrf=") && c.contains("SameSite=Strict")));
}

#[tokio::test]
async fn service_window_ticket_pages() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let founder = app.client();
    founder
        .post_json("/api/v1/registrations", registration("ticketopc", &uscc(60), "hexi_area", &ws[0]))
        .await;
    founder.login("ticketopc", PASSWORD).await;
    let r = founder
        .post_form("/my/tickets", &[("subject", "数据授权咨询"), ("body", "训练数据如何取得授权？")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let url = r.location();
    let page = founder.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("训练数据如何取得授权？"));
    let (spec, _) = app.user("specwin", Role::Specialist).await;
    assert!(spec.get("/specialist/queue").await.text.contains("数据授权咨询"));
    let r = spec
        .post_form(&format!("{url}/reply"), &[("body", "请参考数据授权指引第三条。")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(founder.get(&url).await.text.contains("请参考数据授权指引第三条。"));
}
