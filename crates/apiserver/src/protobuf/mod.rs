//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) ⇄ JSON for the built-in kinds.
//!
//! kubectl's generators and client-go programs send request bodies of built-in kinds as protobuf
//! and may ask for protobuf responses. A body is the 4 magic bytes `k8s\0` followed by a
//! `runtime.Unknown` message (`typeMeta = 1 {apiVersion = 1, kind = 2}`, `raw = 2`,
//! `contentEncoding = 3`, `contentType = 4`) whose `raw` bytes are the object's message.
//!
//! [`decode`] turns such a body into the JSON object kube-apiserver's JSON would show, and
//! [`encode`] does the reverse (lists included; watch events are out of scope). Both walk one
//! table per message (field number, JSON name, type, presence), parsed once from the DSL in
//! `protobuf/schema.txt` with the upstream field numbers; see `docs/protobuf.md` for what is
//! covered and how zero values and `omitempty` are handled.

mod codec;
mod schema;
mod wire;

use serde_json::{Map, Value};

use crate::protobuf::schema::Schema;
use crate::protobuf::wire::{Reader, WIRE_LEN, put_bytes};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a body could not be decoded or an object could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the magic bytes `k8s\0` (answer 400).
    #[error("protobuf body does not start with the k8s\\0 magic prefix")]
    BadMagic,
    /// A varint is cut off by the end of its message or longer than 10 bytes (answer 400).
    #[error("malformed varint at byte {offset}")]
    MalformedVarint { offset: usize },
    /// A length-delimited or fixed-width value runs past the end of its enclosing message
    /// (answer 400).
    #[error("truncated protobuf at byte {offset}: {needed} bytes needed, {available} available")]
    Truncated {
        offset: usize,
        needed: u64,
        available: usize,
    },
    /// A field key with field number 0 (or ≥ 2^29), or a group / undefined wire type (answer 400).
    #[error("malformed field key at byte {offset}: {reason}")]
    MalformedKey { offset: usize, reason: &'static str },
    /// The envelope names an apiVersion/kind this module has no schema for (answer 415, or
    /// fall back to JSON when choosing a response type; see [`supports`]).
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    /// A known field arrived with a wire type that does not fit its declared type (answer 400).
    #[error("field {message}.{field} (number {number}) has wire type {got}, expected {expected}")]
    WrongWireType {
        message: &'static str,
        field: &'static str,
        number: u32,
        got: u8,
        expected: u8,
    },
    /// A string field or map key is not valid UTF-8 (answer 400).
    #[error("field {message}.{field} is not valid UTF-8")]
    InvalidUtf8 {
        message: &'static str,
        field: &'static str,
    },
    /// A well-formed value that cannot be represented: a timestamp out of range, an IntOrString
    /// of unknown type, FieldsV1 that is not JSON, a non-finite double (answer 400).
    #[error("field {message}.{field}: {reason}")]
    InvalidValue {
        message: &'static str,
        field: &'static str,
        reason: String,
    },
    /// `runtime.Unknown.contentEncoding` is set (e.g. gzip), which kube-apiserver never sends
    /// and this module does not implement (answer 415).
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedContentEncoding(String),
    /// Encoding only: the JSON object does not fit the schema (a string where a number belongs,
    /// bad base64 or RFC 3339 time, no apiVersion/kind). `path` is JSON-path-like, e.g.
    /// `spec.containers[0].ports[1].containerPort`.
    #[error("cannot encode {path} as protobuf: {reason}")]
    InvalidJson { path: String, reason: String },
}

/// Whether [`encode`]/[`decode`] know `apiVersion`/`kind`. Use it to decide whether a response
/// can be protobuf or must fall back to JSON.
pub fn supports(api_version: &str, kind: &str) -> bool {
    Schema::get().kind(api_version, kind).is_some()
}

/// Decodes a protobuf request body (magic + `runtime.Unknown` envelope) into the JSON object
/// kube-apiserver's JSON would show, with `apiVersion` and `kind` set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::BadMagic)?;
    let unknown = decode_unknown(envelope, MAGIC.len())?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(
            unknown.content_encoding,
        ));
    }
    let schema = Schema::get();
    let idx = schema
        .kind(&unknown.api_version, &unknown.kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        })?;
    let fields = codec::decode_message(schema, idx, unknown.raw, unknown.raw_offset)?;
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".to_string(), Value::String(unknown.api_version));
    out.insert("kind".to_string(), Value::String(unknown.kind));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Encodes a JSON object (with `apiVersion` and `kind`; `…List` kinds with `items` included)
/// as a protobuf body: magic + `runtime.Unknown` envelope.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtobufError> {
    let Value::Object(map) = obj else {
        return Err(ProtobufError::InvalidJson {
            path: String::new(),
            reason: "expected a JSON object".to_string(),
        });
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| ProtobufError::InvalidJson {
                path: key.to_string(),
                reason: "expected a string".to_string(),
            })
    };
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    let schema = Schema::get();
    let idx = schema
        .kind(api_version, kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    let mut raw = Vec::new();
    codec::encode_message(schema, idx, map, &mut raw, "")?;

    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    // gogo writes the empty contentEncoding and contentType strings too.
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// The parts of `runtime.Unknown` this module uses.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    raw_offset: usize,
    content_encoding: String,
}

fn decode_unknown(buf: &[u8], base: usize) -> Result<Unknown<'_>, ProtobufError> {
    const MESSAGE: &str = "runtime.Unknown";
    let string = |bytes: &[u8], field: &'static str| {
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 {
            message: MESSAGE,
            field,
        })
    };
    let mut unknown = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        raw_offset: base,
        content_encoding: String::new(),
    };
    let mut reader = Reader::new(buf, base);
    while !reader.at_end() {
        let (number, wire_type) = reader.key()?;
        if !(1..=4).contains(&number) {
            reader.skip(wire_type)?;
            continue;
        }
        if wire_type != WIRE_LEN {
            let field = ["typeMeta", "raw", "contentEncoding", "contentType"][number as usize - 1];
            return Err(ProtobufError::WrongWireType {
                message: MESSAGE,
                field,
                number,
                got: wire_type,
                expected: WIRE_LEN,
            });
        }
        let (bytes, offset) = reader.len_delimited()?;
        match number {
            1 => {
                let mut type_meta = Reader::new(bytes, offset);
                while !type_meta.at_end() {
                    match type_meta.key()? {
                        (1, WIRE_LEN) => {
                            unknown.api_version =
                                string(type_meta.len_delimited()?.0, "typeMeta.apiVersion")?;
                        }
                        (2, WIRE_LEN) => {
                            unknown.kind = string(type_meta.len_delimited()?.0, "typeMeta.kind")?;
                        }
                        (_, wire_type) => type_meta.skip(wire_type)?,
                    }
                }
            }
            2 => {
                unknown.raw = bytes;
                unknown.raw_offset = offset;
            }
            3 => unknown.content_encoding = string(bytes, "contentEncoding")?,
            _ => {}
        }
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests;
