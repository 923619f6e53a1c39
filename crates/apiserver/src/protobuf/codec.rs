//! The generic decoder and encoder: walk a [`Schema`] message table against wire bytes or JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::schema::{Field, Presence, Schema, Shape, Ty};
use super::wire::{Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, put_bytes, put_int, put_key};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

// ------------------------------------------------------------------------------------- decode

/// What has been read for one field of a message.
enum Slot {
    Empty,
    Single(Value),
    Repeated(Vec<Value>),
    Map(Map<String, Value>),
}

/// Decodes `buf` (starting at absolute offset `base`) as message `idx` into a JSON object.
pub(crate) fn decode_message(
    schema: &Schema,
    idx: usize,
    buf: &[u8],
    base: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let message = &schema.messages[idx];
    let mut slots: Vec<Slot> = message.fields.iter().map(|_| Slot::Empty).collect();
    let mut reader = Reader::new(buf, base);
    while !reader.at_end() {
        let (number, wire_type) = reader.key()?;
        let Some(fi) = message.field_index(number) else {
            reader.skip(wire_type)?;
            continue;
        };
        let field = &message.fields[fi];
        let wrong = |expected: u8| ProtobufError::WrongWireType {
            message: message.name,
            field: field.json,
            number,
            got: wire_type,
            expected,
        };
        match field.shape {
            Shape::Map => {
                if wire_type != WIRE_LEN {
                    return Err(wrong(WIRE_LEN));
                }
                let (entry, offset) = reader.len_delimited()?;
                let (key, value) = decode_map_entry(schema, message.name, field, entry, offset)?;
                if !matches!(slots[fi], Slot::Map(_)) {
                    slots[fi] = Slot::Map(Map::new());
                }
                if let Slot::Map(map) = &mut slots[fi] {
                    map.insert(key, value);
                }
            }
            Shape::Repeated => {
                let mut values = Vec::new();
                let packable = matches!(field.ty, Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double);
                if packable && wire_type == WIRE_LEN {
                    let (packed, offset) = reader.len_delimited()?;
                    let mut inner = Reader::new(packed, offset);
                    while !inner.at_end() {
                        values.push(read_scalar(schema, message.name, field, &mut inner)?);
                    }
                } else if wire_type == field.ty.wire_type() {
                    let value = read_value(schema, message.name, field, &mut reader)?;
                    // An element that decodes to "nothing" (a zero Time) still occupies a slot.
                    values.push(value.unwrap_or(Value::Null));
                } else {
                    return Err(wrong(field.ty.wire_type()));
                }
                if !matches!(slots[fi], Slot::Repeated(_)) {
                    slots[fi] = Slot::Repeated(Vec::new());
                }
                if let Slot::Repeated(all) = &mut slots[fi] {
                    all.extend(values);
                }
            }
            Shape::Single => {
                if wire_type != field.ty.wire_type() {
                    return Err(wrong(field.ty.wire_type()));
                }
                match read_value(schema, message.name, field, &mut reader)? {
                    Some(Value::Object(new)) => {
                        // Repeated occurrences of a message field merge, as in protobuf.
                        if let Slot::Single(Value::Object(existing)) = &mut slots[fi] {
                            existing.extend(new);
                        } else {
                            slots[fi] = Slot::Single(Value::Object(new));
                        }
                    }
                    Some(value) => slots[fi] = Slot::Single(value),
                    None => slots[fi] = Slot::Empty,
                }
            }
        }
    }

    let mut out = Map::new();
    for (field, slot) in message.fields.iter().zip(slots) {
        if field.inline {
            let inner = match slot {
                Slot::Single(Value::Object(inner)) => inner,
                // gogo always writes embedded structs; when absent, show the empty struct's JSON.
                _ => match field.ty {
                    Ty::Message(sub) => decode_message(schema, sub, &[], base)?,
                    _ => Map::new(),
                },
            };
            out.extend(inner);
            continue;
        }
        match slot {
            Slot::Single(value) => {
                if field.presence == Presence::OmitEmpty && is_zero_scalar(field.ty, &value) {
                    continue;
                }
                out.insert(field.json.to_string(), value);
            }
            Slot::Repeated(values) => {
                out.insert(field.json.to_string(), Value::Array(values));
            }
            Slot::Map(map) => {
                out.insert(field.json.to_string(), Value::Object(map));
            }
            Slot::Empty => {
                if field.presence == Presence::Required
                    && field.shape == Shape::Single
                    && let Some(zero) = zero_scalar(field.ty)
                {
                    out.insert(field.json.to_string(), zero);
                }
            }
        }
    }
    Ok(out)
}

