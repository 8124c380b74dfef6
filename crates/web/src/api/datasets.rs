//! Datasets (M2.2, issue 4 item 6): community operators publish datasets priced by a data item
//! of their price table (per GB or per whole dataset); OPCs download them through the platform
//! with their API key (the gateway's `Authorization: Bearer opk_…`). Downloads are streamed
//! from the file stored by SHA-256, support one HTTP range (`206` with `Content-Range`, `416`
//! when unsatisfiable) and are metered into the usage ledger as one `data.byte` event per
//! response by the bytes actually handed to the connection — a client that goes away halfway
//! pays for what it was sent. Pricing is `opchub_gateway::items`: per GB by bytes, rounded half
//! up to the fen; per dataset by bytes towards the dataset's price, once per OPC and dataset
//! version (further downloads of that version cost nothing).

use crate::auth::{Caller, Principal, Via};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_gateway::items;
use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::datasets::{Dataset, Download, NewDataset};
use opchub_store::gateway::ItemPriceVersion;
use opchub_store::ledger::{Item, SideWrite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa::{IntoParams, ToSchema};

/// Largest dataset file accepted through the API (streamed to disk, never held in memory).
pub const MAX_DATASET_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Bytes read from disk and handed to the connection at a time.
const CHUNK: usize = 64 * 1024;
/// The ledger source of platform-metered downloads.
pub const SOURCE: &str = "datasets";

#[derive(Serialize, ToSchema)]
pub struct DatasetView {
    #[serde(flatten)]
    pub dataset: Dataset,
    /// The data item's price in force now (none: not downloadable until priced).
    pub price: Option<ItemPriceVersion>,
    /// Relative download URL (GET with `Authorization: Bearer opk_…`).
    pub download_path: String,
}

pub async fn view(s: &AppState, d: Dataset) -> ApiResult<DatasetView> {
    let price = s.store.item_price_at(&d.operator_user_id, &d.item, opchub_store::now_ms()).await?;
    Ok(DatasetView {
        download_path: format!("/api/v1/datasets/{}/download", d.id),
        dataset: d,
        price,
    })
}

#[derive(Deserialize, ToSchema)]
pub struct NewDatasetRequest {
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub description: Option<String>,
    /// A data item (unit `gb` or `dataset`) of the caller's price table.
    pub item: Option<String>,
}

/// Validates and registers a dataset of the calling operator, without a file yet (JSON API and
/// pages).
pub async fn create_dataset_for(s: &AppState, p: &Principal, r: &NewDatasetRequest) -> ApiResult<Dataset> {
    let mut c = Checker::new();
    let name_zh = c.text("name_zh", r.name_zh.as_deref(), 1, 100);
    let name_en = r.name_en.as_deref().unwrap_or("").trim().to_string();
    if name_en.chars().count() > 100 || name_en.chars().any(char::is_control) {
        c.errors.insert("name_en".into(), "too_long".into());
    }
    let description = r.description.as_deref().unwrap_or("").trim().to_string();
    if description.chars().count() > 2000 {
        c.errors.insert("description".into(), "too_long".into());
    }
    let item = c.text("item", r.item.as_deref(), 1, 64);
    if c.ok() {
        // The item must be one of the caller's data items (any version: it may take effect later).
        let table = s.store.item_prices_of(&p.user.id).await?;
        match table.iter().find(|v| v.price.item == item) {
            None => {
                c.errors.insert("item".into(), "unknown_price_item".into());
            }
            Some(v) if items::kind_of(&v.price.unit) != Some("data.byte") => {
                c.errors.insert("item".into(), "item_kind_mismatch".into());
            }
            Some(_) => {}
        }
    }
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store
        .create_dataset(
            &p.actor(),
            NewDataset {
                operator_user_id: &p.user.id,
                item: &item,
                name_zh: &name_zh,
                name_en: &name_en,
                description: &description,
            },
        )
        .await?)
}

#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets", request_body = NewDatasetRequest,
    responses((status = 201, body = Dataset), (status = 422)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    super::ApiJson(r): super::ApiJson<NewDatasetRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let d = create_dataset_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// Community operators see their own datasets in every state; everyone else the published ones.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", responses((status = 200, body = [DatasetView])))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<DatasetView>>> {
    let p = caller.require()?;
    Ok(Json(list_for(&s, p).await?))
}

