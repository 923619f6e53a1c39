//! volplane's kinds and their wire format.
//!
//! - [`resources`]: the registry of every resource the API server serves (group, version, kind,
//!   plural, short names, categories, subresources, storage key).
//! - [`wellknown`]: annotation keys, finalizers, labels and reasons, each defined once.
//! - [`kubevirt`], [`cdi`], [`snapshot`]: our own kinds; [`validation`], [`defaults`]: what the API server checks and fills in before storing; [`events`]: core/v1 ↔ events.k8s.io/v1 events.
//! - [`discovery`], [`openapi`], [`printers`]: what kubectl learns about the kinds (discovery
//!   documents, OpenAPI v3 schemas, Table columns); [`schema_check`]: unknown-field detection
//!   for `fieldValidation`, from the same schemas.
//!
//! This crate performs no I/O: it is data and pure functions over objects.
#![forbid(unsafe_code)]

pub mod cdi;
pub mod defaults;
pub mod discovery;
pub mod events;
pub mod kubevirt;
pub mod openapi;
pub mod printers;
pub mod quantity;
pub mod resources;
pub mod schema_check;
pub mod snapshot;
pub mod validation;
pub mod wellknown;
