//! `meta.k8s.io/v1` Table responses, which is what `kubectl get` asks for.

use serde_json::{Value, json};
use volplane_api::printers;
use volplane_api::resources::ResourceInfo;

use crate::object::ObjectExt;

/// What the client asked to see in each row's `object` (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn from_query(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// True when the Accept header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

/// A Table of the given objects (`with_columns` false in watch events after the first).
pub fn table(
    resource: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    rv: &str,
    with_columns: bool,
    continue_token: Option<&str>,
) -> Value {
    let now = chrono::Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": printers::row_cells(resource, obj, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = obj.clone(),
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
            }
            row
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    let columns = if with_columns {
        printers::column_definitions(resource)
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn partial_metadata(obj: &Value) -> Value {
    let mut meta = obj.meta().cloned().unwrap_or_default();
    meta.remove("managedFields");
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_accept_header_is_recognised() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }
}