pub async fn list_for(s: &AppState, p: &Principal) -> ApiResult<Vec<DatasetView>> {
    let mine = (p.role() == Role::CommunityOperator).then_some(p.user.id.as_str());
    let mut out = vec![];
    for d in s.store.datasets(mine).await? {
        out.push(view(s, d).await?);
    }
    Ok(out)
}

/// The caller's own dataset (another operator's is not found).
async fn own_dataset(s: &AppState, p: &Principal, id: &str) -> ApiResult<Dataset> {
    let d = s.store.dataset(id).await?;
    if d.operator_user_id != p.user.id {
        return Err(ApiError::not_found());
    }
    Ok(d)
}

#[derive(Deserialize, IntoParams)]
pub struct FileQuery {
    /// The file name offered to downloaders (default `<id>.bin`).
    pub file_name: Option<String>,
}

fn file_name_ok(v: &str) -> bool {
    !v.is_empty() && v.chars().count() <= 200 && !v.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
}

/// Streams `body` into the dataset store: written beside, hashed on the way, renamed to its
/// SHA-256. Returns (sha256, size).
pub async fn store_file(s: &AppState, body: Body) -> ApiResult<(String, i64)> {
    let tmp = s.datasets.temp_path().await?;
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "dataset write failed");
        ApiError::internal()
    };
    let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    let res: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("body_read_failed"))?;
            size += chunk.len() as u64;
            if size > MAX_DATASET_BYTES {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
            }
            hasher.update(&chunk);
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        f.sync_all().await.map_err(io)?;
        Ok(())
    }
    .await;
    drop(f);
    if let Err(e) = res {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let sha = hex::encode(hasher.finalize());
    s.datasets.adopt(&tmp, &sha).await?;
    Ok((sha, size as i64))
}

/// Stores a file already in memory (page forms, the demo) by its SHA-256. Returns (sha256, size).
pub async fn store_bytes(s: &AppState, bytes: &[u8]) -> ApiResult<(String, i64)> {
    let sha = hex::encode(Sha256::digest(bytes));
    s.datasets.put(&sha, bytes).await?;
    Ok((sha, bytes.len() as i64))
}

/// Uploads (or replaces) the dataset's file as the raw request body: the next version,
/// published. Downloads of the previous version stay as they were metered.
#[utoipa::path(put, path = "/api/v1/datasets/{id}/file", tag = "datasets", params(("id" = String, Path), FileQuery),
    request_body(content = inline(crate::api::ledger::BinaryFile), content_type = "application/octet-stream"),
    responses((status = 200, body = Dataset), (status = 404), (status = 413), (status = 422)))]
