//! A rendered part as lettre's MIME body. For the usual 7bit part the CRLF line endings are made
//! here in one pass: lettre makes them with one `String::insert` per line, each moving the rest of
//! the text, which was the largest single cost of building a mail.
use email_encoding::body::Encoding;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The same body (encoding and bytes) lettre's `Body::new(text)` gives.
pub fn crlf(text: String) -> Body {
    // lettre's own choice, made as lettre makes it: on the text before CRLF.
    if Encoding::choose(text.as_str(), false) == Encoding::SevenBit {
        let bytes = crlf_line_endings(text).into_bytes();
        Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::SevenBit)
    } else {
        // Quoted-printable or base64 (long lines, not ASCII): lettre encodes it.
        Body::new(text)
    }
}

/// Every LF not already after a CR becomes CRLF (line feeds found with `memchr`).
fn crlf_line_endings(text: String) -> String {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    for at in memchr::memchr_iter(b'\n', bytes) {
        if at > 0 && bytes[at - 1] == b'\r' {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(bytes.len() + bytes.len() / 16));
        // A line feed is ASCII, so `at` is a character boundary.
        out.push_str(&text[copied..at]);
        out.push_str("\r\n");
        copied = at + 1;
    }
    match out {
        None => text,
        Some(mut out) => {
            out.push_str(&text[copied..]);
            out
        }
    }
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
    fn bodies_equal_lettres_own_on_any_text() {
        use proptest::prelude::*;
        let text = proptest::collection::vec(
            prop_oneof![
                1 => Just('\r'),
                1 => Just('\n'),
                30 => Just('a'),
                2 => Just('é'),
                2 => Just('.'),
                4 => Just(' '),
            ],
            0..400,
        );
        proptest!(|(chars in text)| {
            let text: String = chars.into_iter().collect();
            let (ours, lettres) = (crlf(text.clone()), Body::new(text));
            prop_assert_eq!(ours.encoding(), lettres.encoding());
            prop_assert_eq!(ours.into_vec(), lettres.into_vec());
        });
    }

    #[test]
    fn only_bare_line_feeds_change() {
        assert_eq!(crlf_line_endings("a\nb\r\nc\n".into()), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf_line_endings("\r\n".into()), "\r\n");
        assert_eq!(crlf_line_endings("\n".into()), "\r\n");
    }
}
