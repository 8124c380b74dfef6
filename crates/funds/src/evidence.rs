//! Evidence uploads (F2): PDF, images and spreadsheets only, bounded in size, and the type is read
//! from the content — a file whose name or declared type says one thing and whose bytes say
//! another is refused. The caller stores the bytes by their SHA-256, so a later change shows.

/// Largest evidence file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;

/// What an accepted file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub mime: &'static str,
    pub ext: &'static str,
}

const ACCEPTED: &[Kind] = &[
    Kind {
        mime: "application/pdf",
        ext: "pdf",
    },
    Kind {
        mime: "image/png",
        ext: "png",
    },
    Kind {
        mime: "image/jpeg",
        ext: "jpg",
    },
    Kind {
        mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ext: "xlsx",
    },
    Kind {
        mime: "application/vnd.ms-excel",
        ext: "xls",
    },
    Kind {
        mime: "text/csv",
        ext: "csv",
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {} MiB", MAX_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("only PDF, PNG, JPEG, XLSX, XLS and CSV files are accepted")]
    TypeNotAccepted,
    #[error("the file's content is not what its name or type says")]
    TypeMismatch,
    #[error("the file name is not acceptable")]
    BadName,
}

impl EvidenceError {
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Empty => "file_empty",
            EvidenceError::TooLarge => "evidence_too_large",
            EvidenceError::TypeNotAccepted => "file_type_not_accepted",
            EvidenceError::TypeMismatch => "file_type_mismatch",
            EvidenceError::BadName => "file_name",
        }
    }
}

fn by_ext(ext: &str) -> Option<Kind> {
    let ext = ext.to_ascii_lowercase();
    let ext = if ext == "jpeg" { "jpg".to_string() } else { ext };
    ACCEPTED.iter().copied().find(|k| k.ext == ext)
}

/// Checks a file by its name, the type the client declared (may be empty or generic) and its
/// bytes. Returns the kind read from the content.
pub fn check(name: &str, declared: &str, bytes: &[u8]) -> Result<Kind, EvidenceError> {
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(EvidenceError::BadName);
    }
    if bytes.is_empty() {
        return Err(EvidenceError::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(EvidenceError::TooLarge);
    }
    let claimed = name
        .rsplit_once('.')
        .and_then(|(_, e)| by_ext(e))
        .ok_or(EvidenceError::TypeNotAccepted)?;
    let sniffed = match infer::get(bytes) {
        Some(t) => match ACCEPTED.iter().copied().find(|k| k.mime == t.mime_type()) {
            Some(k) => k,
            None => return Err(EvidenceError::TypeMismatch),
        },
        // CSV has no signature: text without NUL bytes that is valid UTF-8.
        None if claimed.ext == "csv" && !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() => claimed,
        None => return Err(EvidenceError::TypeMismatch),
    };
    if sniffed != claimed {
        return Err(EvidenceError::TypeMismatch);
    }
    let declared = declared.split(';').next().unwrap_or_default().trim();
    let generic = declared.is_empty() || declared == "application/octet-stream";
    if !generic && declared != sniffed.mime && !(sniffed.ext == "jpg" && declared == "image/jpg") {
        return Err(EvidenceError::TypeMismatch);
    }
    Ok(sniffed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];

    #[test]
    fn accepts_what_the_content_confirms() {
        assert_eq!(check("contract.pdf", "application/pdf", PDF).unwrap().ext, "pdf");
        assert_eq!(check("scan.PNG", "", PNG).unwrap().mime, "image/png");
        assert_eq!(
            check("spend.csv", "text/csv", "date,amount\n2027-01-01,100\n".as_bytes())
                .unwrap()
                .ext,
            "csv"
        );
    }

    #[test]
    fn refuses_lies_sizes_and_other_types() {
        assert_eq!(check("invoice.pdf", "application/pdf", PNG), Err(EvidenceError::TypeMismatch));
        assert_eq!(check("invoice.png", "application/pdf", PNG), Err(EvidenceError::TypeMismatch));
        assert_eq!(check("tool.exe", "", b"MZ\x90\x00"), Err(EvidenceError::TypeNotAccepted));
        assert_eq!(check("fake.csv", "", &[0u8, 1, 2]), Err(EvidenceError::TypeMismatch));
        assert_eq!(check("a.pdf", "", b""), Err(EvidenceError::Empty));
        assert_eq!(check("../a.pdf", "", PDF), Err(EvidenceError::BadName));
        let big = [PDF, &vec![b' '; MAX_BYTES]].concat();
        assert_eq!(check("big.pdf", "", &big), Err(EvidenceError::TooLarge));
    }
}
