//! HTTP tools from an OpenAPI 3 document (JSON or YAML): each chosen operation becomes a
//! tool named by its `operationId`; path and query parameters become arguments, a JSON
//! request body the `body` argument. Local `$ref`s (`#/components/...`) are resolved.

use crate::tools::{HttpOperation, Tool};
use crate::Finding;
use serde_json::{json, Map, Value};

pub const MAX_DOC_BYTES: usize = 1024 * 1024;
/// The deepest nesting a document may have (flow brackets and block levels together), checked
/// before it is parsed: real documents stay far below it (issue 20).
pub const MAX_DEPTH: usize = 64;
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[derive(Debug, Clone)]
pub struct Document {
    /// `servers[0].url`: the base URL the operations are called on.
    pub base_url: String,
    pub tools: Vec<Tool>,
}

fn resolve<'a>(doc: &'a Value, v: &'a Value, depth: usize) -> Result<&'a Value, Finding> {
    match v.get("$ref").and_then(Value::as_str) {
        None => Ok(v),
        Some(r) if depth < 16 => {
            let Some(path) = r.strip_prefix("#/") else {
                return Err(Finding::new("openapi_external_ref", r.to_string()));
            };
            let target = doc
                .pointer(&format!("/{path}"))
                .ok_or_else(|| Finding::new("openapi_bad_ref", r.to_string()))?;
            resolve(doc, target, depth + 1)
        }
        Some(r) => Err(Finding::new("openapi_bad_ref", r.to_string())),
    }
}

