//! kubectl Table columns and cells for every served kind.
//!
//! `kubectl get` asks for `meta.k8s.io/v1` Tables and prints exactly the columns and cells it is
//! given, so the columns here are the ones kube-apiserver's printers produce for built-in kinds
//! and the `additionalPrinterColumns` of the upstream CRDs for KubeVirt, CDI and snapshot kinds.
//! Rows always carry every column, wide ones (priority 1) included: the server generates wide
//! tables and kubectl hides priority-1 columns unless asked for `-o wide`.
//!
//! Cell values follow upstream's formatting: ages via [`human_duration`], access modes as
//! `RWO,ROX`, `<none>`/`<unset>`/`<unknown>` placeholders, numbers and booleans as JSON numbers
//! and booleans.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// One column of a built-in kind's table.
struct Column {
    name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    ty: &'static str,
    /// `name` for the column that holds the object's name, else empty.
    format: &'static str,
    description: &'static str,
    /// 0: always shown; 1: shown with `-o wide` only.
    priority: u8,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESCRIPTION: &str = "The object's name, unique within its namespace (or the cluster).";
const AGE_DESCRIPTION: &str = "Time since the object was created (metadata.creationTimestamp).";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESCRIPTION);

/// A printer column of a custom kind, as a CRD's `additionalPrinterColumns` declares it.
struct CrdColumn {
    name: &'static str,
    ty: &'static str,
    description: &'static str,
    priority: u8,
    /// A simple JSONPath: `.a.b`, `[N]` and `[?(@.key=='value')]` segments.
    json_path: &'static str,
}

const fn crd(
    name: &'static str,
    ty: &'static str,
    json_path: &'static str,
    description: &'static str,
) -> CrdColumn {
    CrdColumn {
        name,
        ty,
        description,
        priority: 0,
        json_path,
    }
}

const fn crd_wide(
    name: &'static str,
    ty: &'static str,
    json_path: &'static str,
    description: &'static str,
) -> CrdColumn {
    CrdColumn {
        name,
        ty,
        description,
        priority: 1,
        json_path,
    }
}

const CRD_AGE: CrdColumn = crd("Age", "date", ".metadata.creationTimestamp", "");

type RowFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

