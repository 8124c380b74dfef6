//! Datasets (M2.2, issue 4 item 6), the HTTP side: the use cases (publishing, storing files,
//! download preparation, metering and budget) are `opchub_app::datasets`; this module reads
//! the request (JSON, query, the raw body as a byte stream, the `Range` header) and answers —
//! `206` with `Content-Range` for one range, `416` with `Content-Range: bytes */size` when
//! unsatisfiable, the file streamed from disk.

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::datasets::{self as app, PreparedDownload};
use opchub_store::datasets::{Dataset, Download};
use serde::Deserialize;
use utoipa::IntoParams;

pub use opchub_app::datasets::{
    create_dataset_for, list_for, parse_range, store_bytes, view, DatasetStatus, DatasetView, NewDatasetRequest, RangeAsk,
    MAX_DATASET_BYTES, SOURCE,
};

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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The file name offered to downloaders (default `<id>.bin`).
    pub file_name: Option<String>,
}

/// Streams `body` into the dataset store (see [`opchub_app::datasets::store_stream`]).
pub async fn store_file(s: &AppState, body: Body) -> ApiResult<(String, i64)> {
    Ok(app::store_stream(s, body.into_data_stream()).await?)
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
    ApiQuery(q): ApiQuery<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Dataset>> {
    let p = caller.require()?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    Ok(Json(
        app::upload_file_for(&s, p, &id, q.file_name, content_type, body.into_data_stream()).await?,
    ))
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
    Ok(Json(app::set_status_for(&s, p, &id, &r).await?))
}

// ---------------------------------------------------------------- downloads

fn range_error(size: i64) -> Response {
    let mut r = ApiError::from(opchub_app::AppError::from(opchub_app::files::FileError::RangeNotSatisfiable)).into_response();
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
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let ready = match app::prepare_download(&s, p, &id, range).await? {
        PreparedDownload::Unsatisfiable { size } => return Ok(range_error(size)),
        PreparedDownload::Ready(r) => *r,
    };
    let (d, start, len, size) = (ready.dataset.clone(), ready.start, ready.len, ready.size);
    let status = if ready.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let stream = ready.into_stream();
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
#[into_params(parameter_in = Query)]
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
    ApiQuery(q): ApiQuery<DownloadsQuery>,
) -> ApiResult<Json<Vec<Download>>> {
    let p = caller.require()?;
    Ok(Json(app::downloads_for(&s, p, &id, q.limit).await?))
}
