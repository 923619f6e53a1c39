//! Unit tests of the schema DSL and the wire reader; end-to-end tests live in
//! `crates/apiserver/tests/protobuf.rs`.

use super::ProtobufError;
use super::schema::{Presence, Schema, Shape, Ty};
use super::wire::{Reader, put_int, put_varint};

#[test]
fn builtin_schema_parses_and_resolves_every_kind() {
    let schema = Schema::get();
    for (api_version, kind) in [
        ("v1", "Namespace"),
        ("v1", "PodList"),
        ("v1", "Event"),
        ("storage.k8s.io/v1", "CSIStorageCapacity"),
        ("coordination.k8s.io/v1", "Lease"),
        ("events.k8s.io/v1", "Event"),
        ("v1", "DeleteOptions"),
        ("storage.k8s.io/v1", "DeleteOptions"),
        ("meta.k8s.io/v1", "Status"),
    ] {
        assert!(
            schema.kind(api_version, kind).is_some(),
            "{api_version} {kind}"
        );
    }
    assert!(schema.kind("v1", "Service").is_none());
    assert!(schema.kind("", "DeleteOptions").is_none());
    let core = schema.kind("v1", "Event").unwrap();
    let events = schema.kind("events.k8s.io/v1", "Event").unwrap();
    assert_ne!(core, events);
}

#[test]
fn base_messages_are_copied_and_overridden() {
    let schema = Schema::get();
    let find = |name: &str| schema.messages.iter().find(|m| m.name == name).unwrap();
    let container = find("Container");
    let common = find("EphemeralContainerCommon");
    assert_eq!(container.fields.len(), common.fields.len());
    let iscsi = find("ISCSIPersistentVolumeSource");
    let secret_ref = &iscsi.fields[iscsi.field_index(10).unwrap()];
    assert_eq!(secret_ref.json, "secretRef");
    let Ty::Message(target) = secret_ref.ty else {
        panic!("secretRef is a message")
    };
    assert_eq!(schema.messages[target].name, "SecretReference");
    // The override keeps the declaration position and the other fields.
    assert_eq!(iscsi.fields.len(), find("ISCSIVolumeSource").fields.len());
}

#[test]
fn field_marks_are_parsed() {
    let schema = Schema::get();
    let spec = schema
        .messages
        .iter()
        .find(|m| m.name == "PodSpec")
        .unwrap();
    let field = |n| &spec.fields[spec.field_index(n).unwrap()];
    assert_eq!(field(2).json, "containers");
    assert_eq!(field(2).shape, Shape::Repeated);
    assert_eq!(field(2).presence, Presence::Required);
    assert_eq!(field(4).presence, Presence::Pointer);
    assert_eq!(field(7).shape, Shape::Map);
    assert_eq!(field(6).presence, Presence::OmitEmpty);
    let volume = schema.messages.iter().find(|m| m.name == "Volume").unwrap();
    assert!(volume.fields[volume.field_index(2).unwrap()].inline);
}

#[test]
fn dsl_errors_are_reported() {
    assert!(
        Schema::parse("message A\n  1 x Nope\n")
            .unwrap_err()
            .contains("unknown type")
    );
    assert!(
        Schema::parse("message A\nmessage A\n")
            .unwrap_err()
            .contains("twice")
    );
    assert!(
        Schema::parse("message A\n  0 x string\n")
            .unwrap_err()
            .contains("out of range")
    );
    assert!(
        Schema::parse("message A\n  1 x string\n  2 x bool\n")
            .unwrap_err()
            .contains("duplicate")
    );
    assert!(
        Schema::parse("message A : B\nmessage B\n  1 x string\n")
            .unwrap_err()
            .contains("earlier")
    );
    assert!(
        Schema::parse("kind v1 X Missing\n")
            .unwrap_err()
            .contains("unknown message")
    );
    assert!(
        Schema::parse("message A\n  1 *x string\n")
            .unwrap_err()
            .contains("inlined")
    );
    assert!(
        Schema::parse("message A\n  1 x map<Time>\n")
            .unwrap_err()
            .contains("map values")
    );
    assert!(
        Schema::parse("  1 x string\n")
            .unwrap_err()
            .contains("outside")
    );
}

#[test]
fn varints_round_trip_at_the_edges() {
    for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        let mut reader = Reader::new(&out, 0);
        assert_eq!(reader.varint().unwrap(), value);
        assert!(reader.at_end());
    }
    // Negative integers take 10 bytes and come back sign-extended.
    let mut out = Vec::new();
    put_int(&mut out, 1, -2);
    assert_eq!(out.len(), 11);
    let mut reader = Reader::new(&out, 0);
    assert_eq!(reader.key().unwrap(), (1, 0));
    assert_eq!(reader.varint().unwrap() as i64, -2);
}

#[test]
fn malformed_varints_and_keys_are_rejected() {
    let mut reader = Reader::new(&[0x80, 0x80], 7);
    assert_eq!(
        reader.varint(),
        Err(ProtobufError::MalformedVarint { offset: 7 })
    );
    let eleven = [0xff; 11];
    assert!(matches!(
        Reader::new(&eleven, 0).varint(),
        Err(ProtobufError::MalformedVarint { .. })
    ));
    let tenth_too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert!(matches!(
        Reader::new(&tenth_too_big, 0).varint(),
        Err(ProtobufError::MalformedVarint { .. })
    ));
    // Field number 0 and group wire types.
    assert!(matches!(
        Reader::new(&[0x02], 0).key(),
        Err(ProtobufError::MalformedKey { .. })
    ));
    assert!(matches!(
        Reader::new(&[0x0b], 0).key(),
        Err(ProtobufError::MalformedKey { .. })
    ));
    // A length prefix larger than what is left.
    let mut reader = Reader::new(&[0x05, b'a', b'b'], 0);
    assert_eq!(
        reader.len_delimited(),
        Err(ProtobufError::Truncated {
            offset: 1,
            needed: 5,
            available: 2
        })
    );
}