enum Printer {
    /// A kind with a hand-written printer, as kube-apiserver has for its own kinds.
    Builtin {
        columns: &'static [Column],
        row: RowFn,
    },
    /// A custom kind: a name column, then JSONPath columns.
    Custom { columns: &'static [CrdColumn] },
}

fn printer(resource: &ResourceInfo) -> Printer {
    use Printer::{Builtin, Custom};
    match (resource.group, resource.kind) {
        ("", "PersistentVolume") => Builtin {
            columns: PV_COLUMNS,
            row: pv_row,
        },
        ("", "PersistentVolumeClaim") => Builtin {
            columns: PVC_COLUMNS,
            row: pvc_row,
        },
        ("", "Pod") => Builtin {
            columns: POD_COLUMNS,
            row: pod_row,
        },
        ("", "Namespace") => Builtin {
            columns: NAMESPACE_COLUMNS,
            row: namespace_row,
        },
        ("", "Node") => Builtin {
            columns: NODE_COLUMNS,
            row: node_row,
        },
        ("", "ConfigMap") => Builtin {
            columns: CONFIGMAP_COLUMNS,
            row: configmap_row,
        },
        ("", "Secret") => Builtin {
            columns: SECRET_COLUMNS,
            row: secret_row,
        },
        ("", "ServiceAccount") => Builtin {
            columns: SERVICEACCOUNT_COLUMNS,
            row: serviceaccount_row,
        },
        ("", "Event") => Builtin {
            columns: EVENT_COLUMNS,
            row: core_event_row,
        },
        ("events.k8s.io", "Event") => Builtin {
            columns: EVENT_COLUMNS,
            row: events_v1_event_row,
        },
        ("storage.k8s.io", "StorageClass") => Builtin {
            columns: STORAGECLASS_COLUMNS,
            row: storageclass_row,
        },
        ("storage.k8s.io", "VolumeAttachment") => Builtin {
            columns: VOLUMEATTACHMENT_COLUMNS,
            row: volumeattachment_row,
        },
        ("storage.k8s.io", "CSIDriver") => Builtin {
            columns: CSIDRIVER_COLUMNS,
            row: csidriver_row,
        },
        ("storage.k8s.io", "CSINode") => Builtin {
            columns: CSINODE_COLUMNS,
            row: csinode_row,
        },
        ("storage.k8s.io", "CSIStorageCapacity") => Builtin {
            columns: CSISTORAGECAPACITY_COLUMNS,
            row: csistoragecapacity_row,
        },
        ("coordination.k8s.io", "Lease") => Builtin {
            columns: LEASE_COLUMNS,
            row: lease_row,
        },
        ("kubevirt.io", "VirtualMachine") => Custom {
            columns: VM_COLUMNS,
        },
        ("kubevirt.io", "VirtualMachineInstance") => Custom {
            columns: VMI_COLUMNS,
        },
        ("kubevirt.io", "VirtualMachineInstanceMigration") => Custom {
            columns: VMIM_COLUMNS,
        },
        ("cdi.kubevirt.io", "DataVolume") => Custom {
            columns: DATAVOLUME_COLUMNS,
        },
        ("snapshot.storage.k8s.io", "VolumeSnapshot") => Custom {
            columns: VOLUMESNAPSHOT_COLUMNS,
        },
        ("snapshot.storage.k8s.io", "VolumeSnapshotContent") => Custom {
            columns: VOLUMESNAPSHOTCONTENT_COLUMNS,
        },
        ("snapshot.storage.k8s.io", "VolumeSnapshotClass") => Custom {
            columns: VOLUMESNAPSHOTCLASS_COLUMNS,
        },
        // A kind without a printer of its own: upstream's default for custom kinds.
        _ => Custom {
            columns: std::slice::from_ref(&CRD_AGE),
        },
    }
}

/// The `columnDefinitions` of a Table of `resource` (`meta.k8s.io/v1` TableColumnDefinition).
pub fn column_definitions(resource: &ResourceInfo) -> Vec<Value> {
    let definition = |name: &str, ty: &str, format: &str, description: &str, priority: u8| {
        json!({
            "name": name,
            "type": ty,
            "format": format,
            "description": description,
            "priority": priority,
        })
    };
    match printer(resource) {
        Printer::Builtin { columns, .. } => columns
            .iter()
            .map(|c| definition(c.name, c.ty, c.format, c.description, c.priority))
            .collect(),
        Printer::Custom { columns } => std::iter::once(definition(
            NAME.name,
            NAME.ty,
            NAME.format,
            NAME.description,
            0,
        ))
        .chain(
            columns
                .iter()
                .map(|c| definition(c.name, c.ty, "", c.description, c.priority)),
        )
        .collect(),
    }
}

/// The cells of `obj`'s row, one per column of [`column_definitions`], formatted as kubectl
/// prints them. `now` is the time ages are measured against.
pub fn row_cells(resource: &ResourceInfo, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer(resource) {
        Printer::Builtin { row, .. } => row(obj, now),
        Printer::Custom { columns } => std::iter::once(json!(name(obj)))
            .chain(columns.iter().map(|c| crd_cell(c, obj, now)))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Durations

/// Upstream's `HumanDuration`: two significant units for short spans (`5m3s`, `7h2m`, `3d4h`),
/// one for longer ones (`45m`, `20h`, `30d`, `3y`). A small negative skew (clocks one second
/// apart) reads as `0s`; more is `<invalid>`.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, days)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `ShortHumanDuration`: a single unit (`45s`, `12m`, `5h`, `3d`, `2y`).
pub fn short_human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        "<invalid>".into()
    } else if seconds < 0 {
        "0s".into()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m", seconds / 60)
    } else if seconds < 24 * 3600 {
        format!("{}h", seconds / 3600)
    } else if seconds < 365 * 24 * 3600 {
        format!("{}d", seconds / (24 * 3600))
    } else {
        format!("{}y", seconds / (365 * 24 * 3600))
    }
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The age of a timestamp field, `<unknown>` when it is missing (as upstream prints a zero time).
fn age_of(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match timestamp.and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> String {
    age_of(str_at(obj, "/metadata/creationTimestamp"), now)
}

// ---------------------------------------------------------------------------------------------
// Field access

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

/// A string field, or "" when absent (Go's zero value, which upstream prints as is).
fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    str_at(obj, pointer).unwrap_or("")
}

fn array<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

fn bool_at(obj: &Value, pointer: &str) -> Option<bool> {
    obj.pointer(pointer).and_then(Value::as_bool)
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Access modes in upstream's fixed order, abbreviated, duplicates dropped.
fn access_modes(modes: &[Value]) -> String {
    const ORDER: [(&str, &str); 4] = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    ORDER
        .iter()
        .filter(|(mode, _)| modes.iter().any(|m| m.as_str() == Some(mode)))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// The class of a PV or PVC: the beta annotation still wins over the field, as upstream.
fn storage_class_of(obj: &Value) -> &str {
    str_at(
        obj,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    )
    .unwrap_or_else(|| text(obj, "/spec/storageClassName"))
}

fn volume_attributes_class(obj: &Value) -> &str {
    str_at(obj, "/spec/volumeAttributesClassName").unwrap_or("<unset>")
}

fn volume_mode(obj: &Value) -> &str {
    str_at(obj, "/spec/volumeMode").unwrap_or("<unset>")
}

/// A quantity as upstream prints it: in canonical form ([`canonical_quantity`]); a value that
/// does not parse is shown as stored.
fn quantity(obj: &Value, pointer: &str) -> String {
    let raw = match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        // Go prints a zero Quantity as "0".
        _ => return "0".into(),
    };
    canonical_quantity(&raw).unwrap_or(raw)
}

/// How a quantity was written, which decides how it is printed back.
#[derive(Clone, Copy, PartialEq)]
enum QuantityFormat {
    /// `Ki`, `Mi`, `Gi`, … (powers of 1024)
    BinarySI,
    /// `m`, none, `k`, `M`, `G`, … (powers of 1000)
    DecimalSI,
    /// `e3`, `E6`
    DecimalExponent,
}

/// Upstream's canonical form of a quantity, which is what `kubectl get` shows: binary
/// quantities of at least 1024 that are whole numbers keep the largest binary suffix that
/// leaves an integer (`2048Mi` → `2Gi`, `1.5Gi` → `1536Mi`); everything else is written as an
/// integer times a power of 1000 as large as possible (`1000` → `1k`, `0.5` → `500m`,
/// `0.5Ki` → `512`). `None` when `raw` is not a quantity (or too large to handle exactly).
pub fn canonical_quantity(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let number_end = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(number_end);
    let (negative, digits) = match number.as_bytes().first()? {
        b'-' => (true, &number[1..]),
        b'+' => (false, &number[1..]),
        _ => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !(whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // value = mantissa × 10^exponent × 1024^binary_power
    let mut mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mut exponent = -i32::try_from(fraction.len()).ok()?;
    let (format, binary_power, decimal_shift) = match suffix {
        "Ki" => (QuantityFormat::BinarySI, 1, 0),
        "Mi" => (QuantityFormat::BinarySI, 2, 0),
        "Gi" => (QuantityFormat::BinarySI, 3, 0),
        "Ti" => (QuantityFormat::BinarySI, 4, 0),
        "Pi" => (QuantityFormat::BinarySI, 5, 0),
        "Ei" => (QuantityFormat::BinarySI, 6, 0),
        "n" => (QuantityFormat::DecimalSI, 0, -9),
        "u" => (QuantityFormat::DecimalSI, 0, -6),
        "m" => (QuantityFormat::DecimalSI, 0, -3),
        "" => (QuantityFormat::DecimalSI, 0, 0),
        "k" => (QuantityFormat::DecimalSI, 0, 3),
        "M" => (QuantityFormat::DecimalSI, 0, 6),
        "G" => (QuantityFormat::DecimalSI, 0, 9),
        "T" => (QuantityFormat::DecimalSI, 0, 12),
        "P" => (QuantityFormat::DecimalSI, 0, 15),
        "E" => (QuantityFormat::DecimalSI, 0, 18),
        _ => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            (QuantityFormat::DecimalExponent, 0, e.parse::<i32>().ok()?)
        }
    };
    if mantissa == 0 {
        return Some("0".into());
    }
    if negative {
        mantissa = -mantissa;
    }
    exponent += decimal_shift;
    for _ in 0..binary_power {
        mantissa = mantissa.checked_mul(1024)?;
    }
    // Bring the value to mantissa × 10^exponent with no trailing zeros in the mantissa.
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    let mut format = format;
    if format == QuantityFormat::BinarySI {
        // Binary form only for whole numbers of at least 1024; smaller or fractional values
        // would need rounding, so upstream prints them in decimal.
        let whole_value = if exponent >= 0 {
            mantissa.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)
        } else {
            None
        };
        match whole_value {
            Some(v) if v.abs() >= 1024 => {
                let (mut amount, mut power) = (v, 0);
                while amount % 1024 == 0 && power < 6 {
                    amount /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                return Some(format!("{amount}{suffix}"));
            }
            _ => format = QuantityFormat::DecimalSI,
        }
    }
    // Lower the exponent to a multiple of three, growing the mantissa to match.
    let excess = exponent.rem_euclid(3);
    mantissa = mantissa.checked_mul(10i128.pow(excess.unsigned_abs()))?;
    exponent -= excess;
    let suffix = match (format, exponent) {
        (_, 0) => String::new(),
        (QuantityFormat::DecimalSI, -9) => "n".into(),
        (QuantityFormat::DecimalSI, -6) => "u".into(),
        (QuantityFormat::DecimalSI, -3) => "m".into(),
        (QuantityFormat::DecimalSI, 3) => "k".into(),
        (QuantityFormat::DecimalSI, 6) => "M".into(),
        (QuantityFormat::DecimalSI, 9) => "G".into(),
        (QuantityFormat::DecimalSI, 12) => "T".into(),
        (QuantityFormat::DecimalSI, 15) => "P".into(),
        (QuantityFormat::DecimalSI, 18) => "E".into(),
        (_, e) => format!("e{e}"),
    };
    Some(format!("{mantissa}{suffix}"))
}

// ---------------------------------------------------------------------------------------------
// core/v1

const PV_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "The volume's size (spec.capacity.storage).",
    ),
    col(
        "Access Modes",
        "string",
        "The ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim is released.",
    ),
    col("Status", "string", "The volume's phase."),
    col(
        "Claim",
        "string",
        "The claim bound to the volume, as namespace/name.",
    ),
    col("StorageClass", "string", "The volume's storage class."),
    col(
        "VolumeAttributesClass",
        "string",
        "The volume's attributes class.",
    ),
    col("Reason", "string", "Why the volume is in its phase."),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

fn pv_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match obj.pointer("/spec/claimRef") {
        Some(r) if r.is_object() => format!("{}/{}", text(r, "/namespace"), text(r, "/name")),
        _ => String::new(),
    };
    let phase = if is_deleting(obj) {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    vec![
        json!(name(obj)),
        json!(quantity(obj, "/spec/capacity/storage")),
        json!(access_modes(array(obj, "/spec/accessModes"))),
        json!(text(obj, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(storage_class_of(obj)),
        json!(volume_attributes_class(obj)),
        json!(text(obj, "/status/reason")),
        json!(age(obj, now)),
        json!(volume_mode(obj)),
    ]
}

const PVC_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The claim's phase."),
    col("Volume", "string", "The volume bound to the claim."),
    col("Capacity", "string", "The size of the bound volume."),
    col(
        "Access Modes",
        "string",
        "The access modes of the bound volume.",
    ),
    col("StorageClass", "string", "The claim's storage class."),
    col(
        "VolumeAttributesClass",
        "string",
        "The claim's attributes class.",
    ),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

fn pvc_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if is_deleting(obj) {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    };
    let volume_name = text(obj, "/spec/volumeName");
    // Capacity and access modes describe the bound volume, so an unbound claim shows neither.
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(obj, "/status/capacity/storage"),
            access_modes(array(obj, "/status/accessModes")),
        )
    };
    vec![
        json!(name(obj)),
        json!(phase),
        json!(volume_name),
        json!(capacity),
        json!(modes),
        json!(storage_class_of(obj)),
        json!(volume_attributes_class(obj)),
        json!(age(obj, now)),
        json!(volume_mode(obj)),
    ]
}

const POD_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Ready containers out of all containers."),
    col(
        "Status",
        "string",
        "The pod's phase, or why it is not running.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts, and how long ago the last one was.",
    ),
    AGE,
    wide("IP", "string", "The pod's first IP address."),
    wide("Node", "string", "The node the pod is scheduled to."),
    wide(
        "Nominated Node",
        "string",
        "The node the pod may preempt others on.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates that are true, out of all.",
    ),
];

fn is_restartable_init_container(spec: Option<&Value>) -> bool {
    spec.is_some_and(|c| text(c, "/restartPolicy") == "Always")
}

fn condition_status<'a>(conditions: &'a [Value], ty: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| text(c, "/type") == ty)
        .map(|c| text(c, "/status"))
}

