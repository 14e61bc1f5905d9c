//! The XML layer of the Infoclinica protocol, shared by the client and the emulator: a
//! small namespace-agnostic element tree, a writer that escapes every value, the request
//! envelope (`WEB_<OP>`/`MSH`/`<OP>_IN`) and the checks of the answer envelope
//! (`ACK`/`MSA`/`<OP>_OUT`/`SPRESULT`).
//!
//! Parsing is deliberately strict about what could hurt us and lenient about what the MIS
//! is known to vary: any DTD is refused (no entity is ever expanded; only the five
//! predefined entities and numeric character references are resolved), the input must be
//! UTF-8, and element names are matched by local name in any order.

use std::fmt::Write as _;

use quick_xml::{
    Reader,
    events::{BytesRef, Event},
};

use super::{MisCheck, MisError};

/// The namespace of every message, declared as the default namespace on the root.
pub const NAMESPACE: &str = "http://sdsys.ru/";

/// Deeper nesting than this is refused: no message nests more than a few levels, and a
/// deep tree would cost stack on drop.
const MAX_DEPTH: usize = 32;
/// More elements than this are refused (bounded memory on a body under the size cap).
const MAX_ELEMENTS: usize = 400_000;

/// One element: its local name, its text (character data, CDATA and resolved references
/// concatenated) and its child elements. Attributes are not kept: the protocol has none
/// but namespace declarations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a path of child names (`["MSA", "MSA.1"]`).
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The trimmed text of the child `name`; `None` when the child is absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The trimmed text at a path; `None` when absent or empty.
    pub fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

