//! Compute and data pages (M2.2): `/gateway/datasets`. Community operators see their compute
//! and data price items in force, publish a new version of them, and publish datasets (a
//! form with the file; larger files through `PUT /api/v1/datasets/{id}/file`). OPC founders
//! see the published datasets with their prices and a copy-paste download command. Validation
//! is the application layer's, shared with the JSON API (`opchub_app::gateway::create_prices_for`,
//! `opchub_app::datasets::*`).

use super::gateway::{base_url, effective_from};
use super::{field_messages, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, upload, AppState};
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::datasets::{list_for, publish_with_file_for, NewDatasetRequest};
use opchub_app::gateway::{create_prices_for, NewPriceTable};
use opchub_domain::Role;
use opchub_store::gateway::ItemPrice;
use serde::Deserialize;

/// Largest body of the dataset form (the file travels in it; larger files go through the API,
/// which streams them to disk).
pub const PAGE_DATASET_BODY: usize = 64 * 1024 * 1024;

/// Item lines: `item unit list_fen opc_fen name_zh [name_en …]` separated by spaces or tabs
/// (the English name is the rest of the line); blank lines and `#` comments are skipped. A
/// line that does not fit is reported by its 1-based number.
pub fn parse_item_lines(text: &str) -> Result<Vec<ItemPrice>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let num = |v: &str| v.replace(',', "").parse::<i64>().ok();
        match parts.as_slice() {
            [item, unit, list, opc, name_zh, rest @ ..] => match (num(list), num(opc)) {
                (Some(list_fen), Some(opc_fen)) => out.push(ItemPrice {
                    item: (*item).to_string(),
                    unit: (*unit).to_string(),
                    name_zh: (*name_zh).to_string(),
                    name_en: rest.join(" "),
                    list_fen,
                    opc_fen,
                }),
                _ => return Err(i + 1),
            },
            _ => return Err(i + 1),
        }
    }
    Ok(out)
}

/// The copy-paste download command (curl resumes with a range request: `-C -`). The output
/// name keeps only characters a shell leaves alone.
pub fn download_command(origin: &str, path: &str, file_name: &str) -> String {
    let file_name: String = file_name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("curl -fL -C - -H \"Authorization: Bearer opk_YOUR_KEY\" -o '{file_name}' {origin}{path}")
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

fn done_key(v: Option<&str>) -> Option<&'static str> {
    match v? {
        "items" => Some("integrity.done_prices_submitted"),
        "dataset" => Some("datasets.done_dataset"),
        _ => None,
    }
}

async fn page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    headers: &HeaderMap,
    status: StatusCode,
    errors: Value,
    form: Value,
    done: Option<&str>,
) -> Response {
    let lang = i18n::current_lang();
    let operator = p.role() == Role::CommunityOperator;
    let data = async {
        let datasets = list_for(s, p).await?;
        let items = if operator {
            opchub_app::gateway::items_in_force(s, p).await?
        } else {
            vec![]
        };
        Ok::<_, ApiError>((datasets, items))
    }
    .await;
    let (datasets, items) = match data {
        Ok(d) => d,
        Err(e) => return page_error(s, Some(p), e),
    };
    // The API origin as the caller reached this server (the gateway's base URL without `/v1`).
    let base = base_url(headers);
    let origin = base.strip_suffix("/v1").unwrap_or(&base).to_string();
    let rows: Vec<Value> = datasets
        .iter()
        .map(|v| {
            let name = if lang == "en" && !v.dataset.name_en.is_empty() {
                &v.dataset.name_en
            } else {
                &v.dataset.name_zh
            };
            context! {
                d => v.dataset, price => v.price, name => name,
                command => download_command(&origin, &v.download_path, &v.dataset.file_name),
            }
        })
        .collect();
    let item_rows: Vec<Value> = items
        .iter()
        .map(|v| {
            let name = if lang == "en" && !v.price.name_en.is_empty() {
                &v.price.name_en
            } else {
                &v.price.name_zh
            };
            context! { v => v, name => name }
        })
        .collect();
    render(
        s,
        Some(p),
        csrf,
        "datasets.html",
        status,
        context! {
            operator => operator, datasets => rows, items => item_rows,
            errors => errors, form => form, done => done_key(done).map(|k| i18n::text(&lang, k)),
        },
    )
}

/// `GET /gateway/datasets`: operators manage items and datasets; OPC founders download.
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    page(
        &s,
        p,
        &csrf.0,
        &headers,
        StatusCode::OK,
        Value::from(()),
        Value::from(()),
        q.done.as_deref(),
    )
    .await
}

#[derive(Deserialize)]
pub struct ItemsForm {
    pub version: Option<String>,
    pub effective_from: Option<String>,
    pub items: Option<String>,
}