/// The latest `lastState.terminated.finishedAt` seen, for "N (5m ago)".
fn later(current: Option<DateTime<Utc>>, status: &Value) -> Option<DateTime<Utc>> {
    let finished = str_at(status, "/lastState/terminated/finishedAt").and_then(parse_time);
    match (current, finished) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The pod's READY, STATUS, RESTARTS as kubectl derives them from container statuses.
fn pod_row(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = array(pod, "/spec/initContainers");
    let conditions = array(pod, "/status/conditions");
    let phase = text(pod, "/status/phase");
    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut total = array(pod, "/spec/containers").len();
    total += init_specs
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut sidecar_restarts = 0i64;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let init_statuses = array(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, status) in init_statuses.iter().enumerate() {
        let spec = init_specs
            .iter()
            .find(|c| text(c, "/name") == text(status, "/name"));
        let sidecar = is_restartable_init_container(spec);
        restarts += int_at(status, "/restartCount");
        last_restart = later(last_restart, status);
        if sidecar {
            sidecar_restarts += int_at(status, "/restartCount");
            last_sidecar_restart = later(last_sidecar_restart, status);
        }
        let terminated = status
            .pointer("/state/terminated")
            .filter(|t| t.is_object());
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && bool_at(status, "/started") == Some(true) {
            if bool_at(status, "/ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match text(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Init:Signal:{}", int_at(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_status(conditions, "Initialized") == Some("True") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in array(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(status, "/restartCount");
            last_restart = later(last_restart, status);
            let terminated = status
                .pointer("/state/terminated")
                .filter(|t| t.is_object());
            let waiting_reason = text(status, "/state/waiting/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                    "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if bool_at(status, "/ready") == Some(true)
                && status
                    .pointer("/state/running")
                    .is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose finished containers say Completed while another still runs is running.
        if reason == "Completed" && has_running {
            reason = if condition_status(conditions, "Ready") == Some("True") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if is_deleting(pod) && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let ip = array(pod, "/status/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        .unwrap_or("");
    let gates = array(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_gates = gates
            .iter()
            .filter(|g| condition_status(conditions, text(g, "/conditionType")) == Some("True"))
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(pod, now)),
        json!(or_none(ip)),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

const NAMESPACE_COLUMNS: &[Column] =
    &[NAME, col("Status", "string", "The namespace's phase."), AGE];

fn namespace_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(text(obj, "/status/phase")),
        json!(age(obj, now)),
    ]
}

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Ready or NotReady, and SchedulingDisabled when cordoned.",
    ),
    col(
        "Roles",
        "string",
        "The node's roles, from node-role labels.",
    ),
    AGE,
    col("Version", "string", "The kubelet version the node reports."),
    wide(
        "Internal-IP",
        "string",
        "The node's first internal address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first external address.",
    ),
    wide(
        "OS-Image",
        "string",
        "The operating system the node reports.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "The kernel version the node reports.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "The container runtime the node reports.",
    ),
];

fn node_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status = match condition_status(array(obj, "/status/conditions"), "Ready") {
        Some("True") => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if bool_at(obj, "/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if key == "kubernetes.io/role"
                && let Some(role) = value.as_str().filter(|r| !r.is_empty())
            {
                roles.push(role);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |ty: &str| {
        array(obj, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty)
            .map_or("<none>", |a| text(a, "/address"))
            .to_string()
    };
    let info = |field: &str| match text(obj, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        json!(name(obj)),
        json!(status.join(",")),
        json!(roles),
        json!(age(obj, now)),
        json!(text(obj, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

const CONFIGMAP_COLUMNS: &[Column] = &[
    NAME,
    col("Data", "string", "Number of keys in data and binaryData."),
    AGE,
];

fn configmap_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = map_len(obj, "/data") + map_len(obj, "/binaryData");
    vec![json!(name(obj)), json!(keys), json!(age(obj, now))]
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", "The secret's type."),
    col("Data", "string", "Number of keys in data."),
    AGE,
];

fn secret_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // stringData is write-only and folded into data on write; count its keys too in case an
    // object is printed before that happened.
    let mut keys: Vec<&String> = Vec::new();
    for pointer in ["/data", "/stringData"] {
        if let Some(map) = obj.pointer(pointer).and_then(Value::as_object) {
            keys.extend(map.keys());
        }
    }
    keys.sort_unstable();
    keys.dedup();
    vec![
        json!(name(obj)),
        json!(text(obj, "/type")),
        json!(keys.len()),
        json!(age(obj, now)),
    ]
}

const SERVICEACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed for the account.",
    ),
    AGE,
];

fn serviceaccount_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(array(obj, "/secrets").len()),
        json!(age(obj, now)),
    ]
}

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", "Time since the event was last seen."),
    col("Type", "string", "Normal or Warning."),
    col("Reason", "string", "A short machine-readable reason."),
    col(
        "Object",
        "string",
        "The object the event is about, as kind/name.",
    ),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about.",
    ),
    wide(
        "Source",
        "string",
        "The component (and host) that reported the event.",
    ),
    col("Message", "string", "The human-readable description."),
    wide(
        "First Seen",
        "string",
        "Time since the event was first seen.",
    ),
    wide("Count", "string", "How many times the event occurred."),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DESCRIPTION,
        priority: 1,
    },
];

/// The field names of one Event shape: core/v1 and events.k8s.io/v1 store the same facts
/// under different names.
struct EventFields {
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source: &'static str,
    reporting_controller: &'static str,
}

const CORE_EVENT: EventFields = EventFields {
    involved: "/involvedObject",
    message: "/message",
    first: "/firstTimestamp",
    last: "/lastTimestamp",
    count: "/count",
    source: "/source",
    reporting_controller: "/reportingComponent",
};

const EVENTS_V1_EVENT: EventFields = EventFields {
    involved: "/regarding",
    message: "/note",
    first: "/deprecatedFirstTimestamp",
    last: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    source: "/deprecatedSource",
    reporting_controller: "/reportingController",
};

fn core_event_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_row(obj, now, &CORE_EVENT)
}

fn events_v1_event_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_row(obj, now, &EVENTS_V1_EVENT)
}

fn event_row(obj: &Value, now: DateTime<Utc>, f: &EventFields) -> Vec<Value> {
    let first_seen = match str_at(obj, f.first) {
        Some(t) => age_of(Some(t), now),
        None => age_of(str_at(obj, "/eventTime"), now),
    };
    let mut last_seen = match str_at(obj, f.last) {
        Some(t) => age_of(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, f.count);
    if obj.pointer("/series").is_some_and(Value::is_object) {
        last_seen = age_of(str_at(obj, "/series/lastObservedTime"), now);
        count = int_at(obj, "/series/count");
    } else if count == 0 {
        // Events written through the newer API carry no count for a single occurrence.
        count = 1;
    }
    let involved = obj.pointer(f.involved).unwrap_or(&Value::Null);
    let kind = text(involved, "/kind").to_lowercase();
    let target = match text(involved, "/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = match text(obj, &format!("{}/component", f.source)) {
        "" => text(obj, f.reporting_controller),
        c => c,
    };
    let host = match text(obj, &format!("{}/host", f.source)) {
        "" => text(obj, "/reportingInstance"),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last_seen),
        json!(text(obj, "/type")),
        json!(text(obj, "/reason")),
        json!(target),
        json!(text(involved, "/fieldPath")),
        json!(source),
        json!(text(obj, f.message).trim()),
        json!(first_seen),
        json!(count),
        json!(name(obj)),
    ]
}

// ---------------------------------------------------------------------------------------------
// storage.k8s.io/v1, coordination.k8s.io/v1

const STORAGECLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "The driver that provisions volumes of this class.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Reclaim policy of volumes provisioned for this class.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "Immediate or WaitForFirstConsumer.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether claims of this class may grow.",
    ),
    AGE,
];

