//! XML bytes → a small owned element tree, with the size, depth and element-count limits
//! applied while reading (so a hostile document costs at most `Limits` worth of memory).
//!
//! The reader is `quick-xml`, which never processes DTDs: a `<!DOCTYPE>` is refused outright
//! and only the five predefined entities and character references are expanded, so there is
//! no route to external entities (XXE) or entity expansion bombs.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::Limits;
use crate::error::ParseError;

/// One element: its name, attributes in document order, and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// The concatenated text children (entity references already expanded).
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            if let Node::Text(t) = child {
                out.push_str(t);
            }
        }
        out
    }

    /// Child elements, skipping text.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Self> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }
}

fn malformed(position: u64, reason: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        position,
        reason: reason.into(),
    }
}

/// Reads a whole document into its root element.
pub(crate) fn read_document(bytes: &[u8], limits: &Limits) -> Result<Element, ParseError> {
    if bytes.len() > limits.max_document_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_document_bytes,
        });
    }
    let text = match core::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(malformed(
                e.valid_up_to() as u64,
                "the document is not UTF-8 (TwiML is read as UTF-8)",
            ));
        }
    };
    // A UTF-8 byte order mark is harmless; anything else before the first `<` is not.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(pos) = text.find(|c: char| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(malformed(
            pos as u64,
            "control characters are not allowed in XML 1.0",
        ));
    }

    let mut reader = Reader::from_str(text);
    reader.config_mut().enable_all_checks(true);
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut element_count = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(malformed(
                        reader.buffer_position(),
                        "content after the root element",
                    ));
                }
                element_count += 1;
                if element_count > limits.max_elements {
                    return Err(ParseError::TooMany {
                        what: "elements",
                        limit: limits.max_elements,
                    });
                }
                let element = open_element(&start, reader.buffer_position())?;
                if stack.len() + 1 > limits.max_depth {
                    return Err(ParseError::TooDeep {
                        element: element.name,
                        depth: stack.len() + 1,
                        limit: limits.max_depth,
                    });
                }
                stack.push(element);
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches.
                let Some(done) = stack.pop() else {
                    return Err(malformed(reader.buffer_position(), "unmatched end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Empty(_) => {
                // `expand_empty_elements` turns these into Start + End.
                return Err(malformed(reader.buffer_position(), "unexpected empty tag"));
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content(), reader.buffer_position())?,
            Event::CData(c) => push_text(&mut stack, &c.xml10_content(), reader.buffer_position())?,
            Event::GeneralRef(r) => {
                let position = reader.buffer_position();
                let expanded = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match resolve_predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(malformed(
                                position,
                                format!(
                                    "undefined entity &{};: only &amp; &lt; &gt; &quot; &apos; and character references are expanded",
                                    crate::error::quote(&r)
                                ),
                            ));
                        }
                    },
                    Err(e) => return Err(malformed(position, e.to_string())),
                };
                push_text(&mut stack, &expanded, position)?;
            }
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding()
                    && !encoding.eq_ignore_ascii_case("utf-8")
                {
                    return Err(malformed(
                        reader.buffer_position(),
                        format!(
                            "the declaration says encoding \"{}\"; TwiML is read as UTF-8",
                            crate::error::quote(&encoding)
                        ),
                    ));
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            reader.buffer_position(),
            format!("<{}> is never closed", open.name),
        ));
    }
    root.ok_or_else(|| malformed(reader.buffer_position(), "the document has no root element"))
}

fn open_element(start: &BytesStart<'_>, position: u64) -> Result<Element, ParseError> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(position, e.to_string()))?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(position, e.to_string()))?;
        attributes.push((attribute.key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
    })
}

fn push_text(stack: &mut [Element], text: &str, position: u64) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Node::Text(last)) = parent.children.last_mut() {
                last.push_str(text);
            } else {
                parent.children.push(Node::Text(text.to_owned()));
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed(position, "text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<Element, ParseError> {
        read_document(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn entities_and_cdata_are_text() {
        let e = read("<R>a &amp; b &#x41;<![CDATA[<c>]]></R>").unwrap();
        assert_eq!(e.text(), "a & b A<c>");
    }

    #[test]
    fn attributes_are_unescaped() {
        let e = read(r#"<R a="x&amp;y" b='&quot;'/>"#).unwrap();
        assert_eq!(
            e.attributes,
            vec![("a".into(), "x&y".into()), ("b".into(), "\"".into())]
        );
    }

    #[test]
    fn malformed_documents() {
        for doc in [
            "",
            "<R>",
            "<R></S>",
            "<R a=1/>",
            "<R a='1' a='2'/>",
            "<R/><S/>",
            "<R/>text",
            "<R>&nbsp;</R>",
            "<R>\u{1}</R>",
            "<?xml version='1.0' encoding='ISO-8859-1'?><R/>",
        ] {
            let err = read(doc).unwrap_err();
            assert!(
                matches!(err, ParseError::Malformed { .. }),
                "{doc:?} gave {err:?}"
            );
        }
        let err = read_document(b"<R>\xff</R>", &Limits::default()).unwrap_err();
        assert!(matches!(err, ParseError::Malformed { position: 3, .. }));
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_document_bytes: 100,
            max_depth: 3,
            max_elements: 4,
            max_verbs: 10,
        };
        assert!(matches!(
            read_document(&[b' '; 101], &limits),
            Err(ParseError::TooLarge { size: 101, .. })
        ));
        assert!(matches!(
            read_document(b"<a><b><c><d/></c></b></a>", &limits),
            Err(ParseError::TooDeep { depth: 4, .. })
        ));
        assert!(matches!(
            read_document(b"<a><b/><b/><b/><b/></a>", &limits),
            Err(ParseError::TooMany { .. })
        ));
    }
}
