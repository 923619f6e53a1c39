//! The message tables behind the codec: parsed once from `schema.txt` (a small DSL described at
//! the top of that file) into [`Schema`], which the generic decoder and encoder walk.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The value type of a field (of each element for repeated fields, of each value for maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// `resource.Quantity`: message `{ string string = 1 }`, JSON string.
    Quantity,
    /// `metav1.Time`: `{ int64 seconds = 1; int32 nanos = 2 }`, JSON RFC 3339 with seconds.
    Time,
    /// `metav1.MicroTime`: same wire shape as Time, JSON with 6 fractional digits.
    MicroTime,
    /// `intstr.IntOrString`: `{ int64 type = 1; int32 intVal = 2; string strVal = 3 }`.
    IntOrString,
    /// `metav1.FieldsV1`: `{ bytes Raw = 1 }` holding JSON, shown as that JSON value.
    FieldsV1,
    /// Another message, by index into [`Schema::messages`].
    Message(usize),
}

impl Ty {
    /// The protobuf wire type one value of this type is written with.
    pub(crate) fn wire_type(self) -> u8 {
        match self {
            Ty::Bool | Ty::Int32 | Ty::Int64 => 0,
            Ty::Double => 1,
            _ => 2,
        }
    }
}

/// Singular, repeated, or `map<string, T>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Single,
    Repeated,
    Map,
}

/// How a field shows in JSON, following its Go type and JSON tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Non-pointer with `omitempty`: a zero scalar is left out of the JSON.
    OmitEmpty,
    /// Pointer: gogo writes it only when non-nil, so presence on the wire means "set", even to zero.
    Pointer,
    /// No `omitempty`: always shown; a scalar missing from the wire shows its zero value.
    Required,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub number: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub shape: Shape,
    pub presence: Presence,
    /// Embedded struct whose fields appear directly in the parent JSON object.
    pub inline: bool,
}

#[derive(Debug)]
pub(crate) struct Message {
    pub name: &'static str,
    /// In declaration (and JSON output) order.
    pub fields: Vec<Field>,
    /// Indices into `fields`, sorted by field number (the encoding order).
    pub by_number: Vec<usize>,
}

impl Message {
    /// Index into `fields` of the field with this number.
    pub(crate) fn field_index(&self, number: u32) -> Option<usize> {
        self.by_number
            .binary_search_by_key(&number, |&i| self.fields[i].number)
            .ok()
            .map(|i| self.by_number[i])
    }
}

#[derive(Debug)]
pub(crate) struct Schema {
    pub messages: Vec<Message>,
    kinds: HashMap<(&'static str, &'static str), usize>,
    /// Kinds served under every apiVersion (DeleteOptions, Status).
    any_version: HashMap<&'static str, usize>,
}