fn storageclass_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let is_default = [
        "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
        "/metadata/annotations/storageclass.beta.kubernetes.io~1is-default-class",
    ]
    .iter()
    .any(|p| str_at(obj, p) == Some("true"));
    let display_name = if is_default {
        format!("{} (default)", name(obj))
    } else {
        name(obj).to_string()
    };
    vec![
        json!(display_name),
        json!(text(obj, "/provisioner")),
        json!(str_at(obj, "/reclaimPolicy").unwrap_or("Delete")),
        json!(str_at(obj, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(bool_at(obj, "/allowVolumeExpansion").unwrap_or(false)),
        json!(age(obj, now)),
    ]
}

const VOLUMEATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        ty: "string",
        format: "name",
        description: "The CSI driver that attaches the volume.",
        priority: 0,
    },
    col("PV", "string", "The persistent volume being attached."),
    col("Node", "string", "The node the volume is attached to."),
    col(
        "Attached",
        "boolean",
        "Whether the attach operation succeeded.",
    ),
    AGE,
];

fn volumeattachment_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/attacher")),
        json!(text(obj, "/spec/source/persistentVolumeName")),
        json!(text(obj, "/spec/nodeName")),
        json!(bool_at(obj, "/status/attached").unwrap_or(false)),
        json!(age(obj, now)),
    ]
}

const CSIDRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether volumes need ControllerPublish before use.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether pod details are passed on NodePublish.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the scheduler considers published capacity.",
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of service account tokens passed to the driver.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether NodePublish is repeated periodically.",
    ),
    col(
        "Modes",
        "string",
        "Volume lifecycle modes the driver supports.",
    ),
    AGE,
];

