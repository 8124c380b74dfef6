//! HTTP tools from an OpenAPI 3 document (JSON or YAML): each chosen operation becomes a
//! tool named by its `operationId`; path and query parameters become arguments, a JSON
//! request body the `body` argument. Local `$ref`s (`#/components/...`) are resolved.

use crate::tools::{HttpOperation, Tool};
use crate::Finding;
use serde_json::{json, Map, Value};

pub const MAX_DOC_BYTES: usize = 1024 * 1024;
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

/// Parses the document and turns the operations named in `only` (all when empty) into tools.
pub fn parse(text: &str, only: &[String]) -> Result<Document, Finding> {
    if text.len() > MAX_DOC_BYTES {
        return Err(Finding::new("openapi_too_large", format!("max {MAX_DOC_BYTES} bytes")));
    }
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

/// The URL and JSON body of a call of `op` with `args`.
pub fn request_of(base_url: &str, op: &HttpOperation, args: &Map<String, Value>) -> (String, Option<Value>) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut path = op.path.clone();
    for p in &op.path_params {
        let v = args.get(p).map(text).unwrap_or_default();
        path = path.replace(&format!("{{{p}}}"), &encode(&v));
    }
    let query: Vec<String> = op
        .query_params
        .iter()
        .filter_map(|q| args.get(q).map(|v| format!("{}={}", encode(q), encode(&text(v)))))
        .collect();
    let mut url = format!("{base_url}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let body = if op.has_body { args.get("body").cloned() } else { None };
    (url, body)
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
        let (url, body) = request_of(&d.base_url, w.http.as_ref().unwrap(), args.as_object().unwrap());
        assert_eq!(
            url,
            "https://weather.example.com/api/weather/%E5%8C%97%E4%BA%AC%20%E4%B8%B0%E5%8F%B0?units=c"
        );
        assert!(body.is_none());
        let only = parse(DOC, &["get_weather".to_string()]).unwrap();
        assert_eq!(only.tools.len(), 1);
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