fn errors_ctx(e: &ApiError, form: &str) -> Value {
    let (message, fields) = field_messages(e);
    context! { message => message, fields => fields, form => form }
}

/// `POST /gateway/items` (community operators): a price-table version of compute and data items.
pub async fn create_items(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Form(f): Form<ItemsForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let (items, bad_line) = match parse_item_lines(f.items.as_deref().unwrap_or("")) {
        Ok(v) => (v, None),
        Err(n) => (vec![], Some(n)),
    };
    let req = NewPriceTable {
        version: f.version.as_deref().map(|v| v.trim().to_string()),
        effective_from: effective_from(f.effective_from.as_deref()),
        prices: vec![],
        items,
    };
    let res = if bad_line.is_some() || req.items.is_empty() {
        Err(ApiError::field("items", "invalid_items"))
    } else {
        create_prices_for(&s, &s, p, &req).await.map_err(ApiError::from)
    };
    match res {
        Ok(_) => Redirect::to("/gateway/datasets?done=items").into_response(),
        Err(mut e) => {
            if let Some(n) = bad_line {
                let line = i18n::text(&i18n::current_lang(), "gateway.price_line").replace("{n}", &n.to_string());
                e.field_details.insert("items".into(), line);
            }
            let form = context! { version => f.version, effective_from => f.effective_from, items => f.items };
            page(&s, p, &csrf.0, &headers, e.status, errors_ctx(&e, "items"), form, None).await
        }
    }
}

#[derive(Default)]
struct DatasetForm {
    name_zh: Option<String>,
    name_en: Option<String>,
    description: Option<String>,
    item: Option<String>,
}

/// `POST /gateway/datasets` (community operators, `multipart/form-data`): a dataset with its file.
pub async fn create_dataset(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, req: Request) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let headers = req.headers().clone();
    let mut f = DatasetForm::default();
    let res = async {
        let boundary = upload::boundary(req.headers()).ok_or_else(|| ApiError::field("file", "file_empty"))?;
        let bytes = axum::body::to_bytes(req.into_body(), PAGE_DATASET_BODY)
            .await
            .map_err(|_| ApiError::from(crate::error::HttpError::BodyTooLarge))?;
        let parts = upload::parts(bytes, &boundary)
            .await
            .ok_or_else(|| ApiError::bad_request("invalid_body"))?;
        let mut file = None;
        for part in parts {
            let slot = match part.name.as_str() {
                "file" => {
                    let name = part.file_name.as_deref().unwrap_or_default();
                    let name = name.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
                    file = Some((name, part.content_type.clone(), part.bytes));
                    continue;
                }
                "name_zh" => &mut f.name_zh,
                "name_en" => &mut f.name_en,
                "description" => &mut f.description,
                "item" => &mut f.item,
                _ => continue,
            };
            *slot = Some(part.text());
        }
        let Some((name, content_type, bytes)) = file.filter(|(_, _, b)| !b.is_empty()) else {
            return Err(ApiError::field("file", "file_empty"));
        };
        let file_name = if name.is_empty() { "dataset.bin".to_string() } else { name };
        if file_name.chars().count() > 200 || file_name.chars().any(|c| c.is_control() || c == '"') {
            return Err(ApiError::field("file", "file_name"));
        }
        let req = NewDatasetRequest {
            name_zh: f.name_zh.clone(),
            name_en: f.name_en.clone(),
            description: f.description.clone(),
            item: f.item.clone(),
        };
        publish_with_file_for(&s, p, &req, &file_name, content_type, &bytes).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to("/gateway/datasets?done=dataset").into_response(),
        Err(e) => {
            let form = context! { name_zh => f.name_zh, name_en => f.name_en, description => f.description, item => f.item };
            page(&s, p, &csrf.0, &headers, e.status, errors_ctx(&e, "dataset"), form, None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_lines() {
        let v = parse_item_lines(
            "# item unit list opc zh en\n\na100 gpu_hour 1,200 800 A100算力 A100 GPU hour\nlaw dataset 5000 3000 法律语料\n",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].item.as_str(), v[0].list_fen, v[0].opc_fen), ("a100", 1200, 800));
        assert_eq!(v[0].name_en, "A100 GPU hour");
        assert_eq!(
            (v[1].unit.as_str(), v[1].name_zh.as_str(), v[1].name_en.as_str()),
            ("dataset", "法律语料", "")
        );
        assert_eq!(parse_item_lines("ok gb 1 1 名\nbad gb x 1 名"), Err(2));
        assert_eq!(parse_item_lines("short gb 1 1"), Err(1));
        assert!(
            download_command("http://h", "/api/v1/datasets/x/download", "a.csv").contains("-C - -H \"Authorization: Bearer opk_YOUR_KEY\"")
        );
    }
}