/// A zero value that Go's `omitempty` leaves out (scalars only; structs are never "empty").
fn is_zero_scalar(ty: Ty, value: &Value) -> bool {
    match (ty, value) {
        (Ty::String | Ty::Bytes, Value::String(s)) => s.is_empty(),
        (Ty::Bool, Value::Bool(b)) => !b,
        (Ty::Int32 | Ty::Int64 | Ty::Double, Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn zero_scalar(ty: Ty) -> Option<Value> {
    match ty {
        Ty::String | Ty::Bytes => Some(Value::String(String::new())),
        Ty::Bool => Some(Value::Bool(false)),
        Ty::Int32 | Ty::Int64 => Some(Value::from(0)),
        Ty::Double => Some(Value::from(0.0)),
        _ => None,
    }
}

fn decode_map_entry(
    schema: &Schema,
    message: &'static str,
    field: &Field,
    entry: &[u8],
    base: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut reader = Reader::new(entry, base);
    let mut key = String::new();
    let mut value = None;
    while !reader.at_end() {
        let (number, wire_type) = reader.key()?;
        let expected = match number {
            1 => WIRE_LEN,
            2 => field.ty.wire_type(),
            _ => {
                reader.skip(wire_type)?;
                continue;
            }
        };
        if wire_type != expected {
            return Err(ProtobufError::WrongWireType {
                message,
                field: field.json,
                number,
                got: wire_type,
                expected,
            });
        }
        if number == 1 {
            let (bytes, _) = reader.len_delimited()?;
            key = utf8(bytes, message, field.json)?;
        } else {
            value = read_value(schema, message, field, &mut reader)?;
        }
    }
    let value = match value {
        Some(value) => value,
        None => match field.ty {
            Ty::Quantity => Value::String("0".to_string()),
            Ty::Message(sub) => Value::Object(decode_message(schema, sub, &[], base)?),
            _ => Value::String(String::new()),
        },
    };
    Ok((key, value))
}

fn utf8(bytes: &[u8], message: &'static str, field: &'static str) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field })
}

/// One varint or fixed64 element (the packable types).
fn read_scalar(
    schema: &Schema,
    message: &'static str,
    field: &Field,
    reader: &mut Reader<'_>,
) -> Result<Value, ProtobufError> {
    Ok(read_value(schema, message, field, reader)?.unwrap_or(Value::Null))
}