fn csidriver_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let modes: Vec<&str> = array(obj, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match obj.pointer("/spec/tokenRequests").and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|r| text(r, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    vec![
        json!(name(obj)),
        json!(bool_at(obj, "/spec/attachRequired").unwrap_or(true)),
        json!(bool_at(obj, "/spec/podInfoOnMount").unwrap_or(false)),
        json!(bool_at(obj, "/spec/storageCapacity").unwrap_or(false)),
        json!(token_requests),
        json!(bool_at(obj, "/spec/requiresRepublish").unwrap_or(false)),
        json!(modes),
        json!(age(obj, now)),
    ]
}

const CSINODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Number of CSI drivers registered on the node.",
    ),
    AGE,
];

fn csinode_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(array(obj, "/spec/drivers").len()),
        json!(age(obj, now)),
    ]
}

const CSISTORAGECAPACITY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "The class the capacity applies to.",
    ),
    col("Capacity", "string", "Capacity available for new volumes."),
];

fn csistoragecapacity_row(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let capacity = if obj.get("capacity").is_some_and(|c| !c.is_null()) {
        quantity(obj, "/capacity")
    } else {
        "<unset>".to_string()
    };
    vec![
        json!(name(obj)),
        json!(text(obj, "/storageClassName")),
        json!(capacity),
    ]
}

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col("Holder", "string", "The identity holding the lease."),
    AGE,
];

fn lease_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(text(obj, "/spec/holderIdentity")),
        json!(age(obj, now)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Custom kinds: the upstream CRDs' additionalPrinterColumns

const VM_COLUMNS: &[CrdColumn] = &[
    CRD_AGE,
    crd(
        "Status",
        "string",
        ".status.printableStatus",
        "Human Readable Status",
    ),
    crd(
        "Ready",
        "string",
        ".status.conditions[?(@.type=='Ready')].status",
        "",
    ),
];

const VMI_COLUMNS: &[CrdColumn] = &[
    CRD_AGE,
    crd("Phase", "string", ".status.phase", ""),
    crd("IP", "string", ".status.interfaces[0].ipAddress", ""),
    crd("NodeName", "string", ".status.nodeName", ""),
    crd(
        "Ready",
        "string",
        ".status.conditions[?(@.type=='Ready')].status",
        "",
    ),
    crd_wide(
        "Live-Migratable",
        "string",
        ".status.conditions[?(@.type=='LiveMigratable')].status",
        "",
    ),
    crd_wide(
        "Paused",
        "string",
        ".status.conditions[?(@.type=='Paused')].status",
        "",
    ),
];

const VMIM_COLUMNS: &[CrdColumn] = &[
    crd("Phase", "string", ".status.phase", "The migration's phase."),
    crd(
        "VMI",
        "string",
        ".spec.vmiName",
        "The instance being migrated.",
    ),
];

const DATAVOLUME_COLUMNS: &[CrdColumn] = &[
    crd(
        "Phase",
        "string",
        ".status.phase",
        "The data volume's phase.",
    ),
    crd(
        "Progress",
        "string",
        ".status.progress",
        "Import or clone progress, when known.",
    ),
    crd(
        "Restarts",
        "integer",
        ".status.restartCount",
        "How often the transfer restarted.",
    ),
    CRD_AGE,
];

const VOLUMESNAPSHOT_COLUMNS: &[CrdColumn] = &[
    crd(
        "ReadyToUse",
        "boolean",
        ".status.readyToUse",
        "Whether a volume can be restored from the snapshot.",
    ),
    crd(
        "SourcePVC",
        "string",
        ".spec.source.persistentVolumeClaimName",
        "The claim the snapshot is taken from.",
    ),
    crd(
        "SourceSnapshotContent",
        "string",
        ".spec.source.volumeSnapshotContentName",
        "The pre-existing content the snapshot binds to.",
    ),
    crd(
        "RestoreSize",
        "string",
        ".status.restoreSize",
        "Smallest volume the snapshot can be restored to.",
    ),
    crd(
        "SnapshotClass",
        "string",
        ".spec.volumeSnapshotClassName",
        "The requested snapshot class.",
    ),
    crd(
        "SnapshotContent",
        "string",
        ".status.boundVolumeSnapshotContentName",
        "The content the snapshot is bound to.",
    ),
    crd(
        "CreationTime",
        "date",
        ".status.creationTime",
        "When the storage system took the snapshot.",
    ),
    CRD_AGE,
];

const VOLUMESNAPSHOTCONTENT_COLUMNS: &[CrdColumn] = &[
    crd(
        "ReadyToUse",
        "boolean",
        ".status.readyToUse",
        "Whether a volume can be restored from the snapshot.",
    ),
    crd(
        "RestoreSize",
        "integer",
        ".status.restoreSize",
        "Smallest volume, in bytes, the snapshot can be restored to.",
    ),
    crd(
        "DeletionPolicy",
        "string",
        ".spec.deletionPolicy",
        "Whether the storage snapshot is deleted with this object.",
    ),
    crd(
        "Driver",
        "string",
        ".spec.driver",
        "The CSI driver that holds the snapshot.",
    ),
    crd(
        "VolumeSnapshotClass",
        "string",
        ".spec.volumeSnapshotClassName",
        "The snapshot class used.",
    ),
    crd(
        "VolumeSnapshot",
        "string",
        ".spec.volumeSnapshotRef.name",
        "The VolumeSnapshot bound to this content.",
    ),
    crd(
        "VolumeSnapshotNamespace",
        "string",
        ".spec.volumeSnapshotRef.namespace",
        "The namespace of that VolumeSnapshot.",
    ),
    CRD_AGE,
];

const VOLUMESNAPSHOTCLASS_COLUMNS: &[CrdColumn] = &[
    crd(
        "Driver",
        "string",
        ".driver",
        "The CSI driver that takes snapshots of this class.",
    ),
    crd(
        "DeletionPolicy",
        "string",
        ".deletionPolicy",
        "Whether storage snapshots are deleted with their content.",
    ),
    CRD_AGE,
];

/// One segment of a printer column's JSONPath.
#[derive(Debug, PartialEq)]
enum PathSegment<'a> {
    Field(&'a str),
    Index(usize),
    /// `[?(@.key=='value')]`: the array elements whose `key` equals `value`.
    Filter {
        key: &'a str,
        value: &'a str,
    },
}

/// Parses the JSONPath subset CRD printer columns use. Malformed paths yield `None` (the
/// column then prints `<none>`, as upstream prints a column whose path finds nothing).
fn parse_json_path(path: &str) -> Option<Vec<PathSegment<'_>>> {
    let mut segments = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            if end == 0 {
                return None;
            }
            segments.push(PathSegment::Field(&after_dot[..end]));
            rest = &after_dot[end..];
        } else if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let body = &inner[..close];
            rest = &inner[close + 1..];
            if let Some(filter) = body.strip_prefix("?(@.").and_then(|b| b.strip_suffix(')')) {
                let (key, value) = filter.split_once("==")?;
                let value = value.trim();
                let value = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))?;
                segments.push(PathSegment::Filter {
                    key: key.trim(),
                    value,
                });
            } else {
                segments.push(PathSegment::Index(body.trim().parse().ok()?));
            }
        } else {
            return None;
        }
    }
    Some(segments)
}

