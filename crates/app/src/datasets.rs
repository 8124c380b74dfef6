//! Datasets (M2.2, issue 4 item 6): community operators publish datasets priced by a data item
//! of their price table (per GB or per whole dataset); OPCs download them through the platform
//! with their API key (the gateway's `Authorization: Bearer opk_…`). Downloads are streamed
//! from the file stored by SHA-256, support one byte range ([`parse_range`]) and are metered
//! into the usage ledger as one `data.byte` event per response
//! ([`opchub_ledger::metering::data_download`]) by the bytes actually handed to the
//! connection — a client that goes away halfway pays for what it was sent. Pricing is
//! `opchub_ledger::items`: per GB by bytes, rounded half up to the fen; per dataset by bytes
//! towards the dataset's price, once per OPC and dataset version (further downloads of that
//! version cost nothing).
//!
//! The web layer keeps only the HTTP: it turns the request body into a byte stream for
//! [`store_stream`], the `Range` header into [`prepare_download`]'s argument, and the
//! [`PreparedDownload`] into a response with its `Content-Range` and other headers.

use crate::{App, AppError, AppResult, Principal, Via};
use futures_util::{Stream, StreamExt};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::items;
use opchub_ledger::metering;
use opchub_store::datasets::{Dataset, Download, NewDataset};
use opchub_store::gateway::ItemPriceVersion;
use opchub_store::ledger::{Item, SideWrite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

crate::module_errors! {
    /// What publishing and downloading datasets refuses.
    pub enum DatasetError {
        /// The upload could not be read.
        BodyReadFailed => (BadRequest, "body_read_failed"),
        /// The upload is larger than allowed.
        BodyTooLarge => (TooLarge, "body_too_large"),
        /// Downloads are metered: they need an API key.
        ApiKeyRequired => (Unauthenticated, "api_key_required"),
        /// No price is in force for the dataset now.
        PriceNotEffective => (Conflict, "price_not_effective"),
        /// The dataset's file is no longer in the file store.
        Missing => (Gone, "dataset_missing"),
        /// The dataset's file changed size since it was published.
        Changed => (Conflict, "dataset_changed"),
        /// The key's monthly budget does not cover the download.
        BudgetExceeded => (RateLimited, "budget_exceeded"),
    }
}

/// Largest dataset file accepted through the API (streamed to disk, never held in memory).
pub const MAX_DATASET_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// The ledger source of platform-metered downloads.
pub const SOURCE: &str = metering::DATASETS_SOURCE;

#[derive(Serialize, ToSchema)]
pub struct DatasetView {
    #[serde(flatten)]
    pub dataset: Dataset,
    /// The data item's price in force now (none: not downloadable until priced).
    pub price: Option<ItemPriceVersion>,
    /// Relative download URL (GET with `Authorization: Bearer opk_…`).
    pub download_path: String,
}

pub async fn view(s: &App, d: Dataset) -> AppResult<DatasetView> {
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
pub async fn create_dataset_for(s: &App, p: &Principal, r: &NewDatasetRequest) -> AppResult<Dataset> {
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
        return Err(AppError::checked(c));
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

pub async fn list_for(s: &App, p: &Principal) -> AppResult<Vec<DatasetView>> {
    let mine = (p.role() == Role::CommunityOperator).then_some(p.user.id.as_str());
    let mut out = vec![];
    for d in s.store.datasets(mine).await? {
        out.push(view(s, d).await?);
    }
    Ok(out)
}

/// The caller's own dataset (another operator's is not found).
pub async fn own_dataset(s: &App, p: &Principal, id: &str) -> AppResult<Dataset> {
    let d = s.store.dataset(id).await?;
    if d.operator_user_id != p.user.id {
        return Err(AppError::not_found());
    }
    Ok(d)
}

pub fn file_name_ok(v: &str) -> bool {
    !v.is_empty() && v.chars().count() <= 200 && !v.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
}

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
    s: App,
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
async fn charge(s: &App, d: &Dataset, price: &ItemPriceVersion, subject: &str, sent: i64) -> opchub_store::Result<(i64, i64)> {
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
async fn worst_case(s: &App, d: &Dataset, price: &ItemPriceVersion, subject: &str, len: i64) -> AppResult<i64> {
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
    // A per-GB item is kept exact to a millionth of a fen (issue 17 item 6): a small range
    // worth less than a fen is not rounded away download by download.
    let exact = |price: i64, fen: i64| {
        items::exact_amount(&ctx.price.price.unit, sent, price)
            .filter(|x| x.fen == fen)
            .map_or(0, |x| x.sub_micro)
    };
    let (list_sub, charged_sub) = (exact(ctx.price.price.list_fen, list), exact(ctx.price.price.opc_fen, charged));
    let outcome = if sent >= ctx.range_len { "complete" } else { "interrupted" };
    let mut items = vec![];
    if sent > 0 {
        items.push(Item::Event(metering::data_download(&metering::DataDownload {
            download_id: &ctx.download_id,
            subject: &ctx.subject,
            operator_user_id: &d.operator_user_id,
            item: &ctx.price.price.item,
            dataset_id: &d.id,
            dataset_version: d.version,
            sha256: &d.sha256,
            range_start: ctx.range_start,
            range_len: ctx.range_len,
            outcome,
            key_id: &ctx.key_id,
            sent,
            list_fen: list,
            charged_fen: charged,
            list_sub_micro: list_sub,
            charged_sub_micro: charged_sub,
            price_version: &ctx.price.version,
            started_ms: ctx.started,
        })));
    }
    // The budget settles in the metering commit, as the gateway's requests do.
    let mut side = vec![];
    if ctx.held > 0 || charged > 0 {
        side.push(SideWrite::SettleBudget {
            api_key_id: ctx.key_id.clone(),
            month: ctx.month.clone(),
            held: ctx.held,
            actual: charged,
            only_if_stored: None,
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

/// Streams a request body into the dataset store: written beside, hashed on the way, renamed to
/// its SHA-256. Returns (sha256, size). A body larger than [`MAX_DATASET_BYTES`] is refused
/// (`body_too_large`), one that cannot be read is `body_read_failed`.
pub async fn store_stream<S, B, E>(s: &App, mut stream: S) -> AppResult<(String, i64)>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let tmp = s.datasets.temp_path().await?;
    let io = |e: std::io::Error| AppError::internal_from("dataset write failed", e);
    let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let res: AppResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| AppError::from(DatasetError::BodyReadFailed))?;
            let chunk = chunk.as_ref();
            size += chunk.len() as u64;
            if size > MAX_DATASET_BYTES {
                return Err(DatasetError::BodyTooLarge.into());
            }
            hasher.update(chunk);
            f.write_all(chunk).await.map_err(io)?;
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
pub async fn store_bytes(s: &App, bytes: &[u8]) -> AppResult<(String, i64)> {
    let sha = hex::encode(Sha256::digest(bytes));
    s.datasets.put(&sha, bytes).await?;
    Ok((sha, bytes.len() as i64))
}

/// The content type a dataset file is offered with: the uploader's, without parameters, or
/// `application/octet-stream` (never a multipart type).
pub fn file_content_type(declared: Option<&str>) -> String {
    declared
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v.len() <= 100 && !v.starts_with("multipart/"))
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// Uploads (or replaces) the caller's dataset's file from a byte stream: the next version,
/// published. Downloads of the previous version stay as they were metered.
pub async fn upload_file_for<S, B, E>(
    s: &App,
    p: &Principal,
    id: &str,
    file_name: Option<String>,
    content_type: Option<&str>,
    body: S,
) -> AppResult<Dataset>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let d = own_dataset(s, p, id).await?;
    let file_name = file_name.unwrap_or_else(|| format!("{}.bin", d.id));
    if !file_name_ok(&file_name) {
        return Err(AppError::field("file_name", "file_name"));
    }
    let content_type = file_content_type(content_type);
    let (sha, size) = store_stream(s, body).await?;
    if size == 0 {
        return Err(AppError::field("file", "file_empty"));
    }
    Ok(s.store
        .set_dataset_file(&p.actor(), id, &file_name, &content_type, size, &sha)
        .await?)
}

/// A dataset with its file, from a form (the file in memory): registered, stored, published.
pub async fn publish_with_file_for(
    s: &App,
    p: &Principal,
    r: &NewDatasetRequest,
    file_name: &str,
    content_type: Option<String>,
    bytes: &[u8],
) -> AppResult<Dataset> {
    let d = create_dataset_for(s, p, r).await?;
    let (sha, size) = store_bytes(s, bytes).await?;
    let ct = content_type
        .filter(|c| !c.is_empty() && c.len() <= 100)
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok(s.store.set_dataset_file(&p.actor(), &d.id, file_name, &ct, size, &sha).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct DatasetStatus {
    /// `published` or `withdrawn`.
    pub status: String,
}

/// Publishes or withdraws the caller's dataset.
pub async fn set_status_for(s: &App, p: &Principal, id: &str, r: &DatasetStatus) -> AppResult<Dataset> {
    own_dataset(s, p, id).await?;
    Ok(s.store.set_dataset_status(&p.actor(), id, r.status.trim()).await?)
}

/// A download ready to stream: the file positioned at the range's first byte, and the meter
/// that books it when the stream is dropped.
pub struct Streaming {
    pub dataset: Dataset,
    /// Whether one range was asked (206) rather than the whole file (200).
    pub partial: bool,
    pub start: u64,
    pub len: u64,
    pub size: u64,
    file: crate::files::ByteStream,
    meter: Meter,
}

/// What a download request comes to.
pub enum PreparedDownload {
    /// The range asked is not satisfiable for a file of `size` bytes (416 `range_not_satisfiable`).
    Unsatisfiable {
        size: i64,
    },
    Ready(Box<Streaming>),
}

/// Prepares the download of a published dataset for an OPC holding an API key (`range` is the
/// `Range` header): checks the price in force and the stored file, holds the worst case from
/// the key's monthly budget (M2.2 key limits) and arms the meter, which settles the budget and
/// books the bytes actually sent.
pub async fn prepare_download(s: &App, p: &Principal, id: &str, range: Option<&str>) -> AppResult<PreparedDownload> {
    let Via::ApiKey { key_id, .. } = &p.via else {
        return Err(AppError::from(DatasetError::ApiKeyRequired).with_detail("Authorization: Bearer opk_…"));
    };
    let d = s.store.dataset(id).await?;
    if d.status != "published" {
        return Err(AppError::not_found());
    }
    let started = opchub_store::now_ms();
    let price = s
        .store
        .item_price_at(&d.operator_user_id, &d.item, started)
        .await?
        .ok_or_else(|| AppError::from(DatasetError::PriceNotEffective))?;
    // The discount basis counts the list price at most up to the reference (issue 18 item 3);
    // what the OPC is charged is the operator's price.
    let refs = s.store.item_references().await?;
    let price = opchub_store::gateway::capped_at_reference(
        &price,
        opchub_store::gateway::item_reference_in(&refs, &d.item, &price.price.unit, started),
    );
    let size = u64::try_from(d.size_bytes).unwrap_or(0);
    let (partial, start, len) = match parse_range(range, size) {
        RangeAsk::Full => (false, 0u64, size),
        RangeAsk::Part(a, n) => (true, a, n),
        RangeAsk::Unsatisfiable => return Ok(PreparedDownload::Unsatisfiable { size: d.size_bytes }),
    };
    // The file must be the one published: same size (the content hash is checked at upload;
    // rehashing gigabytes per download is not done).
    // Through the file store, so a replica serves what another stored (a local directory or
    // S3-compatible object storage).
    match s.datasets.size(&d.sha256).await? {
        None => return Err(DatasetError::Missing.into()),
        Some(n) if n != size => return Err(DatasetError::Changed.into()),
        Some(_) => {}
    }
    let file = if len == 0 {
        Box::pin(futures_util::stream::empty()) as crate::files::ByteStream
    } else {
        s.datasets.read_range(&d.sha256, start..start + len).await?
    };
    let subject = match s.store.opc_of_founder(&p.user.id).await? {
        Some(o) => o.id,
        None => p.user.id.clone(),
    };
    // Budget (M2.2 key limits): hold the worst case before sending, settle to the bytes sent.
    let month = opchub_ledger::event::period_of(started);
    let limits = s.store.key_limits(key_id).await?;
    let mut held = 0;
    if limits.monthly_budget_fen > 0 {
        let worst = worst_case(s, &d, &price, &subject, len as i64).await?;
        if !s.store.hold_budget(key_id, &month, limits.monthly_budget_fen, worst).await? {
            return Err(DatasetError::BudgetExceeded.into());
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
    Ok(PreparedDownload::Ready(Box::new(Streaming {
        dataset: d,
        partial,
        start,
        len,
        size,
        file,
        meter,
    })))
}

impl Streaming {
    /// The file's bytes of the range, in chunks, counted as they are handed on; the download
    /// is metered once when the stream ends or is dropped (the client went away).
    pub fn into_stream(self) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::unfold((self.file, self.len, self.meter), |(mut file, remaining, mut meter)| async move {
            if remaining == 0 {
                return None;
            }
            match file.next().await {
                Some(Ok(chunk)) if !chunk.is_empty() => {
                    // Never more than the range, whatever the backend hands over.
                    let n = chunk.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let chunk = chunk.slice(..n);
                    meter.sent += n as i64;
                    Some((Ok::<_, std::io::Error>(chunk), (file, remaining - n as u64, meter)))
                }
                _ => None,
            }
        })
    }
}

/// Downloads of a dataset: the operator sees all of its own; an OPC founder its own.
pub async fn downloads_for(s: &App, p: &Principal, id: &str, limit: Option<i64>) -> AppResult<Vec<Download>> {
    let d = s.store.dataset(id).await?;
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let subject = match p.role() {
        Role::CommunityOperator if d.operator_user_id == p.user.id => None,
        Role::OpcFounder => Some(match s.store.opc_of_founder(&p.user.id).await? {
            Some(o) => o.id,
            None => p.user.id.clone(),
        }),
        Role::PlatformOperator | Role::Committee | Role::Auditor => None,
        _ => return Err(AppError::not_found()),
    };
    Ok(s.store.downloads(id, subject.as_deref(), limit).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