/// One value of `field.ty`, whose wire type the caller has checked. `None` = JSON null / absent
/// (a zero Time, an empty FieldsV1).
fn read_value(
    schema: &Schema,
    message: &'static str,
    field: &Field,
    reader: &mut Reader<'_>,
) -> Result<Option<Value>, ProtobufError> {
    let invalid = |reason: String| ProtobufError::InvalidValue {
        message,
        field: field.json,
        reason,
    };
    Ok(Some(match field.ty {
        Ty::Bool => Value::Bool(reader.varint()? != 0),
        // int32 values are sign-extended on the wire; Go truncates to 32 bits.
        Ty::Int32 => Value::from(reader.varint()? as i64 as i32),
        Ty::Int64 => Value::from(reader.varint()? as i64),
        Ty::Double => {
            let value = f64::from_bits(reader.fixed64()?);
            Value::Number(Number::from_f64(value).ok_or_else(|| invalid(format!("{value}")))?)
        }
        Ty::String => Value::String(utf8(reader.len_delimited()?.0, message, field.json)?),
        Ty::Bytes => Value::String(BASE64.encode(reader.len_delimited()?.0)),
        Ty::Quantity => {
            let (bytes, offset) = reader.len_delimited()?;
            let mut inner = Reader::new(bytes, offset);
            let mut quantity = String::from("0");
            while !inner.at_end() {
                let (number, wire_type) = inner.key()?;
                if number == 1 && wire_type == WIRE_LEN {
                    quantity = utf8(inner.len_delimited()?.0, message, field.json)?;
                } else {
                    inner.skip(wire_type)?;
                }
            }
            if quantity.is_empty() {
                quantity.push('0');
            }
            Value::String(quantity)
        }
        Ty::Time | Ty::MicroTime => {
            let (bytes, offset) = reader.len_delimited()?;
            let (seconds, nanos) = read_timestamp(bytes, offset)?;
            if bytes.is_empty() || (seconds == GO_ZERO_TIME_SECONDS && nanos == 0) {
                return Ok(None);
            }
            if !(0..1_000_000_000).contains(&nanos) {
                return Err(invalid(format!("nanos {nanos} out of range")));
            }
            let Some(time) = DateTime::<Utc>::from_timestamp(seconds, nanos as u32) else {
                return Err(invalid(format!("seconds {seconds} out of range")));
            };
            Value::String(if field.ty == Ty::Time {
                // Go truncates Time to seconds when reading protobuf.
                time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            })
        }
        Ty::IntOrString => {
            let (bytes, offset) = reader.len_delimited()?;
            let mut inner = Reader::new(bytes, offset);
            let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, String::new());
            while !inner.at_end() {
                match inner.key()? {
                    (1, WIRE_VARINT) => kind = inner.varint()?,
                    (2, WIRE_VARINT) => int_val = inner.varint()? as i64 as i32,
                    (3, WIRE_LEN) => str_val = utf8(inner.len_delimited()?.0, message, field.json)?,
                    (_, wire_type) => inner.skip(wire_type)?,
                }
            }
            match kind {
                0 => Value::from(int_val),
                1 => Value::String(str_val),
                other => return Err(invalid(format!("IntOrString type {other}"))),
            }
        }
        Ty::FieldsV1 => {
            let (bytes, offset) = reader.len_delimited()?;
            let mut inner = Reader::new(bytes, offset);
            let mut raw: &[u8] = &[];
            while !inner.at_end() {
                let (number, wire_type) = inner.key()?;
                if number == 1 && wire_type == WIRE_LEN {
                    raw = inner.len_delimited()?.0;
                } else {
                    inner.skip(wire_type)?;
                }
            }
            if raw.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(raw)
                .map_err(|e| invalid(format!("FieldsV1 is not JSON: {e}")))?
        }
        Ty::Message(sub) => {
            let (bytes, offset) = reader.len_delimited()?;
            Value::Object(decode_message(schema, sub, bytes, offset)?)
        }
    }))
}