pub async fn upload(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Dataset>> {
    let p = caller.require()?;
    let d = own_dataset(&s, p, &id).await?;
    let file_name = q.file_name.unwrap_or_else(|| format!("{}.bin", d.id));
    if !file_name_ok(&file_name) {
        return Err(ApiError::field("file_name", "file_name"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v.len() <= 100 && !v.starts_with("multipart/"))
        .unwrap_or_else(|| "application/octet-stream".into());
    let (sha, size) = store_file(&s, body).await?;
    if size == 0 {
        return Err(ApiError::field("file", "file_empty"));
    }
    Ok(Json(
        s.store
            .set_dataset_file(&p.actor(), &id, &file_name, &content_type, size, &sha)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct DatasetStatus {
    /// `published` or `withdrawn`.
    pub status: String,
}

#[utoipa::path(put, path = "/api/v1/datasets/{id}/status", tag = "datasets", params(("id" = String, Path)), request_body = DatasetStatus,
    responses((status = 200, body = Dataset), (status = 404), (status = 409), (status = 422)))]
pub async fn set_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::ApiJson(r): super::ApiJson<DatasetStatus>,
) -> ApiResult<Json<Dataset>> {
    let p = caller.require()?;
    own_dataset(&s, p, &id).await?;
    Ok(Json(s.store.set_dataset_status(&p.actor(), &id, r.status.trim()).await?))
}

// ---------------------------------------------------------------- downloads

/// What a `Range` header asks of a file of `size` bytes (one range only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range: the whole file (200).
    Full,
    /// One satisfiable range: first byte and length (206).
    Part(u64, u64),
    /// Syntactically wrong, several ranges, or beyond the end (416).
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b | a- | -n`. Only one range is served: a request for several is
/// answered 416 rather than with the whole file (which would be metered and charged in full).
/// Another range unit is ignored (the whole file), as RFC 9110 allows.
pub fn parse_range(v: Option<&str>, size: u64) -> RangeAsk {
    let Some(v) = v.map(str::trim) else { return RangeAsk::Full };
    let Some(spec) = v.strip_prefix("bytes=") else {
        return RangeAsk::Full;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return RangeAsk::Unsatisfiable;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |t: &str| -> Option<u64> {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        // -n: the last n bytes
        (true, false) => match num(b) {
            Some(n) if n > 0 && size > 0 => {
                let n = n.min(size);
                RangeAsk::Part(size - n, n)
            }
            _ => RangeAsk::Unsatisfiable,
        },
        // a-
        (false, true) => match num(a) {
            Some(a) if a < size => RangeAsk::Part(a, size - a),
            _ => RangeAsk::Unsatisfiable,
        },
        // a-b
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b && a < size => RangeAsk::Part(a, b.min(size - 1) - a + 1),
            _ => RangeAsk::Unsatisfiable,
        },
        (true, true) => RangeAsk::Unsatisfiable,
    }
}

/// Everything the meter needs once the response ended.
struct MeterCtx {
    s: AppState,
    download_id: String,
    dataset: Dataset,
    price: ItemPriceVersion,
    key_id: String,
    subject: String,
    month: String,
    held: i64,
    range_start: i64,
    range_len: i64,
    started: i64,
}

/// Counts the bytes handed to the connection; when the body is dropped — finished, or the client
/// went away — the download is metered (once).
struct Meter {
    ctx: Option<MeterCtx>,
    sent: i64,
}

impl Drop for Meter {
    fn drop(&mut self) {
        let Some(ctx) = self.ctx.take() else { return };
        let sent = self.sent;
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(meter(ctx, sent));
            }
            Err(_) => tracing::error!(download = %ctx.download_id, sent, "download not metered: no runtime"),
        }
    }
}

/// Amounts of `sent` bytes of `d` under `price` for `subject`; per-dataset items advance the
/// OPC's billed bytes of this version (compare-and-set, retried). Returns (list, charged).
async fn charge(s: &AppState, d: &Dataset, price: &ItemPriceVersion, subject: &str, sent: i64) -> opchub_store::Result<(i64, i64)> {
    let p = &price.price;
    if p.unit != "dataset" {
        let list = items::amount(&p.unit, sent, p.list_fen).unwrap_or(0);
        let charged = items::amount(&p.unit, sent, p.opc_fen).unwrap_or(0).min(list);
        return Ok((list, charged));
    }
    for _ in 0..50 {
        let billed = s.store.dataset_billed(&d.id, &d.sha256, subject).await?;
        let Some((counted, charged)) = items::dataset_charge(d.size_bytes, billed, sent, p.opc_fen) else {
            return Ok((0, 0));
        };
        let list = items::dataset_charge(d.size_bytes, billed, sent, p.list_fen)
            .map(|x| x.1)
            .unwrap_or(0);
        if counted == 0 {
            return Ok((0, 0));
        }
        if s.store
            .advance_dataset_billed(&d.id, &d.sha256, subject, billed, billed + counted)
            .await?
        {
            return Ok((list, charged.min(list)));
        }
    }
    Err(opchub_store::StoreError::Conflict("dataset_billing_contended"))
}

/// The worst case a download of `len` bytes may cost (held from the key's budget before).
async fn worst_case(s: &AppState, d: &Dataset, price: &ItemPriceVersion, subject: &str, len: i64) -> ApiResult<i64> {
    let p = &price.price;
    if p.unit != "dataset" {
        return Ok(items::amount(&p.unit, len, p.opc_fen).unwrap_or(i64::MAX));
    }
    let billed = s.store.dataset_billed(&d.id, &d.sha256, subject).await?;
    Ok(items::dataset_charge(d.size_bytes, billed, len, p.opc_fen)
        .map(|x| x.1)
        .unwrap_or(i64::MAX))
}

async fn meter(ctx: MeterCtx, sent: i64) {
    let s = &ctx.s;
    let d = &ctx.dataset;
    let (list, charged) = match charge(s, d, &ctx.price, &ctx.subject, sent).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(download = %ctx.download_id, error = %e, "download charge failed");
            (0, 0)
        }
    };
    let outcome = if sent >= ctx.range_len { "complete" } else { "interrupted" };
    let mut items = vec![];
    if sent > 0 {
        let mut attributes = BTreeMap::new();
        attributes.insert("item".to_string(), ctx.price.price.item.clone());
        attributes.insert("dataset".to_string(), d.id.clone());
        attributes.insert("dataset_version".to_string(), d.version.to_string());
        attributes.insert("sha256".to_string(), d.sha256.clone());
        attributes.insert(
            "range".to_string(),
            format!("{}-{}", ctx.range_start, ctx.range_start + ctx.range_len - 1),
        );
        attributes.insert("outcome".to_string(), outcome.to_string());
        attributes.insert("key".to_string(), ctx.key_id.clone());
        let event = NewEvent {
            source: SOURCE.into(),
            source_event_id: ctx.download_id.clone(),
            kind: "data.byte".into(),
            subject: ctx.subject.clone(),
            counterparty: d.operator_user_id.clone(),
            quantity: sent,
            unit: "byte".into(),
            list_fen: list,
            charged_fen: charged,
            price_version: ctx.price.version.clone(),
            occurred_at_ms: ctx.started,
            origin: Origin::Observed,
            attributes,
            corrects_leaf_index: None,
            correction_reason: None,
            requested_by: None,
            approved_by: None,
        };
        items.push(Item::Event(event));
    }
    // The budget settles in the metering commit, as the gateway's requests do.
    let mut side = vec![];
    if ctx.held > 0 || charged > 0 {
        side.push(SideWrite::SettleBudget {
            api_key_id: ctx.key_id.clone(),
            month: ctx.month.clone(),
            held: ctx.held,
            actual: charged,
        });
    }
    match s.ledger.as_ref() {
        Some(w) if !items.is_empty() || !side.is_empty() => {
            if let Err(e) = w.append_with(items, side).await {
                tracing::error!(download = %ctx.download_id, error = %e, "download metering failed");
            }
        }
        Some(_) => {}
        None => tracing::error!(download = %ctx.download_id, "download not metered: no ledger"),
    }
    let row = Download {
        id: ctx.download_id.clone(),
        dataset_id: d.id.clone(),
        dataset_version: d.version,
        sha256: d.sha256.clone(),
        api_key_id: ctx.key_id.clone(),
        subject: ctx.subject.clone(),
        range_start: ctx.range_start,
        range_len: ctx.range_len,
        bytes_sent: sent,
        outcome: outcome.into(),
        list_fen: list,
        charged_fen: charged,
        price_version: ctx.price.version.clone(),
        created_at: ctx.started,
    };
    if let Err(e) = s.store.record_download(&row).await {
        tracing::error!(download = %ctx.download_id, error = %e, "recording the download failed");
    }
}

fn range_error(size: i64, code: &str) -> Response {
    let mut r = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, code).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// Streams a published dataset to an OPC holding an API key, metered by the bytes sent.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/download", tag = "datasets", params(("id" = String, Path)),
    responses((status = 200, description = "The whole file.", body = inline(crate::api::ledger::BinaryFile), content_type = "application/octet-stream"),
        (status = 206, description = "One range (`Content-Range`).", body = inline(crate::api::ledger::BinaryFile), content_type = "application/octet-stream"),
        (status = 401), (status = 404), (status = 409), (status = 416), (status = 429)))]
pub async fn download(State(s): State<AppState>, caller: Caller, Path(id): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let p = caller.require()?;
    let Via::ApiKey { key_id, .. } = &p.via else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "api_key_required").with_detail("Authorization: Bearer opk_…"));
    };
    let d = s.store.dataset(&id).await?;
    if d.status != "published" {
        return Err(ApiError::not_found());
    }
    let started = opchub_store::now_ms();
    let price = s
        .store
        .item_price_at(&d.operator_user_id, &d.item, started)
        .await?
        .ok_or_else(|| ApiError::conflict("price_not_effective"))?;
    let size = u64::try_from(d.size_bytes).unwrap_or(0);
    let (status, start, len) = match parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), size) {
        RangeAsk::Full => (StatusCode::OK, 0u64, size),
        RangeAsk::Part(a, n) => (StatusCode::PARTIAL_CONTENT, a, n),
        RangeAsk::Unsatisfiable => return Ok(range_error(d.size_bytes, "range_not_satisfiable")),
    };
    // The file must be the one published: same size (the content hash is checked at upload;
    // rehashing gigabytes per download is not done).
    let path = s.datasets.path(&d.sha256);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return Err(ApiError::new(StatusCode::GONE, "dataset_missing")),
    };
    match file.metadata().await {
        Ok(m) if m.len() == size => {}
        _ => return Err(ApiError::conflict("dataset_changed")),
    }
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return Err(ApiError::internal());
    }
    let subject = match s.store.opc_of_founder(&p.user.id).await? {
        Some(o) => o.id,
        None => p.user.id.clone(),
    };
    // Budget (M2.2 key limits): hold the worst case before sending, settle to the bytes sent.
    let month = opchub_ledger::event::period_of(started);
    let limits = s.store.key_limits(key_id).await?;
    let mut held = 0;
    if limits.monthly_budget_fen > 0 {
        let worst = worst_case(&s, &d, &price, &subject, len as i64).await?;
        if !s.store.hold_budget(key_id, &month, limits.monthly_budget_fen, worst).await? {
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "budget_exceeded"));
        }
        held = worst;
    }
    let meter = Meter {
        ctx: Some(MeterCtx {
            s: s.clone(),
            download_id: format!("dl_{}", uuid::Uuid::now_v7().simple()),
            dataset: d.clone(),
            price,
            key_id: key_id.clone(),
            subject,
            month,
            held,
            range_start: start as i64,
            range_len: len as i64,
            started,
        }),
        sent: 0,
    };
    let stream = futures_util::stream::unfold((file, len, meter), |(mut file, remaining, mut meter)| async move {
        if remaining == 0 {
            return None;
        }
        let want = remaining.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                meter.sent += n as i64;
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                    (file, remaining - n as u64, meter),
                ))
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let ct = HeaderValue::from_str(&d.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", d.sha256)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        d.file_name.replace(|c: char| !c.is_ascii_graphic() && c != ' ', "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, start + len - 1, size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[derive(Deserialize, IntoParams)]
pub struct DownloadsQuery {
    /// At most this many, newest first (default 100, at most 1,000).
    pub limit: Option<i64>,
}

/// Downloads of a dataset: the operator sees all of its own; an OPC founder its own.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/downloads", tag = "datasets", params(("id" = String, Path), DownloadsQuery),
    responses((status = 200, body = [Download]), (status = 404)))]
pub async fn downloads(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DownloadsQuery>,
) -> ApiResult<Json<Vec<Download>>> {
    let p = caller.require()?;
    let d = s.store.dataset(&id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let subject = match p.role() {
        Role::CommunityOperator if d.operator_user_id == p.user.id => None,
        Role::OpcFounder => Some(match s.store.opc_of_founder(&p.user.id).await? {
            Some(o) => o.id,
            None => p.user.id.clone(),
        }),
        Role::PlatformOperator | Role::Committee | Role::Auditor => None,
        _ => return Err(ApiError::not_found()),
    };
    Ok(Json(s.store.downloads(&id, subject.as_deref(), limit).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part(0, 10));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Part(90, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 100), Part(10, 90));
        assert_eq!(parse_range(Some("bytes=-30"), 100), Part(70, 30));
        assert_eq!(parse_range(Some("bytes=-300"), 100), Part(0, 100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=100-120"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=x-1"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("items=0-5"), 100), Full);
    }
}
