//! A rendered part as lettre's MIME body, with CRLF line endings made here in one pass: lettre
//! makes them with one `String::insert` per line, each moving the rest of the text, which was the
//! largest single cost of building a mail.
use lettre::message::Body;

/// The same body (encoding and bytes) lettre's `Body::new(text)` gives.
pub fn crlf(text: String) -> Body {
    let crlf = crlf_line_endings(text);
    if crlf.is_ascii() {
        // As bytes, lettre neither scans it for line endings again nor changes its choice of
        // encoding (the same for ASCII bytes and text).
        Body::new(crlf.into_bytes())
    } else {
        // Text that is not ASCII keeps lettre's text path, whose encoding choice differs from
        // bytes'; with CRLF already in place its scan inserts nothing.
        Body::new(crlf)
    }
}

/// Every LF not already after a CR becomes CRLF.
fn crlf_line_endings(text: String) -> String {
    let bare = text
        .as_bytes()
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || text.as_bytes()[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return text;
    }
    let mut out = String::with_capacity(text.len() + bare);
    for line in text.split_inclusive('\n') {
        match line.strip_suffix('\n') {
            Some(rest) if !rest.ends_with('\r') => {
                out.push_str(rest);
                out.push_str("\r\n");
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_equal_lettres_own_for_every_kind_of_text() {
        let long = "x".repeat(200);
        let samples = [
            String::new(),
            "one line".to_owned(),
            "a\nb\r\nc\n\nd\r\r\n\n".to_owned(),
            "\nstarts with a line feed\n".to_owned(),
            format!("<p>\n{long}\n</p>\n"),
            "Grüße, café\nzweite Zeile\r\n".to_owned(),
            "日本語のメール\n本文\n".repeat(20),
            ".dot\n..two\n".to_owned(),
        ];
        for text in samples {
            let ours = crlf(text.clone());
            let lettres = Body::new(text.clone());
            assert_eq!(ours.encoding(), lettres.encoding(), "{text:?}");
            assert_eq!(ours.into_vec(), lettres.into_vec(), "{text:?}");
        }
    }

    #[test]
    fn only_bare_line_feeds_change() {
        assert_eq!(crlf_line_endings("a\nb\r\nc\n".into()), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf_line_endings("\r\n".into()), "\r\n");
        assert_eq!(crlf_line_endings("\n".into()), "\r\n");
    }
}
