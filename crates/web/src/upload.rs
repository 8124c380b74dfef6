//! `multipart/form-data` bodies of page forms that carry files (the demand publish form,
//! M2.4). The route middleware reads such a body whole (it must find the `_csrf` field in
//! it), so the parts are parsed from bytes already in memory; only routes that declare an
//! upload limit in the route table accept bodies this large.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

/// Largest body of a page form with files: five attachments of at most 2 MiB each (the
/// store's limits) and the form's text fields.
pub const PAGE_UPLOAD_BODY: usize = 5 * opchub_store::demands::MAX_FILE_BYTES + 256 * 1024;

/// One part of a multipart body. `file_name` is `Some` for file inputs (empty when the
/// browser sent the input without a chosen file).
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    /// The media type the browser gave, without parameters, lower-cased.
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The boundary when the request is `multipart/form-data`.
pub fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// Every part of `body`, in order; `None` when the body is not well-formed multipart.
pub async fn parts(body: Bytes, boundary: &str) -> Option<Vec<Part>> {
    let mut mp = multer::Multipart::new(Body::from(body).into_data_stream(), boundary);
    let mut out = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Some(out),
            Err(_) => return None,
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.essence_str().to_ascii_lowercase());
        let bytes = field.bytes().await.ok()?;
        out.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
    }
}

/// The value of the text field `name` in a multipart body (the CSRF check); stops at it.
pub async fn field(body: Bytes, boundary: &str, name: &str) -> Option<String> {
    let mut mp = multer::Multipart::new(Body::from(body).into_data_stream(), boundary);
    while let Ok(Some(f)) = mp.next_field().await {
        if f.name() == Some(name) {
            return f.text().await.ok();
        }
    }
    None
}