fn read_timestamp(bytes: &[u8], base: usize) -> Result<(i64, i64), ProtobufError> {
    let mut reader = Reader::new(bytes, base);
    let (mut seconds, mut nanos) = (0i64, 0i64);
    while !reader.at_end() {
        match reader.key()? {
            (1, WIRE_VARINT) => seconds = reader.varint()? as i64,
            (2, WIRE_VARINT) => nanos = i64::from(reader.varint()? as i64 as i32),
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    Ok((seconds, nanos))
}

// ------------------------------------------------------------------------------------- encode

/// Encodes the JSON object `obj` as message `idx`, appending to `out`. JSON keys without a field
/// in the schema are not encoded (as kube-apiserver prunes unknown fields).
pub(crate) fn encode_message(
    schema: &Schema,
    idx: usize,
    obj: &Map<String, Value>,
    out: &mut Vec<u8>,
    path: &str,
) -> Result<(), ProtobufError> {
    let message = &schema.messages[idx];
    for &fi in &message.by_number {
        let field = &message.fields[fi];
        if field.inline {
            if let Ty::Message(sub) = field.ty {
                let mut inner = Vec::new();
                encode_message(schema, sub, obj, &mut inner, path)?;
                put_bytes(out, field.number, &inner);
            }
            continue;
        }
        let Some(value) = obj.get(field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        let child = || format!("{path}.{}", field.json);
        match field.shape {
            Shape::Single => encode_value(schema, field, value, out, &child())?,
            Shape::Repeated => {
                let Value::Array(items) = value else {
                    return Err(invalid_json(&child(), "expected an array"));
                };
                for (i, item) in items.iter().enumerate() {
                    encode_value(schema, field, item, out, &format!("{}[{i}]", child()))?;
                }
            }
            Shape::Map => {
                let Value::Object(map) = value else {
                    return Err(invalid_json(&child(), "expected an object"));
                };
                // gogo writes map entries sorted by key; do the same for stable output.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    let entry_path = format!("{}[{key:?}]", child());
                    encode_value_number(schema, field, 2, &map[key], &mut entry, &entry_path)?;
                    put_bytes(out, field.number, &entry);
                }
            }
        }
    }
    Ok(())
}

fn invalid_json(path: &str, reason: &str) -> ProtobufError {
    let path = path.strip_prefix('.').unwrap_or(path);
    ProtobufError::InvalidJson {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn encode_value(
    schema: &Schema,
    field: &Field,
    value: &Value,
    out: &mut Vec<u8>,
    path: &str,
) -> Result<(), ProtobufError> {
    encode_value_number(schema, field, field.number, value, out, path)
}

/// Writes one value of `field.ty` as field `number`.
fn encode_value_number(
    schema: &Schema,
    field: &Field,
    number: u32,
    value: &Value,
    out: &mut Vec<u8>,
    path: &str,
) -> Result<(), ProtobufError> {
    match field.ty {
        Ty::String => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid_json(path, "expected a string"))?;
            put_bytes(out, number, s.as_bytes());
        }
        Ty::Bytes => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid_json(path, "expected a base64 string"))?;
            let bytes = BASE64
                .decode(s)
                .map_err(|_| invalid_json(path, "invalid base64"))?;
            put_bytes(out, number, &bytes);
        }
        Ty::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| invalid_json(path, "expected a boolean"))?;
            put_int(out, number, i64::from(b));
        }
        Ty::Int32 => {
            let n = value
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| invalid_json(path, "expected a 32-bit integer"))?;
            put_int(out, number, i64::from(n));
        }
        Ty::Int64 => {
            let n = value
                .as_i64()
                .ok_or_else(|| invalid_json(path, "expected a 64-bit integer"))?;
            put_int(out, number, n);
        }
        Ty::Double => {
            let f = value
                .as_f64()
                .ok_or_else(|| invalid_json(path, "expected a number"))?;
            put_key(out, number, WIRE_FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Ty::Quantity => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid_json(path, "expected a quantity string")),
            };
            let mut inner = Vec::new();
            put_bytes(&mut inner, 1, s.as_bytes());
            put_bytes(out, number, &inner);
        }
        Ty::Time | Ty::MicroTime => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid_json(path, "expected an RFC 3339 time"))?;
            let time = DateTime::parse_from_rfc3339(s)
                .map_err(|_| invalid_json(path, "expected an RFC 3339 time"))?;
            let mut inner = Vec::new();
            put_int(&mut inner, 1, time.timestamp());
            put_int(&mut inner, 2, i64::from(time.timestamp_subsec_nanos()));
            put_bytes(out, number, &inner);
        }
        Ty::IntOrString => {
            let mut inner = Vec::new();
            match value {
                Value::Number(n) => {
                    let n = n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| invalid_json(path, "expected a 32-bit integer"))?;
                    put_int(&mut inner, 1, 0);
                    put_int(&mut inner, 2, i64::from(n));
                    put_bytes(&mut inner, 3, b"");
                }
                Value::String(s) => {
                    put_int(&mut inner, 1, 1);
                    put_int(&mut inner, 2, 0);
                    put_bytes(&mut inner, 3, s.as_bytes());
                }
                _ => return Err(invalid_json(path, "expected an integer or a string")),
            }
            put_bytes(out, number, &inner);
        }
        Ty::FieldsV1 => {
            let raw = serde_json::to_vec(value).map_err(|e| invalid_json(path, &e.to_string()))?;
            let mut inner = Vec::new();
            put_bytes(&mut inner, 1, &raw);
            put_bytes(out, number, &inner);
        }
        Ty::Message(sub) => {
            let Value::Object(obj) = value else {
                return Err(invalid_json(path, "expected an object"));
            };
            let mut inner = Vec::new();
            encode_message(schema, sub, obj, &mut inner, path)?;
            put_bytes(out, number, &inner);
        }
    }
    Ok(())
}