/// Parses a whole document into its root element.
///
/// Refuses non-UTF-8 input, any `<!DOCTYPE` (so no entity declaration can exist), unknown
/// entity references, more than one root, text outside the root, and documents deeper or
/// larger than the limits above. Error texts never quote the document.
pub fn parse(bytes: &[u8]) -> Result<Element, MisError> {
    let malformed = |m: &str| MisError::Malformed(m.to_owned());
    let text = std::str::from_utf8(bytes)
        .map_err(|e| MisError::Malformed(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;

    // The open elements; the root is finished when the stack empties.
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;

    loop {
        let event = reader.read_event().map_err(|e| {
            MisError::Malformed(format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match event {
            Event::DocType(_) => return Err(malformed("DTD not allowed")),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("more than one root element"));
            }
            Event::Start(start) => {
                count += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed("elements nested too deep"));
                }
                if count > MAX_ELEMENTS {
                    return Err(malformed("too many elements"));
                }
                stack.push(Element {
                    name: local_name(start.local_name().as_ref())?,
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(malformed("too many elements"));
                }
                let element = Element {
                    name: local_name(start.local_name().as_ref())?,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed("unmatched end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t
                    .xml10_content()
                    .map_err(|_| malformed("text is not UTF-8"))?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element")),
                }
            }
            Event::CData(c) => {
                let content = c.decode().map_err(|_| malformed("CDATA is not UTF-8"))?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&content),
                    None => return Err(malformed("CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = resolve_reference(&r)?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&resolved),
                    None => return Err(malformed("reference outside the root element")),
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("document ends inside an element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn local_name(raw: &[u8]) -> Result<String, MisError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| MisError::Malformed("element name is not UTF-8".into()))
}

/// Only character references and the five predefined entities: anything else would need a
/// declaration, and declarations are refused.
fn resolve_reference(r: &BytesRef<'_>) -> Result<String, MisError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.to_string()),
            _ => Err(MisError::Malformed("invalid character reference".into())),
        };
    }
    let name = r
        .decode()
        .map_err(|_| MisError::Malformed("entity name is not UTF-8".into()))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| MisError::Malformed("undeclared entity reference".into()))
}

/// Writes XML text: every value and name goes through [`escape`].
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>` and a newline.
    pub fn declaration(&mut self) -> &mut Self {
        self.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self
    }

    /// `<name xmlns="ns">`.
    pub fn open_ns(&mut self, name: &str, namespace: &str) -> &mut Self {
        let _ = write!(
            self.out,
            "<{} xmlns=\"{}\">",
            escape(name),
            escape(namespace)
        );
        self
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "<{}>", escape(name));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{}>", escape(name));
        self
    }

    /// `<name>value</name>` with the value escaped.
    pub fn leaf(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        let name = escape(name);
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(&value.to_string()));
        self
    }

    /// `<name>value</name>` when there is a value, nothing otherwise.
    pub fn leaf_opt<T: std::fmt::Display>(&mut self, name: &str, value: Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.leaf(name, value);
        }
        self
    }

    /// Appends a fragment that is already escaped XML (one writer's output into another).
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// `<name/>`.
    pub fn empty(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "<{}/>", escape(name));
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(raw: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(raw)
}

/// The request header fields that vary per call.
#[derive(Debug, Clone)]
pub struct Header {
    /// `MSH.7/TS.1`, `YYYYMMDDHHMMSS`.
    pub timestamp: String,
    /// `MSH.10`: 32 hex digits.
    pub control_id: String,
    /// `MSH.99`: the filial the call is addressed to.
    pub filial: Option<i64>,
}

impl Header {
    /// A header stamped now (UTC; the MIS does not validate it) with a fresh control id.
    pub fn now(filial: Option<i64>) -> Self {
        Self {
            timestamp: chrono::Utc::now().format("%Y%m%d%H%M%S").to_string(),
            control_id: uuid::Uuid::new_v4().simple().to_string(),
            filial,
        }
    }
}

/// Builds a whole request: `WEB_<op>` with the default namespace, `MSH`, then `<op>_IN`
/// whose content `write_in` writes.
pub fn request(op: &str, header: &Header, write_in: impl FnOnce(&mut XmlWriter)) -> String {
    let root = format!("WEB_{op}");
    let block = format!("{op}_IN");
    let mut w = XmlWriter::new();
    w.declaration().open_ns(&root, NAMESPACE).open("MSH");
    w.open("MSH.7")
        .leaf("TS.1", &header.timestamp)
        .close("MSH.7");
    w.open("MSH.9")
        .leaf("MSG.1", "WEB")
        .leaf("MSG.2", op)
        .close("MSH.9");
    w.leaf("MSH.10", &header.control_id)
        .leaf("MSH.18", "UTF-8")
        .leaf_opt("MSH.99", header.filial);
    w.close("MSH").open(&block);
    write_in(&mut w);
    w.close(&block).close(&root);
    w.finish()
}

/// Checks the answer envelope of `op` and returns its `<op>_OUT` block.
///
/// Root `ACK`; `MSA/MSA.1` `AA` or [`MisError::Refused`]; `<op>_OUT` with `SPRESULT` 1 or
/// [`MisError::Failed`] carrying `SPCOMMENT` and every `CHECKDATA`.
pub fn parse_response(op: &str, body: &[u8]) -> Result<Element, MisError> {
    check_spresult(parse_answer(op, body)?)
}

/// Checks the answer envelope of `op` (root `ACK`, the message type, `MSA.1` `AA`, an
/// `<op>_OUT` block with an integer `SPRESULT`) and returns the `<op>_OUT` block whatever its
/// `SPRESULT`: for the few messages whose failure answers carry data (`CLIENT_ADD` names the
/// existing card).
///
/// An answer to another message is [`MisError::Malformed`], however well-formed: when the
/// answer's `MSH/MSH.9/MSG.2` is present it must be `op` (servers are not known to send it;
/// the emulator echoes it), and an answer whose payload block is another message's `_OUT` is
/// named as such.
pub fn parse_answer(op: &str, body: &[u8]) -> Result<Element, MisError> {
    let mut root = parse(body)?;
    if root.name != "ACK" {
        return Err(MisError::Malformed(format!(
            "root element is {}, expected ACK",
            shorten(&root.name)
        )));
    }
    if let Some(answered) = root.text_at(&["MSH", "MSH.9", "MSG.2"])
        && answered != op
    {
        return Err(MisError::Malformed(format!(
            "answer is for message type {}, not {op}",
            shorten(answered)
        )));
    }
    let code = root
        .text_at(&["MSA", "MSA.1"])
        .ok_or_else(|| MisError::Malformed("MSA/MSA.1 missing".into()))?
        .to_owned();
    if code != "AA" {
        let message = root
            .text_at(&["MSA", "MSA.3"])
            .or_else(|| root.text_at(&["ERR", "ERR.3", "CWE.2"]))
            .unwrap_or("")
            .to_owned();
        return Err(MisError::Refused { code, message });
    }
    let out_name = format!("{op}_OUT");
    let Some(position) = root.children.iter().position(|c| c.name == out_name) else {
        return Err(MisError::Malformed(
            match root.children.iter().find(|c| c.name.ends_with("_OUT")) {
                Some(other) => format!(
                    "answer carries {}, not {out_name}: an answer to another message type",
                    shorten(&other.name)
                ),
                None => format!("{out_name} missing"),
            },
        ));
    };
    let out = root.children.swap_remove(position);
    spresult(&out)?;
    Ok(out)
}

/// The `SPRESULT` of an `<op>_OUT` block.
pub fn spresult(out: &Element) -> Result<i64, MisError> {
    let text = out
        .text_of("SPRESULT")
        .ok_or_else(|| MisError::Malformed(format!("{}/SPRESULT missing", out.name)))?;
    text.parse()
        .map_err(|_| MisError::Malformed(format!("{}/SPRESULT is not an integer", out.name)))
}

/// The block itself when its `SPRESULT` is 1, otherwise [`MisError::Failed`].
pub fn check_spresult(out: Element) -> Result<Element, MisError> {
    let result = spresult(&out)?;
    if result == 1 {
        Ok(out)
    } else {
        Err(failure(&out, result))
    }
}

/// The [`MisError::Failed`] a block with `SPRESULT` `result` stands for.
pub fn failure(out: &Element, result: i64) -> MisError {
    MisError::Failed {
        spresult: result,
        comment: out.text_of("SPCOMMENT").unwrap_or("").to_owned(),
        checks: checks(out),
    }
}

/// The first element named `name` anywhere below `element` (depth first, document order).
pub fn find_descendant<'a>(element: &'a Element, name: &str) -> Option<&'a Element> {
    element.children.iter().find_map(|c| {
        if c.name == name {
            Some(c)
        } else {
            find_descendant(c, name)
        }
    })
}

/// `YYYYMMDD`, the protocol's date format.
pub fn format_date(date: chrono::NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Reads `YYYYMMDD` (exactly eight digits).
pub fn parse_date(raw: &str) -> Option<chrono::NaiveDate> {
    let raw = raw.trim();
    if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y%m%d").ok()
}

/// A time from its hour and minute (zero-padded or not); hour 24 and out-of-range values
/// are refused.
pub fn parse_time(hour: &str, minute: &str) -> Option<chrono::NaiveTime> {
    let hour: u32 = hour.trim().parse().ok()?;
    let minute: u32 = minute.trim().parse().ok()?;
    chrono::NaiveTime::from_hms_opt(hour, minute, 0)
}

/// Every `CHECKDATA` of a block; a missing or odd `CHECKCODE` reads as 0.
pub fn checks(out: &Element) -> Vec<MisCheck> {
    out.children_named("CHECKDATA")
        .map(|c| MisCheck {
            code: c
                .text_of("CHECKCODE")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            label: c.text_of("CHECKLABEL").unwrap_or("").to_owned(),
            text: c.text_of("CHECKTEXT").unwrap_or("").to_owned(),
        })
        .collect()
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Reading the fields of one list item (`GETDOCTORLIST`, `SCH`, …); errors name the item
/// and the field.
pub struct Fields<'a> {
    pub item: &'a Element,
}

impl<'a> Fields<'a> {
    pub fn new(item: &'a Element) -> Self {
        Self { item }
    }

    fn missing(&self, field: &str) -> MisError {
        MisError::Malformed(format!("{} item without {field}", self.item.name))
    }

    /// A required non-empty text, trimmed.
    pub fn text(&self, field: &str) -> Result<String, MisError> {
        self.item
            .text_of(field)
            .map(str::to_owned)
            .ok_or_else(|| self.missing(field))
    }

    /// An optional text, trimmed; empty when absent.
    pub fn text_or_empty(&self, field: &str) -> String {
        self.item.text_of(field).unwrap_or("").to_owned()
    }

    /// A required integer.
    pub fn int(&self, field: &str) -> Result<i64, MisError> {
        let raw = self
            .item
            .text_of(field)
            .ok_or_else(|| self.missing(field))?;
        raw.parse().map_err(|_| {
            MisError::Malformed(format!(
                "{} {field} is not an integer: {:?}",
                self.item.name,
                shorten(raw)
            ))
        })
    }

    /// An optional integer; present but not a number is an error.
    pub fn int_opt(&self, field: &str) -> Result<Option<i64>, MisError> {
        match self.item.text_of(field) {
            None => Ok(None),
            Some(_) => self.int(field).map(Some),
        }
    }

    /// A `1`/`0` flag; absent means `default`.
    pub fn flag(&self, field: &str, default: bool) -> Result<bool, MisError> {
        Ok(self.int_opt(field)?.map_or(default, |v| v != 0))
    }

    /// A required `YYYYMMDD` date.
    pub fn date(&self, field: &str) -> Result<chrono::NaiveDate, MisError> {
        let raw = self
            .item
            .text_of(field)
            .ok_or_else(|| self.missing(field))?;
        parse_date(raw).ok_or_else(|| {
            MisError::Malformed(format!(
                "{} {field} is not a YYYYMMDD date: {:?}",
                self.item.name,
                shorten(raw)
            ))
        })
    }

    /// A required time split into an hour and a minute field (`BHOUR`/`BMIN`).
    pub fn time(
        &self,
        hour_field: &str,
        minute_field: &str,
    ) -> Result<chrono::NaiveTime, MisError> {
        let hour = self
            .item
            .text_of(hour_field)
            .ok_or_else(|| self.missing(hour_field))?;
        let minute = self
            .item
            .text_of(minute_field)
            .ok_or_else(|| self.missing(minute_field))?;
        parse_time(hour, minute).ok_or_else(|| {
            MisError::Malformed(format!(
                "{} {hour_field}/{minute_field} is not a time of day: {:?}:{:?}",
                self.item.name,
                shorten(hour),
                shorten(minute)
            ))
        })
    }

    /// A required money amount in kopecks.
    pub fn money(&self, field: &str) -> Result<i64, MisError> {
        let raw = self
            .item
            .text_of(field)
            .ok_or_else(|| self.missing(field))?;
        parse_kopecks(raw).ok_or_else(|| {
            MisError::Malformed(format!(
                "{} {field} is not an amount: {:?}",
                self.item.name,
                shorten(raw)
            ))
        })
    }
}

/// `2500.00` → 250000, `600` → 60000, `99.5` → 9950, `-10.00` → -1000; a comma works as the
/// decimal separator. Parsed as text: no float rounding. More than two decimals is refused
/// unless the extra digits are zeros.
pub fn parse_kopecks(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (whole, fraction) = match digits.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (cents, extra) = fraction.split_at(fraction.len().min(2));
    if extra.bytes().any(|b| b != b'0') {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<i64>().ok()? * 10,
        _ => cents.parse().ok()?,
    };
    let value = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_parsed_without_floats() {
        assert_eq!(parse_kopecks("2500.00"), Some(250_000));
        assert_eq!(parse_kopecks(" 600 "), Some(60_000));
        assert_eq!(parse_kopecks("99.5"), Some(9_950));
        assert_eq!(parse_kopecks("0,07"), Some(7));
        assert_eq!(parse_kopecks("-10.00"), Some(-1_000));
        assert_eq!(parse_kopecks("1.230"), Some(123));
        assert_eq!(parse_kopecks("1.234"), None);
        assert_eq!(parse_kopecks("12a"), None);
        assert_eq!(parse_kopecks(""), None);
        assert_eq!(parse_kopecks("."), None);
        assert_eq!(parse_kopecks("99999999999999999999"), None);
    }

    #[test]
    fn parsing_ignores_namespaces_and_resolves_only_predefined_entities() {
        let doc = br#"<?xml version="1.0"?><a:ACK xmlns:a="http://sdsys.ru/"><!-- c --><X>1 &amp; 2 &#1071;<![CDATA[<z>]]></X><Y/></a:ACK>"#;
        let root = parse(doc).expect("parses");
        assert_eq!(root.name, "ACK");
        assert_eq!(root.text_of("X"), Some("1 & 2 Я<z>"));
        assert!(root.child("Y").is_some());
        assert!(matches!(
            parse(b"<A>&custom;</A>"),
            Err(MisError::Malformed(m)) if m.contains("entity")
        ));
        assert!(matches!(
            parse(b"<!DOCTYPE A [<!ENTITY x \"y\">]><A>&x;</A>"),
            Err(MisError::Malformed(m)) if m == "DTD not allowed"
        ));
        assert!(matches!(parse(b"<A></B>"), Err(MisError::Malformed(_))));
        assert!(matches!(parse(b"<A/><B/>"), Err(MisError::Malformed(_))));
        assert!(matches!(parse(b"<A>\xff</A>"), Err(MisError::Malformed(_))));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(MisError::Malformed(_))
        ));
    }

    #[test]
    fn requests_escape_values_and_carry_the_envelope() {
        let header = Header {
            timestamp: "20250312101530".into(),
            control_id: "6b0e2f7c19a44d0f9c3e51a2d8b7f004".into(),
            filial: Some(2),
        };
        let xml = request("GET_DOCTOR_LIST", &header, |w| {
            w.leaf("DNAME", "<a & b>");
        });
        let root = parse(xml.as_bytes()).expect("own output parses");
        assert_eq!(root.name, "WEB_GET_DOCTOR_LIST");
        assert_eq!(
            root.text_at(&["MSH", "MSH.9", "MSG.2"]),
            Some("GET_DOCTOR_LIST")
        );
        assert_eq!(
            root.text_at(&["MSH", "MSH.7", "TS.1"]),
            Some("20250312101530")
        );
        assert_eq!(root.text_at(&["MSH", "MSH.99"]), Some("2"));
        assert_eq!(
            root.text_at(&["GET_DOCTOR_LIST_IN", "DNAME"]),
            Some("<a & b>")
        );
        assert!(xml.contains("xmlns=\"http://sdsys.ru/\""));
    }

    #[test]
    fn answer_envelope_is_checked_in_order() {
        let refused = br#"<ACK><MSA><MSA.1>AE</MSA.1></MSA><ERR><ERR.3><CWE.2>bad</CWE.2></ERR.3></ERR></ACK>"#;
        assert!(matches!(
            parse_response("X", refused),
            Err(MisError::Refused { code, message }) if code == "AE" && message == "bad"
        ));
        let no_out = br#"<ACK><MSA><MSA.1>AA</MSA.1></MSA></ACK>"#;
        assert!(matches!(
            parse_response("X", no_out),
            Err(MisError::Malformed(m)) if m.contains("X_OUT")
        ));
        let ok = br#"<ACK><MSA><MSA.1>AA</MSA.1></MSA><X_OUT><SPCOMMENT>ok</SPCOMMENT><SPRESULT>1</SPRESULT></X_OUT></ACK>"#;
        assert_eq!(parse_response("X", ok).expect("ok").name, "X_OUT");
    }

    #[test]
    fn an_answer_to_another_message_type_is_malformed() {
        // The echo names another message, though the block is the one asked for.
        let mislabelled = br#"<ACK><MSH><MSH.9><MSG.1>WEB</MSG.1><MSG.2>GET_FILIAL_LIST</MSG.2></MSH.9></MSH><MSA><MSA.1>AA</MSA.1></MSA><GET_DOCTOR_LIST_OUT><SPRESULT>1</SPRESULT></GET_DOCTOR_LIST_OUT></ACK>"#;
        assert!(matches!(
            parse_response("GET_DOCTOR_LIST", mislabelled),
            Err(MisError::Malformed(m)) if m.contains("GET_FILIAL_LIST") && m.contains("not GET_DOCTOR_LIST")
        ));
        // No echo, but another message's block.
        let other_block = br#"<ACK><MSA><MSA.1>AA</MSA.1></MSA><GET_FILIAL_LIST_OUT><SPRESULT>1</SPRESULT></GET_FILIAL_LIST_OUT></ACK>"#;
        assert!(matches!(
            parse_response("GET_DOCTOR_LIST", other_block),
            Err(MisError::Malformed(m)) if m.contains("GET_FILIAL_LIST_OUT") && m.contains("another message type")
        ));
        // The right echo, or none, or an empty one, is fine.
        for answer in [
            &br#"<ACK><MSH><MSH.9><MSG.2>X</MSG.2></MSH.9></MSH><MSA><MSA.1>AA</MSA.1></MSA><X_OUT><SPRESULT>1</SPRESULT></X_OUT></ACK>"#[..],
            br#"<ACK><MSH><MSH.9><MSG.2></MSG.2></MSH.9></MSH><MSA><MSA.1>AA</MSA.1></MSA><X_OUT><SPRESULT>1</SPRESULT></X_OUT></ACK>"#,
        ] {
            assert_eq!(parse_response("X", answer).expect("ok").name, "X_OUT");
        }
    }
}
