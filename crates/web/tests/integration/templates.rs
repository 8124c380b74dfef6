//! Every template compiles, and the shared form macros (`templates/shared/forms.html`) mark a
//! field with an error the same way on every page that has a form.

use minijinja::context;

#[test]
fn every_template_compiles_and_form_errors_render_through_the_shared_macros() {
    let env = opchub_web::pages::templates();
    let names: Vec<&str> = env.templates().map(|(name, _)| name).collect();
    assert!(names.len() > 40, "templates registered: {names:?}");
    for name in &names {
        assert!(env.get_template(name).is_ok(), "{name} compiles");
    }
    let forms = env.get_template("forms.html").unwrap();
    let captured = forms.render_captured(context! {}).unwrap();
    let state = captured.state();
    let fe = context! { version => "版本已存在" };
    let err = state.call_macro("field_error", &[fe.clone(), "version".into()]).unwrap();
    assert_eq!(err, r#"<p class="field-error" id="error-version">版本已存在</p>"#);
    let ok = state.call_macro("field_error", &[fe.clone(), "effective_from".into()]).unwrap();
    assert_eq!(ok, "");
    let invalid = state.call_macro("invalid", &[fe.clone(), "version".into()]).unwrap();
    assert_eq!(invalid, r#" aria-invalid="true" aria-describedby="error-version""#);
    let fields = state
        .call_macro(
            "price_version_fields",
            &[
                fe,
                context! { version => "2026-05" },
                "2026-05".into(),
                "版本".into(),
                "生效时间".into(),
                "提示".into(),
            ],
        )
        .unwrap();
    assert!(fields.contains(r#"value="2026-05" aria-invalid="true""#), "{fields}");
    assert!(fields.contains("生效时间") && fields.contains(r#"id="error-version""#), "{fields}");
}
