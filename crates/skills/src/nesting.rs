//! A cheap bound on the nesting depth of a YAML (or JSON) text, checked before the text is
//! handed to a YAML parser: libyaml's scanner spends time proportional to the flow depth on
//! every token, so `[[[[…]]]]` 80,000 deep takes it half a minute; any OPC can send an OpenAPI
//! document (registration is anonymous), so depth is refused before parsing (issue 20).
//!
//! The scan is one linear pass that follows just enough of YAML's lexical rules to tell
//! structure from text: double- and single-quoted scalars (which may span lines), plain
//! scalars (which may continue on more-indented lines), comments, and block scalars (`|`, `>`)
//! whose more-indented lines are text. Depth is the block levels (indentation steps and compact
//! `- `/`? ` entries on a line) plus the flow depth (`[`, `{`). Where the rules are unsure it
//! counts a bracket rather than skip it: a legitimate document is far below the limit, so an
//! over-estimate only matters for hostile input.

/// How deep the scan counts at most (it stops early past `stop`).
pub fn depth(text: &str, stop: usize) -> usize {
    let b = text.as_bytes();
    let n = b.len();
    let mut flow: usize = 0;
    let mut indents: Vec<usize> = Vec::new();
    let mut max: usize = 0;
    // Lines more indented than this belong to a block scalar.
    let mut block_scalar: Option<usize> = None;
    // The previous line ended inside a plain scalar started on a line indented this much.
    let mut plain_from: Option<usize> = None;
    let mut i = 0;
    while i < n && max <= stop {
        // ---- a line starts
        let mut col = 0;
        while i < n && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
            col += 1;
        }
        let line_end = |from: usize| b[from..].iter().position(|&c| c == b'\n').map_or(n, |p| from + p);
        let mut eol = line_end(i);
        let blank = b[i..eol].iter().all(|c| c.is_ascii_whitespace());
        if let Some(parent) = block_scalar {
            if blank || col > parent {
                i = eol + 1;
                continue;
            }
            block_scalar = None;
        }
        if blank || b[i] == b'#' {
            i = eol + 1;
            continue;
        }
        let continues_plain = match plain_from {
            // A flow plain scalar goes on unless the line starts with an indicator.
            Some(_) if flow > 0 => !matches!(b[i], b',' | b'[' | b']' | b'{' | b'}'),
            Some(from) => col > from,
            None => false,
        };
        plain_from = None;
        let mut compact = 0;
        if flow == 0 && !continues_plain {
            if col == 0 && (b[i..eol].starts_with(b"---") || b[i..eol].starts_with(b"...")) {
                indents.clear();
            }
            while indents.last().is_some_and(|&t| t > col) {
                indents.pop();
            }
            if indents.last() != Some(&col) {
                indents.push(col);
            }
        }
        // ---- tokens of the line
        let mut at_token = !continues_plain;
        let mut in_plain = continues_plain;
        let mut prev_space = true;
        while i < eol && max <= stop {
            let c = b[i];
            let next_is_space = i + 1 >= eol || b[i + 1] == b' ' || b[i + 1] == b'\t' || b[i + 1] == b'\r';
            if c == b'#' && (prev_space || at_token) {
                // A comment: the rest of the line.
                break;
            }
            if c == b' ' || c == b'\t' || c == b'\r' {
                prev_space = true;
                i += 1;
                continue;
            }
            prev_space = false;
            if at_token {
                match c {
                    b'"' | b'\'' => {
                        i = skip_quoted(b, i);
                        if i > eol {
                            // A quoted scalar over several lines: the line that ends it goes on.
                            eol = line_end(i.min(n));
                        }
                        at_token = false;
                        continue;
                    }
                    b'-' | b'?' if next_is_space => {
                        if flow == 0 {
                            compact += 1;
                        }
                        i += 1;
                        continue;
                    }
                    b'|' | b'>' if flow == 0 => {
                        block_scalar = Some(col);
                        break;
                    }
                    b'&' | b'!' => {
                        // An anchor or a tag: the node follows.
                        while i < eol && !matches!(b[i], b' ' | b'\t' | b'\r') {
                            i += 1;
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            match c {
                b'[' | b'{' if at_token || flow > 0 => {
                    flow += 1;
                    in_plain = false;
                    at_token = true;
                }
                b']' | b'}' if flow > 0 => {
                    flow -= 1;
                    in_plain = false;
                    at_token = false;
                }
                b',' if flow > 0 => {
                    in_plain = false;
                    at_token = true;
                }
                b':' if next_is_space || (flow > 0 && at_token) => {
                    in_plain = false;
                    at_token = true;
                }
                _ => {
                    if at_token {
                        in_plain = true;
                        at_token = false;
                    }
                }
            }
            i += 1;
            max = max.max(indents.len() + compact + flow);
        }
        max = max.max(indents.len() + compact + flow);
        if in_plain {
            plain_from = Some(col);
        }
        i = eol + 1;
    }
    max
}

/// The index after a quoted scalar starting at `start` (or the end of the text).
fn skip_quoted(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 2,
            c if c == q => {
                if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_and_block_nesting_are_counted() {
        assert_eq!(depth("a: 1\n", 64), 1);
        assert_eq!(depth("a:\n  b:\n    c: 1\n", 64), 3);
        assert_eq!(depth("paths: [[[]]]\n", 64), 4);
        assert_eq!(depth("- - - x\n", 64), 4);
        assert_eq!(depth(r#"{"a": {"b": [1, 2, {"c": 3}]}}"#, 64), 5);
        let deep = format!("paths: {}{}\n", "[".repeat(80_000), "]".repeat(80_000));
        assert!(depth(&deep, 64) > 64);
        let deep = format!("{}x\n", "- ".repeat(10_000));
        assert!(depth(&deep, 64) > 64);
    }

    #[test]
    fn brackets_in_text_do_not_hide_structure() {
        // Closing brackets in quoted scalars do not cancel real ones.
        let tricky = format!("paths: {}\n", r#"[ "]]" "#.repeat(100));
        assert!(depth(&tricky, 64) > 64);
        let tricky = format!("paths: {}\n", "[ ']]' ".repeat(100));
        assert!(depth(&tricky, 64) > 64);
        let tricky = format!("paths: {}\n", "[ # ]]\n".repeat(100));
        assert!(depth(&tricky, 64) > 64);
        // Brackets in text, comments and block scalars are not structure.
        let text = "a: \"[[[[[[[[\"\nb: '{{{{{{{{{{'\nc: x[[[[[[[[[[[[\n# [[[[[[[[[[[[[[\nd: |\n  [[[[[[[[[[[[[[[\n  {{{{{{{{{{{\ne: 1\n";
        assert!(depth(text, 64) <= 3, "{}", depth(text, 64));
        // An apostrophe inside a plain scalar opens no quoted scalar.
        let text = format!("a: don't\nb: {}{}\nc: it's\n", "[".repeat(70), "]".repeat(70));
        assert!(depth(&text, 64) > 64);
    }
}