impl Schema {
    /// The built-in schema.
    pub(crate) fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            // The text is compiled in and checked by the unit tests, so a failure here is a
            // programming error in schema.txt, not a runtime condition.
            Schema::parse(include_str!("schema.txt")).expect("protobuf/schema.txt is invalid")
        })
    }

    /// The message for a top-level apiVersion/kind.
    pub(crate) fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds.get(&(api_version, kind)).copied().or_else(|| {
            if api_version.is_empty() {
                None
            } else {
                self.any_version.get(kind).copied()
            }
        })
    }

    /// Parses the DSL documented at the top of `schema.txt`.
    pub(crate) fn parse(text: &'static str) -> Result<Schema, String> {
        // Pass 1: message names, so fields can refer to messages declared later.
        let mut by_name: HashMap<&'static str, usize> = HashMap::new();
        let mut names = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("message") {
                let name = words
                    .next()
                    .ok_or_else(|| format!("message without name: {line}"))?;
                if by_name.insert(name, names.len()).is_some() {
                    return Err(format!("message {name} declared twice"));
                }
                names.push(name);
            }
        }
        let mut messages: Vec<Message> = names
            .iter()
            .map(|&name| Message {
                name,
                fields: Vec::new(),
                by_number: Vec::new(),
            })
            .collect();

        // Pass 2: fields and kinds.
        let mut kinds = HashMap::new();
        let mut any_version = HashMap::new();
        let mut current: Option<usize> = None;
        let mut done = vec![false; messages.len()];
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&'static str> = line.split_whitespace().collect();
            let err = |what: &str| format!("schema.txt line {}: {what}: {line}", lineno + 1);
            match words[0] {
                "kind" => {
                    let [_, api_version, kind, message] = words[..] else {
                        return Err(err("expected `kind <apiVersion> <Kind> <Message>`"));
                    };
                    let idx = *by_name.get(message).ok_or_else(|| err("unknown message"))?;
                    let previous = if api_version == "*" {
                        any_version.insert(kind, idx)
                    } else {
                        kinds.insert((api_version, kind), idx)
                    };
                    if previous.is_some() {
                        return Err(err("kind declared twice"));
                    }
                }
                "message" => {
                    let idx = by_name[words[1]];
                    if let Some(prev) = current {
                        done[prev] = true;
                    }
                    current = Some(idx);
                    match words[2..] {
                        [] => {}
                        [":", base] => {
                            let b = *by_name
                                .get(base)
                                .ok_or_else(|| err("unknown base message"))?;
                            if !done[b] {
                                return Err(err("base message must be declared earlier"));
                            }
                            messages[idx].fields = messages[b].fields.clone();
                        }
                        _ => return Err(err("expected `message <Name> [: <Base>]`")),
                    }
                }
                _ => {
                    let idx = current.ok_or_else(|| err("field outside a message"))?;
                    let [number, name, ty] = words[..] else {
                        return Err(err("expected `<number> <name> <type>`"));
                    };
                    let number: u32 = number.parse().map_err(|_| err("bad field number"))?;
                    if number == 0 || number >= 1 << 29 {
                        return Err(err("field number out of range"));
                    }
                    let field = parse_field(number, name, ty, &by_name).map_err(|e| err(&e))?;
                    let fields = &mut messages[idx].fields;
                    if let Some(existing) = fields.iter_mut().find(|f| f.number == number) {
                        // Overriding a field copied from the base message.
                        *existing = field;
                    } else {
                        if fields.iter().any(|f| f.json == field.json) {
                            return Err(err("duplicate JSON name"));
                        }
                        fields.push(field);
                    }
                }
            }
        }
        for message in &mut messages {
            let mut order: Vec<usize> = (0..message.fields.len()).collect();
            order.sort_by_key(|&i| message.fields[i].number);
            message.by_number = order;
        }
        Ok(Schema {
            messages,
            kinds,
            any_version,
        })
    }
}

fn parse_field(
    number: u32,
    name: &'static str,
    ty: &'static str,
    by_name: &HashMap<&'static str, usize>,
) -> Result<Field, String> {
    let (inline, name) = match name.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let (presence, json) = if let Some(rest) = name.strip_suffix('?') {
        (Presence::Pointer, rest)
    } else if let Some(rest) = name.strip_suffix('!') {
        (Presence::Required, rest)
    } else {
        (Presence::OmitEmpty, name)
    };
    let (shape, elem) = if let Some(rest) = ty.strip_prefix("[]") {
        (Shape::Repeated, rest)
    } else if let Some(rest) = ty.strip_prefix("map<").and_then(|r| r.strip_suffix('>')) {
        (Shape::Map, rest)
    } else {
        (Shape::Single, ty)
    };
    let ty = match elem {
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "bool" => Ty::Bool,
        "int32" => Ty::Int32,
        "int64" => Ty::Int64,
        "double" => Ty::Double,
        "Quantity" => Ty::Quantity,
        "Time" => Ty::Time,
        "MicroTime" => Ty::MicroTime,
        "IntOrString" => Ty::IntOrString,
        "FieldsV1" => Ty::FieldsV1,
        other => Ty::Message(
            *by_name
                .get(other)
                .ok_or_else(|| format!("unknown type {other}"))?,
        ),
    };
    if inline && (shape != Shape::Single || !matches!(ty, Ty::Message(_))) {
        return Err("only a singular message can be inlined".to_string());
    }
    if shape == Shape::Map && !matches!(ty, Ty::String | Ty::Bytes | Ty::Quantity | Ty::Message(_))
    {
        return Err("map values must be string, bytes, Quantity or a message".to_string());
    }
    Ok(Field {
        number,
        json,
        ty,
        shape,
        presence,
        inline,
    })
}