/// Inlines local `$ref`s of a schema (bounded depth; cycles end as `{}`).
fn inline(doc: &Value, v: &Value, depth: usize) -> Value {
    if depth > 8 {
        return json!({});
    }
    match v {
        Value::Object(m) => {
            if m.contains_key("$ref") {
                return match resolve(doc, v, 0) {
                    Ok(t) => inline(doc, t, depth + 1),
                    Err(_) => json!({}),
                };
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), inline(doc, x, depth + 1))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| inline(doc, x, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// What is checked before a document is parsed, in one linear pass: its size and its nesting
/// depth ([`crate::nesting`]), so that no document can hold a parser for long (issue 20).
pub fn precheck(text: &str) -> Result<(), Finding> {
    if text.len() > MAX_DOC_BYTES {
        return Err(Finding::new("openapi_too_large", format!("max {MAX_DOC_BYTES} bytes")));
    }
    if crate::nesting::depth(text, MAX_DEPTH) > MAX_DEPTH {
        return Err(Finding::new("openapi_too_deep", format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

/// Parses the document and turns the operations named in `only` (all when empty) into tools.
pub fn parse(text: &str, only: &[String]) -> Result<Document, Finding> {
    precheck(text)?;
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_norway::from_str::<Value>(text).map_err(|e| Finding::new("openapi_unparseable", e.to_string()))?,
    };
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        return Err(Finding::new("openapi_not_v3", "the document needs \"openapi\": \"3.x\""));
    }
    let base_url = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| Finding::new("openapi_no_server", "servers[0].url must be an absolute http(s) URL"))?
        .trim_end_matches('/')
        .to_string();
    crate::net::parse_upstream(&base_url).map_err(|f| Finding::new("openapi_no_server", f.detail))?;
    if base_url.contains(['?', '#']) {
        return Err(Finding::new("openapi_no_server", "servers[0].url must have no query or fragment"));
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| Finding::new("openapi_no_paths", "the document has no paths"))?;
    let mut tools = Vec::new();
    for (path, item) in paths {
        let item = resolve(&doc, item, 0)?;
        let shared: Vec<Value> = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let Some(op_id) = op.get("operationId").and_then(Value::as_str) else {
                return Err(Finding::new(
                    "openapi_operation_id_missing",
                    format!("{} {path}", method.to_uppercase()),
                ));
            };
            if !only.is_empty() && !only.iter().any(|o| o == op_id) {
                continue;
            }
            check_path(path)?;
            let mut props = Map::new();
            let mut required = Vec::new();
            let mut path_params = Vec::new();
            let mut query_params = Vec::new();
            let params = shared
                .iter()
                .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten());
            for p in params {
                let p = resolve(&doc, p, 0)?;
                let (Some(name), Some(loc)) = (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str)) else {
                    return Err(Finding::new(
                        "openapi_bad_parameter",
                        format!("{op_id}: a parameter needs name and in"),
                    ));
                };
                match loc {
                    "path" => path_params.push(name.to_string()),
                    "query" => query_params.push(name.to_string()),
                    _ => continue,
                }
                let mut schema = p
                    .get("schema")
                    .map(|s| inline(&doc, s, 0))
                    .unwrap_or_else(|| json!({"type": "string"}));
                if let (Some(d), Some(o)) = (p.get("description"), schema.as_object_mut()) {
                    o.entry("description").or_insert(d.clone());
                }
                props.insert(name.to_string(), schema);
                if loc == "path" || p.get("required").and_then(Value::as_bool) == Some(true) {
                    required.push(Value::String(name.to_string()));
                }
            }
            let mut has_body = false;
            if let Some(rb) = op.get("requestBody") {
                let rb = resolve(&doc, rb, 0)?;
                if let Some(schema) = rb.pointer("/content/application~1json/schema") {
                    props.insert("body".into(), inline(&doc, schema, 0));
                    has_body = true;
                    if rb.get("required").and_then(Value::as_bool) == Some(true) {
                        required.push(Value::String("body".into()));
                    }
                }
            }
            let description = [op.get("summary"), op.get("description")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n");
            tools.push(Tool {
                name: op_id.to_string(),
                description,
                input_schema: json!({"type": "object", "properties": props, "required": required}),
                http: Some(HttpOperation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    path_params,
                    query_params,
                    has_body,
                }),
            });
        }
    }
    if let Some(missing) = only.iter().find(|o| !tools.iter().any(|t| &t.name == *o)) {
        return Err(Finding::new("openapi_operation_not_found", missing.clone()));
    }
    if tools.is_empty() {
        return Err(Finding::new("tools_empty", "the document has no operations"));
    }
    Ok(Document { base_url, tools })
}

/// Checks a path key of the document: an absolute path (`/…`) on the server of
/// `servers[0].url`, which nothing in it can turn into another scheme, host or port — not `@`
/// before the first `/` (`@127.0.0.1:8080/admin` joined as text to `http://203.0.113.9`
/// names 127.0.0.1), not `//host`, no backslashes (read as `/` by WHATWG parsers), no
/// whitespace or control characters (stripped by them), no `?`, `#` or `%`, no `.`/`..`
/// segments (M2.3).
pub fn check_path(path: &str) -> Result<(), Finding> {
    let bad = |why: &str| Err(Finding::new("openapi_path_invalid", format!("{}: {why}", path.escape_debug())));
    if path.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if !path.starts_with('/') {
        return bad("a path must start with /");
    }
    if path.starts_with("//") {
        return bad("a path must not start with //");
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '\\' | '?' | '#' | '%'))
    {
        return bad(&format!("{} is not allowed in a path", c.escape_debug()));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if matches!(*seg, "." | "..") {
            return bad("no . or .. segments");
        }
        if seg.is_empty() && i + 1 < segments.len() {
            return bad("no empty segments");
        }
    }
    // Belt and braces: even joined as text to a base, the path keeps the base's origin.
    for base in ["http://203.0.113.9", "https://tools.example.com/api"] {
        let joined = url::Url::parse(&format!("{base}{path}")).map_err(|_| ());
        let origin = url::Url::parse(base).map(|u| u.origin()).map_err(|_| ());
        if joined.map(|u| u.origin()) != origin {
            return bad("the path changes the server");
        }
    }
    Ok(())
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fills the `{name}` placeholders of one path segment with the arguments (one pass: a value
/// is never read as a template).
fn fill_segment(seg: &str, op: &HttpOperation, args: &Map<String, Value>) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let mut rest = seg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if op.path_params.iter().any(|p| p == &after[..close]) => {
                out.push_str(&args.get(&after[..close]).map(text).unwrap_or_default());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The URL and JSON body of a call of `op` with `args`. The URL is built structurally on
/// `base_url`: the path template is checked ([`check_path`]) and each of its segments, filled
/// with the arguments, is appended as one percent-encoded segment, so no path or argument can
/// change the scheme, host or port of the base (M2.3).
pub fn request_of(base_url: &str, op: &HttpOperation, args: &Map<String, Value>) -> Result<(url::Url, Option<Value>), Finding> {
    check_path(&op.path)?;
    let mut url = url::Url::parse(base_url).map_err(|_| Finding::new("upstream_url_invalid", base_url.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Finding::new("upstream_url_invalid", base_url.to_string()));
    }
    let origin = url.origin();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| Finding::new("upstream_url_invalid", base_url.to_string()))?;
        segments.pop_if_empty();
        for seg in op.path[1..].split('/') {
            let filled = fill_segment(seg, op, args);
            // `.` and `..` would be dropped or climb the base path.
            if matches!(filled.as_str(), "." | "..") {
                return Err(Finding::new("argument_invalid", format!("{filled:?} is not a path segment")));
            }
            segments.push(&filled);
        }
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let query: Vec<String> = op
        .query_params
        .iter()
        .filter_map(|q| args.get(q).map(|v| format!("{}={}", encode(q), encode(&text(v)))))
        .collect();
    if !query.is_empty() {
        url.set_query(Some(&query.join("&")));
    }
    if url.origin() != origin {
        return Err(Finding::new("openapi_path_invalid", op.path.clone()));
    }
    let body = if op.has_body { args.get("body").cloned() } else { None };
    Ok((url, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"
openapi: 3.0.3
info: {title: Weather, version: "1"}
servers: [{url: "https://weather.example.com/api/"}]
paths:
  /weather/{city}:
    get:
      operationId: get_weather
      summary: Current weather of a city
      parameters:
        - {name: city, in: path, required: true, schema: {type: string}}
        - {name: units, in: query, schema: {type: string, enum: [c, f]}}
  /notes:
    post:
      operationId: add_note
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Note"}
components:
  schemas:
    Note: {type: object, properties: {text: {type: string}}, required: [text]}
"##;

    #[test]
    fn operations_become_tools() {
        let d = parse(DOC, &[]).unwrap();
        assert_eq!(d.base_url, "https://weather.example.com/api");
        let names: Vec<_> = d.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["add_note", "get_weather"]);
        let w = d.tools.iter().find(|t| t.name == "get_weather").unwrap();
        assert_eq!(w.input_schema["required"], json!(["city"]));
        let n = d.tools.iter().find(|t| t.name == "add_note").unwrap();
        assert_eq!(n.input_schema["properties"]["body"]["required"], json!(["text"]));
        let args = json!({"city": "北京 丰台", "units": "c"});
        let (url, body) = request_of(&d.base_url, w.http.as_ref().unwrap(), args.as_object().unwrap()).unwrap();
        assert_eq!(
            url.as_str(),
            "https://weather.example.com/api/weather/%E5%8C%97%E4%BA%AC%20%E4%B8%B0%E5%8F%B0?units=c"
        );
        assert!(body.is_none());
        let only = parse(DOC, &["get_weather".to_string()]).unwrap();
        assert_eq!(only.tools.len(), 1);
    }

    fn doc_with_path(base: &str, path: &str) -> String {
        json!({"openapi": "3.0.3", "servers": [{"url": base}],
               "paths": {path: {"get": {"operationId": "admin"}}}})
        .to_string()
    }

    #[test]
    fn a_path_that_would_change_the_server_is_refused_at_import() {
        for path in [
            "@127.0.0.1:8080/internal-admin",
            ":x@127.0.0.1/a",
            "//127.0.0.1/a",
            "/\\127.0.0.1/a",
            "\\@127.0.0.1/a",
            "/\t/127.0.0.1/a",
            "/a\r\n/b",
            "/a/../../b",
            "/a?x=1",
            "/a#f",
            "/%2e%2e/a",
            "127.0.0.1/a",
            "",
        ] {
            let err = parse(&doc_with_path("http://93.184.216.34", path), &[]).unwrap_err();
            assert_eq!(err.code, "openapi_path_invalid", "{path:?}");
        }
        for ok in ["/internal/@me", "/a:b/{id}", "/", "/notes/", "/天气/{city}"] {
            assert!(parse(&doc_with_path("http://93.184.216.34", ok), &[]).is_ok(), "{ok:?}");
        }
        assert_eq!(
            parse(&doc_with_path("http://u:p@93.184.216.34", "/a"), &[]).unwrap_err().code,
            "openapi_no_server"
        );
    }

    #[test]
    fn the_call_url_keeps_the_base_host_whatever_the_path_and_arguments() {
        let op = |path: &str| HttpOperation {
            method: "GET".into(),
            path: path.into(),
            path_params: vec!["id".into()],
            query_params: vec!["q".into()],
            has_body: false,
        };
        // A path stored before the import check: refused at call time too.
        let args = json!({}).as_object().unwrap().clone();
        let err = request_of("http://93.184.216.34", &op("@127.0.0.1:9/internal-admin"), &args).unwrap_err();
        assert_eq!(err.code, "openapi_path_invalid");
        // Arguments are one segment each, whatever they hold.
        for id in ["@127.0.0.1:9", "//127.0.0.1/x", "a/../../b", "\\127.0.0.1", "x?y#z", "{id}"] {
            let args = json!({"id": id, "q": "a&b=c"}).as_object().unwrap().clone();
            let (url, _) = request_of("http://93.184.216.34/api", &op("/items/{id}"), &args).unwrap();
            assert_eq!(url.host_str(), Some("93.184.216.34"), "{id}: {url}");
            assert_eq!(url.port(), None);
            assert_eq!(url.path_segments().unwrap().count(), 3, "{id}: {url}");
            assert_eq!(url.query(), Some("q=a%26b%3Dc"));
        }
        let args = json!({"id": ".."}).as_object().unwrap().clone();
        assert_eq!(
            request_of("http://93.184.216.34/api", &op("/items/{id}"), &args).unwrap_err().code,
            "argument_invalid"
        );
    }

    #[test]
    fn deep_or_large_documents_are_refused_before_parsing() {
        let deep = format!("openapi: 3.0.3\npaths: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
        let started = std::time::Instant::now();
        assert_eq!(parse(&deep, &[]).unwrap_err().code, "openapi_too_deep");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(parse(&deep, &[]).unwrap_err().code, "openapi_too_deep");
        let big = format!("openapi: 3.0.3\n#{}\n", "x".repeat(MAX_DOC_BYTES));
        assert_eq!(parse(&big, &[]).unwrap_err().code, "openapi_too_large");
        // The example document is far from the limit.
        assert!(crate::nesting::depth(DOC, MAX_DEPTH) < 16);
    }

    #[test]
    fn bad_documents_are_refused() {
        assert_eq!(parse("{not json: [", &[]).unwrap_err().code, "openapi_unparseable");
        assert_eq!(parse(r#"{"swagger": "2.0"}"#, &[]).unwrap_err().code, "openapi_not_v3");
        assert_eq!(
            parse(r#"{"openapi": "3.1.0", "paths": {}}"#, &[]).unwrap_err().code,
            "openapi_no_server"
        );
        assert_eq!(parse(DOC, &["nope".to_string()]).unwrap_err().code, "openapi_operation_not_found");
    }
}