/// The first value `path` finds in `obj`.
fn find_first<'a>(obj: &'a Value, path: &[PathSegment<'_>]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(obj);
    };
    match first {
        PathSegment::Field(name) => find_first(obj.get(*name)?, rest),
        PathSegment::Index(i) => find_first(obj.as_array()?.get(*i)?, rest),
        PathSegment::Filter { key, value } => obj
            .as_array()?
            .iter()
            .filter(|item| item.get(*key).and_then(Value::as_str) == Some(*value))
            .find_map(|item| find_first(item, rest)),
    }
}

/// A custom column's cell, converted by the column's type as the CRD table convertor does:
/// strings are printed, dates become ages, a value of the wrong type (or none) is null.
fn crd_cell(column: &CrdColumn, obj: &Value, now: DateTime<Utc>) -> Value {
    let Some(value) = parse_json_path(column.json_path)
        .as_deref()
        .and_then(|path| find_first(obj, path))
    else {
        return Value::Null;
    };
    match column.ty {
        "string" => match value {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
        "integer" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, |i| json!(i)),
            _ => Value::Null,
        },
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match value.as_str() {
            Some(s) => match parse_time(s) {
                Some(t) => json!(human_duration(now - t)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-22T12:00:00Z").unwrap()
    }

    fn ago(seconds: i64) -> String {
        (now() - TimeDelta::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn names(resource: &ResourceInfo) -> Vec<String> {
        column_definitions(resource)
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_uppercase())
            .collect()
    }

    fn res(group: &str, version: &str, plural: &str) -> &'static ResourceInfo {
        find(group, version, plural).unwrap()
    }

    #[test]
    fn human_duration_follows_upstream_steps() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (303, "5m3s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (7 * 3600 + 120, "7h2m"),
            (8 * 3600 + 120, "8h"),
            (47 * 3600, "47h"),
            (3 * 86400, "3d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (8 * 86400 + 3600, "8d"),
            (729 * 86400, "729d"),
            (2 * 365 * 86400, "2y"),
            (2 * 365 * 86400 + 10 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(
                human_duration(TimeDelta::seconds(seconds)),
                want,
                "{seconds}s"
            );
        }
    }

    #[test]
    fn short_human_duration_uses_one_unit() {
        assert_eq!(short_human_duration(TimeDelta::seconds(59)), "59s");
        assert_eq!(short_human_duration(TimeDelta::seconds(303)), "5m");
        assert_eq!(short_human_duration(TimeDelta::seconds(5 * 3600 + 1)), "5h");
        assert_eq!(short_human_duration(TimeDelta::seconds(3 * 86400)), "3d");
        assert_eq!(short_human_duration(TimeDelta::seconds(800 * 86400)), "2y");
        assert_eq!(short_human_duration(TimeDelta::seconds(-3)), "<invalid>");
    }

    #[test]
    fn quantities_print_in_canonical_form() {
        let cases = [
            ("1Gi", "1Gi"),
            ("2048Mi", "2Gi"),
            ("1.5Gi", "1536Mi"),
            ("1000Mi", "1000Mi"),
            ("1536", "1536"),
            ("1000", "1k"),
            ("1500M", "1500M"),
            ("0.5", "500m"),
            ("0.5Ki", "512"),
            ("1.5Ki", "1536"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("12e6", "12e6"),
            ("0Gi", "0"),
            ("-2Ki", "-2Ki"),
            ("100m", "100m"),
            ("1000m", "1"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_quantity(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in ["", "Gi", "1.2.3", "1Xi", "--1", "1e"] {
            assert_eq!(canonical_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn pvc_columns_and_bound_row() {
        let pvc = res("", "v1", "persistentvolumeclaims");
        assert_eq!(
            names(pvc),
            [
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
                "VOLUMEMODE"
            ]
        );
        let defs = column_definitions(pvc);
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[8]["priority"], 1);
        assert_eq!(defs[7]["priority"], 0);
        let obj = json!({
            "metadata": {"name": "data", "creationTimestamp": ago(303)},
            "spec": {"volumeName": "pv-1", "storageClassName": "local",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "2048Mi"},
                       "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"]}
        });
        assert_eq!(
            row_cells(pvc, &obj, now()),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pv-1"),
                json!("2Gi"),
                json!("RWO,RWX"),
                json!("local"),
                json!("<unset>"),
                json!("5m3s"),
                json!("<unset>")
            ]
        );
    }

    #[test]
    fn pending_pvc_shows_no_capacity_and_deleting_one_is_terminating() {
        let pvc = res("", "v1", "persistentvolumeclaims");
        let obj = json!({
            "metadata": {"name": "c", "creationTimestamp": ago(10), "deletionTimestamp": ago(1),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"storageClassName": "new", "volumeMode": "Block",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}
        });
        let cells = row_cells(pvc, &obj, now());
        assert_eq!(cells[1], "Terminating");
        assert_eq!(cells[3], "");
        assert_eq!(cells[4], "");
        assert_eq!(cells[5], "old");
        assert_eq!(cells[8], "Block");
    }

    #[test]
    fn pv_row_shows_claim_and_capacity() {
        let pv = res("", "v1", "persistentvolumes");
        assert_eq!(
            names(pv),
            [
                "NAME",
                "CAPACITY",
                "ACCESS MODES",
                "RECLAIM POLICY",
                "STATUS",
                "CLAIM",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "REASON",
                "AGE",
                "VOLUMEMODE"
            ]
        );
        let obj = json!({
            "metadata": {"name": "pv-1", "creationTimestamp": ago(3 * 86400)},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadOnlyMany", "ReadWriteOncePod"],
                     "persistentVolumeReclaimPolicy": "Retain",
                     "claimRef": {"namespace": "default", "name": "data"},
                     "volumeMode": "Filesystem", "volumeAttributesClassName": "gold"},
            "status": {"phase": "Bound"}
        });
        assert_eq!(
            row_cells(pv, &obj, now()),
            vec![
                json!("pv-1"),
                json!("5Gi"),
                json!("ROX,RWOP"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!(""),
                json!("gold"),
                json!(""),
                json!("3d"),
                json!("Filesystem")
            ]
        );
    }

    #[test]
    fn pod_running_with_restart_and_wide_cells() {
        let pods = res("", "v1", "pods");
        assert_eq!(
            names(pods),
            [
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED NODE",
                "READINESS GATES"
            ]
        );
        let obj = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(7200)},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.5"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}},
                    {"name": "b", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]
            }
        });
        assert_eq!(
            row_cells(pods, &obj, now()),
            vec![
                json!("web"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("2 (5m ago)"),
                json!("120m"),
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_in_init_and_pending_states() {
        let pods = res("", "v1", "pods");
        let initializing = json!({
            "metadata": {"name": "p", "creationTimestamp": ago(5)},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}],
                     "readinessGates": [{"conditionType": "x"}]},
            "status": {"phase": "Pending",
                       "conditions": [{"type": "x", "status": "True"}],
                       "initContainerStatuses": [
                           {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                           {"name": "i2", "state": {"running": {}}}
                       ]}
        });
        let cells = row_cells(pods, &initializing, now());
        assert_eq!(cells[1], "0/1");
        assert_eq!(cells[2], "Init:1/2");
        assert_eq!(cells[3], "0");
        assert_eq!(cells[8], "1/1");

        let pending = json!({
            "metadata": {"name": "q"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending"}
        });
        let cells = row_cells(pods, &pending, now());
        assert_eq!(cells[2], "Pending");
        assert_eq!(cells[4], "<unknown>");
        assert_eq!(cells[5], "<none>");
    }

    #[test]
    fn completed_pod_is_not_terminating_when_deleted() {
        let pods = res("", "v1", "pods");
        let obj = json!({
            "metadata": {"name": "job", "creationTimestamp": ago(60), "deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}
        });
        assert_eq!(row_cells(pods, &obj, now())[2], "Completed");
    }

    #[test]
    fn storage_class_marks_the_default() {
        let sc = res("storage.k8s.io", "v1", "storageclasses");
        assert_eq!(
            names(sc),
            [
                "NAME",
                "PROVISIONER",
                "RECLAIMPOLICY",
                "VOLUMEBINDINGMODE",
                "ALLOWVOLUMEEXPANSION",
                "AGE"
            ]
        );
        let obj = json!({
            "metadata": {"name": "local", "creationTimestamp": ago(90),
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "local.csi.volplane.io",
            "volumeBindingMode": "WaitForFirstConsumer"
        });
        assert_eq!(
            row_cells(sc, &obj, now()),
            vec![
                json!("local (default)"),
                json!("local.csi.volplane.io"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("90s")
            ]
        );
    }

    #[test]
    fn volume_attachment_row() {
        let va = res("storage.k8s.io", "v1", "volumeattachments");
        assert_eq!(
            names(va),
            ["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"]
        );
        let obj = json!({
            "metadata": {"name": "csi-abc", "creationTimestamp": ago(60)},
            "spec": {"attacher": "d", "nodeName": "n1", "source": {"persistentVolumeName": "pv-1"}},
            "status": {"attached": true}
        });
        assert_eq!(
            row_cells(va, &obj, now()),
            vec![
                json!("csi-abc"),
                json!("d"),
                json!("pv-1"),
                json!("n1"),
                json!(true),
                json!("60s")
            ]
        );
    }

    #[test]
    fn csi_driver_csinode_and_capacity_rows() {
        let driver = res("storage.k8s.io", "v1", "csidrivers");
        let obj = json!({"metadata": {"name": "d", "creationTimestamp": ago(1)},
                         "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"],
                                  "tokenRequests": [{"audience": "a"}, {"audience": "b"}]}});
        assert_eq!(
            row_cells(driver, &obj, now()),
            vec![
                json!("d"),
                json!(true),
                json!(false),
                json!(false),
                json!("a,b"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("1s")
            ]
        );
        let node = res("storage.k8s.io", "v1", "csinodes");
        let obj = json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "d"}]}});
        assert_eq!(row_cells(node, &obj, now())[1], json!(1));
        let cap = res("storage.k8s.io", "v1", "csistoragecapacities");
        assert_eq!(names(cap), ["NAME", "STORAGECLASSNAME", "CAPACITY"]);
        let obj = json!({"metadata": {"name": "c"}, "storageClassName": "local"});
        assert_eq!(row_cells(cap, &obj, now())[2], "<unset>");
    }

    #[test]
    fn node_status_roles_and_addresses() {
        let nodes = res("", "v1", "nodes");
        let obj = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(86400 * 10),
                         "labels": {"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian"}}
        });
        assert_eq!(
            row_cells(nodes, &obj, now()),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("10d"),
                json!("v1.33.0"),
                json!("192.168.1.2"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn core_and_new_events_print_the_same() {
        let core = res("", "v1", "events");
        let newer = res("events.k8s.io", "v1", "events");
        assert_eq!(names(core), names(newer));
        assert_eq!(
            names(core)
                .into_iter()
                .zip(column_definitions(core))
                .filter(|(_, d)| d["priority"] == 0)
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
        let core_event = json!({
            "metadata": {"name": "data.1"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data"},
            "type": "Normal", "reason": "ProvisioningSucceeded", "message": "done \n",
            "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 3,
            "source": {"component": "volplane-provisioner"}
        });
        let new_event = json!({
            "metadata": {"name": "data.1"},
            "regarding": {"kind": "PersistentVolumeClaim", "name": "data"},
            "type": "Normal", "reason": "ProvisioningSucceeded", "note": "done",
            "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(60),
            "deprecatedCount": 3, "reportingController": "volplane-provisioner"
        });
        let want = vec![
            json!("60s"),
            json!("Normal"),
            json!("ProvisioningSucceeded"),
            json!("persistentvolumeclaim/data"),
            json!(""),
            json!("volplane-provisioner"),
            json!("done"),
            json!("10m"),
            json!(3),
            json!("data.1"),
        ];
        assert_eq!(row_cells(core, &core_event, now()), want);
        assert_eq!(row_cells(newer, &new_event, now()), want);
    }

    #[test]
    fn event_with_series_uses_series_count_and_time() {
        let core = res("", "v1", "events");
        let obj = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod"},
            "eventTime": "2026-11-22T11:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-11-22T11:59:00.000000Z"},
            "reportingComponent": "kubelet", "reportingInstance": "n1"
        });
        let cells = row_cells(core, &obj, now());
        assert_eq!(cells[0], "60s");
        assert_eq!(cells[3], "pod");
        assert_eq!(cells[5], "kubelet, n1");
        assert_eq!(cells[7], "60m");
        assert_eq!(cells[8], json!(7));
    }

    #[test]
    fn configmap_secret_serviceaccount_lease_namespace_rows() {
        let cm = res("", "v1", "configmaps");
        let obj = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}});
        assert_eq!(row_cells(cm, &obj, now())[1], json!(2));
        let secret = res("", "v1", "secrets");
        assert_eq!(names(secret), ["NAME", "TYPE", "DATA", "AGE"]);
        let obj = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
        assert_eq!(
            row_cells(secret, &obj, now())[1..3],
            [json!("Opaque"), json!(1)]
        );
        let sa = res("", "v1", "serviceaccounts");
        let obj = json!({"metadata": {"name": "default"}});
        assert_eq!(row_cells(sa, &obj, now())[1], json!(0));
        let lease = res("coordination.k8s.io", "v1", "leases");
        assert_eq!(names(lease), ["NAME", "HOLDER", "AGE"]);
        let obj = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}});
        assert_eq!(row_cells(lease, &obj, now())[1], "n1");
        let ns = res("", "v1", "namespaces");
        let obj = json!({"metadata": {"name": "default", "creationTimestamp": ago(20)},
                         "status": {"phase": "Active"}});
        assert_eq!(
            row_cells(ns, &obj, now()),
            vec![json!("default"), json!("Active"), json!("20s")]
        );
    }

    #[test]
    fn virtual_machine_columns_come_from_its_crd() {
        let vm = res("kubevirt.io", "v1", "virtualmachines");
        assert_eq!(names(vm), ["NAME", "AGE", "STATUS", "READY"]);
        assert_eq!(column_definitions(vm)[1]["type"], "date");
        let obj = json!({
            "metadata": {"name": "vm1", "creationTimestamp": ago(45)},
            "status": {"printableStatus": "Running",
                       "conditions": [{"type": "Paused", "status": "False"},
                                      {"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            row_cells(vm, &obj, now()),
            vec![json!("vm1"), json!("45s"), json!("Running"), json!("True")]
        );
        let stopped = json!({"metadata": {"name": "vm2", "creationTimestamp": ago(45)}});
        assert_eq!(
            row_cells(vm, &stopped, now())[2..],
            [Value::Null, Value::Null]
        );
    }

    #[test]
    fn vmi_and_migration_columns() {
        let vmi = res("kubevirt.io", "v1", "virtualmachineinstances");
        assert_eq!(
            names(vmi),
            [
                "NAME",
                "AGE",
                "PHASE",
                "IP",
                "NODENAME",
                "READY",
                "LIVE-MIGRATABLE",
                "PAUSED"
            ]
        );
        let obj = json!({
            "metadata": {"name": "vmi1", "creationTimestamp": ago(130)},
            "status": {"phase": "Running", "nodeName": "n1",
                       "interfaces": [{"ipAddress": "10.1.1.1"}, {"ipAddress": "10.1.1.2"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            row_cells(vmi, &obj, now())[..6],
            [
                json!("vmi1"),
                json!("2m10s"),
                json!("Running"),
                json!("10.1.1.1"),
                json!("n1"),
                json!("True")
            ]
        );
        let vmim = res("kubevirt.io", "v1", "virtualmachineinstancemigrations");
        assert_eq!(names(vmim), ["NAME", "PHASE", "VMI"]);
    }

    #[test]
    fn datavolume_and_snapshot_columns() {
        let dv = res("cdi.kubevirt.io", "v1beta1", "datavolumes");
        assert_eq!(names(dv), ["NAME", "PHASE", "PROGRESS", "RESTARTS", "AGE"]);
        let obj = json!({"metadata": {"name": "dv", "creationTimestamp": ago(5)},
                         "status": {"phase": "ImportInProgress", "progress": "42.0%", "restartCount": 1}});
        assert_eq!(
            row_cells(dv, &obj, now()),
            vec![
                json!("dv"),
                json!("ImportInProgress"),
                json!("42.0%"),
                json!(1),
                json!("5s")
            ]
        );
        let vs = res("snapshot.storage.k8s.io", "v1", "volumesnapshots");
        assert_eq!(
            names(vs),
            [
                "NAME",
                "READYTOUSE",
                "SOURCEPVC",
                "SOURCESNAPSHOTCONTENT",
                "RESTORESIZE",
                "SNAPSHOTCLASS",
                "SNAPSHOTCONTENT",
                "CREATIONTIME",
                "AGE"
            ]
        );
        let obj = json!({"metadata": {"name": "s", "creationTimestamp": ago(600)},
                         "spec": {"source": {"persistentVolumeClaimName": "data"}},
                         "status": {"readyToUse": true, "creationTime": "not a time"}});
        let cells = row_cells(vs, &obj, now());
        assert_eq!(cells[1], json!(true));
        assert_eq!(cells[2], "data");
        assert_eq!(cells[3], Value::Null);
        assert_eq!(cells[7], "<invalid>");
        assert_eq!(cells[8], "10m");
        let vsclass = res("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses");
        assert_eq!(names(vsclass), ["NAME", "DRIVER", "DELETIONPOLICY", "AGE"]);
        let content = res("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents");
        let obj = json!({"metadata": {"name": "c"}, "status": {"restoreSize": 1073741824},
                         "spec": {"volumeSnapshotRef": {"name": "s", "namespace": "default"}}});
        let cells = row_cells(content, &obj, now());
        assert_eq!(cells[2], json!(1073741824));
        assert_eq!(cells[6..8], [json!("s"), json!("default")]);
    }

    #[test]
    fn unknown_kinds_get_name_and_age() {
        let other = ResourceInfo {
            group: "example.com",
            version: "v1",
            kind: "Widget",
            plural: "widgets",
            singular: "widget",
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            storage: "example.com/widgets",
        };
        assert_eq!(names(&other), ["NAME", "AGE"]);
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": ago(3)}});
        assert_eq!(
            row_cells(&other, &obj, now()),
            vec![json!("w"), json!("3s")]
        );
    }

    #[test]
    fn json_path_subset_parses_and_rejects() {
        assert_eq!(
            parse_json_path(".status.conditions[?(@.type=='Ready')].status").unwrap(),
            vec![
                PathSegment::Field("status"),
                PathSegment::Field("conditions"),
                PathSegment::Filter {
                    key: "type",
                    value: "Ready"
                },
                PathSegment::Field("status")
            ]
        );
        assert_eq!(
            parse_json_path(".a[2]").unwrap(),
            vec![PathSegment::Field("a"), PathSegment::Index(2)]
        );
        assert!(parse_json_path("status").is_none());
        assert!(parse_json_path(".a[x]").is_none());
        assert!(parse_json_path(".a..b").is_none());
    }
}
