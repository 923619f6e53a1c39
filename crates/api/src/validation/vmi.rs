//! VirtualMachineInstance disk and volume rules, as KubeVirt's admission webhook states them
//! (free-form messages, `FieldValueInvalid` causes), applied to VMIs and to the VMI template of
//! VirtualMachines.
//!
//! One rule is deliberately stricter than upstream: a disk serial is at most 36 characters
//! (QEMU's scsi-hd refuses longer ones and virtio-blk truncates; upstream accepts 256 and fails
//! at start, kubevirt #13858).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::meta::is_dns1123_label;
use super::{FieldError, FieldErrorReason, Path, json};

/// The longest serial QEMU accepts for a scsi-hd device (with `device_id` set).
pub const MAX_SERIAL_LEN: usize = 36;
const SUPPORTED_BUSES: &[&str] = &["virtio", "scsi", "sata", "usb"];
const SUPPORTED_CACHE_MODES: &[&str] = &["none", "writethrough", "writeback"];
const VOLUME_SOURCES: &[&str] = &[
    "hostDisk",
    "persistentVolumeClaim",
    "cloudInitNoCloud",
    "cloudInitConfigDrive",
    "sysprep",
    "containerDisk",
    "ephemeral",
    "emptyDisk",
    "dataVolume",
    "configMap",
    "secret",
    "downwardAPI",
    "serviceAccount",
    "downwardMetrics",
    "memoryDump",
];

static SERIAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[A-Za-z0-9_.+-]+$").expect("valid regex"));

fn invalid(field: impl Into<String>, message: String) -> FieldError {
    FieldError::custom(FieldErrorReason::FieldValueInvalid, field, message)
}

pub(super) fn validate_vmi(obj: &Value) -> Vec<FieldError> {
    validate_spec(obj.get("spec").unwrap_or(&Value::Null), &Path::new("spec"))
}

pub(super) fn validate_vm(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let running = json::get(spec, "running");
    let run_strategy = json::get(spec, "runStrategy");
    if running.is_some() && run_strategy.is_some() {
        errs.push(invalid(
            "spec.running",
            "Running and RunStrategy are mutually exclusive. Note that Running is deprecated, \
             please use RunStrategy instead"
                .to_string(),
        ));
    }
    if let Some(strategy) = run_strategy {
        const STRATEGIES: &[&str] = &[
            "Always",
            "RerunOnFailure",
            "Manual",
            "Halted",
            "Once",
            "WaitAsReceiver",
        ];
        let s = strategy.as_str().unwrap_or("");
        if !STRATEGIES.contains(&s) {
            errs.push(invalid(
                "spec.runStrategy",
                format!("Invalid RunStrategy ({s})"),
            ));
        }
    }
    match spec.get("template").filter(|t| !t.is_null()) {
        None => errs.push(FieldError::custom(
            FieldErrorReason::FieldValueRequired,
            "spec.template",
            "missing virtual machine template.",
        )),
        Some(template) => errs.extend(validate_spec(
            template.get("spec").unwrap_or(&Value::Null),
            &Path::new("spec").child("template").child("spec"),
        )),
    }
    errs
}

/// Disks and volumes of a VMI spec at `path`.
fn validate_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let disks_path = path.child("domain").child("devices").child("disks");
    let disks = spec
        .pointer("/domain/devices/disks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (idx, disk) in disks.iter().enumerate() {
        errs.extend(validate_disk(disks, idx, disk, &disks_path));
    }

    let volumes_path = path.child("volumes");
    let volumes = json::arr(spec, "volumes");
    let mut volume_names: HashMap<&str, usize> = HashMap::new();
    for (idx, volume) in volumes.iter().enumerate() {
        let name = json::str_or_empty(volume, "name");
        match volume_names.get(name) {
            Some(other) => errs.push(invalid(
                volumes_path.index(idx).child("name"),
                format!(
                    "{} and {} must not have the same Name.",
                    volumes_path.index(idx),
                    volumes_path.index(*other)
                ),
            )),
            None => {
                volume_names.insert(name, idx);
            }
        }
        for msg in is_dns1123_label(name) {
            errs.push(invalid(volumes_path.index(idx).child("name"), msg));
        }
        let sources = VOLUME_SOURCES
            .iter()
            .filter(|s| json::get(volume, s).is_some())
            .count();
        if sources != 1 {
            errs.push(invalid(
                volumes_path.index(idx),
                format!(
                    "{} must have exactly one source type set",
                    volumes_path.index(idx)
                ),
            ));
        }
        if let Some(pvc) = json::get(volume, "persistentVolumeClaim")
            && json::str_or_empty(pvc, "claimName").is_empty()
        {
            errs.push(invalid(
                volumes_path
                    .index(idx)
                    .child("persistentVolumeClaim")
                    .child("claimName"),
                format!(
                    "{} must be set",
                    volumes_path
                        .index(idx)
                        .child("persistentVolumeClaim")
                        .child("claimName")
                ),
            ));
        }
        if let Some(dv) = json::get(volume, "dataVolume")
            && json::str_or_empty(dv, "name").is_empty()
        {
            errs.push(invalid(
                volumes_path.index(idx).child("dataVolume").child("name"),
                format!(
                    "{} must be set",
                    volumes_path.index(idx).child("dataVolume").child("name")
                ),
            ));
        }
    }

    // Every disk is backed by the volume of the same name.
    for (idx, disk) in disks.iter().enumerate() {
        let name = json::str_or_empty(disk, "name");
        match volume_names.get(name) {
            None => errs.push(invalid(
                disks_path.index(idx).child("name"),
                format!(
                    "{} '{}' not found.",
                    disks_path.index(idx).child("Name"),
                    name
                ),
            )),
            Some(&v) if is_hotpluggable(&volumes[v]) => {
                errs.extend(validate_hotplug_disk(disk, &disks_path.index(idx)));
            }
            Some(_) => {}
        }
    }
    errs
}

fn is_hotpluggable(volume: &Value) -> bool {
    ["persistentVolumeClaim", "dataVolume"].iter().any(|s| {
        volume
            .get(*s)
            .and_then(|v| v.get("hotpluggable"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    })
}

/// The buses a disk can be hot-plugged on (COMPATIBILITY §7): a SCSI disk or LUN, or a virtio
/// disk. CD-ROMs and SATA/USB disks cannot be plugged into a running guest.
fn validate_hotplug_disk(disk: &Value, path: &Path) -> Vec<FieldError> {
    let (_, kind, bus) = device_target(disk);
    let name = json::str_or_empty(disk, "name");
    let ok = match kind {
        "disk" => bus == "scsi" || bus == "virtio",
        "lun" => bus == "scsi",
        _ => false,
    };
    if ok {
        Vec::new()
    } else {
        vec![invalid(
            path.child(if kind.is_empty() { "disk" } else { kind })
                .child("bus"),
            format!("hotplugged Disk {name} does not use a scsi or virtio bus"),
        )]
    }
}

/// The `BadRequest` message for an `addvolume` body that lacks what upstream's handler
/// requires (a name, a disk, a volume source with exactly one of persistentVolumeClaim and
/// dataVolume), or `None` when the body is complete. The disk's own rules are checked afterwards
/// by [`super::validate`] on the patched VMI.
pub fn add_volume_options_bad_request(opts: &Value) -> Option<&'static str> {
    if json::str_or_empty(opts, "name").is_empty() {
        return Some("AddVolumeOptions requires name to be set");
    }
    if json::get(opts, "disk").is_none() {
        return Some("AddVolumeOptions requires disk to not be nil");
    }
    let Some(source) = json::get(opts, "volumeSource") else {
        return Some("AddVolumeOptions requires VolumeSource to not be nil");
    };
    let sources = ["persistentVolumeClaim", "dataVolume"]
        .iter()
        .filter(|s| json::get(source, s).is_some())
        .count();
    if sources != 1 {
        return Some(
            "AddVolumeOptions requires exactly one of persistentVolumeClaim or dataVolume",
        );
    }
    None
}

/// The `BadRequest` message for a `removevolume` body without a name, or `None`.
pub fn remove_volume_options_bad_request(opts: &Value) -> Option<&'static str> {
    if json::str_or_empty(opts, "name").is_empty() {
        Some("RemoveVolumeOptions requires name to be set")
    } else {
        None
    }
}

/// The device target of a disk (`disk`, `lun` or `cdrom`) and its bus.
fn device_target(disk: &Value) -> (usize, &'static str, &str) {
    let mut count = 0;
    let mut kind = "";
    let mut bus = "";
    for target in ["disk", "lun", "cdrom"] {
        if let Some(t) = json::get(disk, target) {
            count += 1;
            if kind.is_empty() {
                kind = target;
                bus = json::str_or_empty(t, "bus");
            }
        }
    }
    (count, kind, bus)
}

fn validate_disk(disks: &[Value], idx: usize, disk: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let dp = path.index(idx);
    let name = json::str_or_empty(disk, "name");

    if let Some(other) = disks[..idx]
        .iter()
        .position(|d| json::str_or_empty(d, "name") == name)
    {
        errs.push(invalid(
            dp.child("name"),
            format!(
                "{} and {} must not have the same Name.",
                dp,
                path.index(other)
            ),
        ));
    }

    let (targets, kind, bus) = device_target(disk);
    if targets > 1 {
        errs.push(invalid(
            &dp,
            format!("{dp} can only have a single target type defined"),
        ));
    }

    if let Some(order) = json::get(disk, "bootOrder")
        && order.as_i64().is_none_or(|o| o < 1)
    {
        errs.push(invalid(
            dp.child("bootOrder"),
            format!("{dp} must have a boot order > 0, if supplied"),
        ));
    }

    if !bus.is_empty() {
        match bus {
            "virtio" if kind == "cdrom" => errs.push(invalid(
                dp.child("cdrom").child("bus"),
                format!("Bus type {bus} is invalid for CD-ROM device"),
            )),
            "sata"
                if kind == "disk"
                    && disk.pointer("/disk/readonly").and_then(Value::as_bool) == Some(true) =>
            {
                errs.push(invalid(
                    dp.child("disk").child("bus"),
                    format!("{bus} hard-disks do not support read-only."),
                ))
            }
            "ide" => errs.push(invalid(
                dp.child(kind).child("bus"),
                "IDE bus is not supported".to_string(),
            )),
            b if !SUPPORTED_BUSES.contains(&b) => errs.push(invalid(
                dp.child(kind).child("bus"),
                format!(
                    "{dp} is set with an unrecognized bus {b}, must be one of: [{}]",
                    SUPPORTED_BUSES.join(" ")
                ),
            )),
            _ => {}
        }
        // Ours, not upstream's: QEMU offers SCSI passthrough (and so LUN semantics) only on a
        // SCSI controller.
        if kind == "lun" && bus != "scsi" {
            errs.push(invalid(
                dp.child("lun").child("bus"),
                format!("{dp} is a LUN and LUNs are only supported on the scsi bus"),
            ));
        }
    }
    if disk.get("dedicatedIOThread").and_then(Value::as_bool) == Some(true) && bus != "virtio" {
        errs.push(FieldError::custom(
            FieldErrorReason::FieldValueNotSupported,
            &dp,
            format!("IOThreads are not supported for disks on a {bus} bus"),
        ));
    }

    let serial = json::str_or_empty(disk, "serial");
    if !serial.is_empty() {
        if !SERIAL.is_match(serial) {
            errs.push(invalid(
                dp.child("serial"),
                format!(
                    "{dp} must be made up of the following characters [A-Za-z0-9_.+-], if specified"
                ),
            ));
        }
        if serial.chars().count() > MAX_SERIAL_LEN {
            errs.push(invalid(
                dp.child("serial"),
                format!(
                    "{dp} must be less than or equal to {MAX_SERIAL_LEN} in length, if specified"
                ),
            ));
        }
    }

    let cache = json::str_or_empty(disk, "cache");
    if !cache.is_empty() && !SUPPORTED_CACHE_MODES.contains(&cache) {
        errs.push(invalid(
            dp.child("cache"),
            format!("{} has invalid value {cache}", dp.child("cache")),
        ));
    }

    let io = json::str_or_empty(disk, "io");
    if !io.is_empty() && io != "native" && io != "threads" {
        errs.push(FieldError::custom(
            FieldErrorReason::FieldValueNotSupported,
            dp.child("io"),
            format!(
                "Disk IO mode for {path} is not supported. Supported modes are: native, threads."
            ),
        ));
    }

    if let Some(policy) = json::str(disk, "errorPolicy")
        && !["stop", "ignore", "report", "enospace"].contains(&policy)
    {
        errs.push(invalid(
            dp.child("errorPolicy"),
            format!("{} has invalid value \"{policy}\"", dp.child("errorPolicy")),
        ));
    }

    // A disk's name becomes a container name in the launcher pod.
    for msg in is_dns1123_label(name) {
        errs.push(invalid(dp.child("name"), msg));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vmi(disks: Value, volumes: Value) -> Value {
        json!({"metadata": {"name": "v", "namespace": "ns"},
               "spec": {"domain": {"devices": {"disks": disks}}, "volumes": volumes}})
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn disk_errors(disk: Value) -> Vec<String> {
        messages(&validate_vmi(&vmi(
            json!([disk]),
            json!([{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]),
        )))
    }

    #[test]
    fn valid_vmi_passes() {
        let v = vmi(
            json!([{"name": "d", "disk": {"bus": "virtio"}, "serial": "ABC-1", "cache": "none"},
                   {"name": "h", "disk": {"bus": "scsi"}}]),
            json!([{"name": "d", "containerDisk": {"image": "img"}},
                   {"name": "h", "dataVolume": {"name": "dv", "hotpluggable": true}}]),
        );
        assert!(validate_vmi(&v).is_empty(), "{:?}", validate_vmi(&v));
    }

    #[test]
    fn disk_names_are_unique() {
        let errs = validate_vmi(&vmi(
            json!([{"name": "d"}, {"name": "d"}]),
            json!([{"name": "d", "emptyDisk": {"capacity": "1Gi"}}]),
        ));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.domain.devices.disks[1].name: spec.domain.devices.disks[1] and spec.domain.devices.disks[0] must not have the same Name."
            ]
        );
    }

    #[test]
    fn each_disk_needs_a_volume_of_the_same_name() {
        let errs = validate_vmi(&vmi(json!([{"name": "d"}]), json!([])));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.domain.devices.disks[0].name: spec.domain.devices.disks[0].Name 'd' not found."
            ]
        );
    }

    #[test]
    fn one_target_type_per_disk() {
        assert_eq!(
            disk_errors(json!({"name": "d", "disk": {}, "cdrom": {}})),
            vec![
                "spec.domain.devices.disks[0]: spec.domain.devices.disks[0] can only have a single target type defined"
            ]
        );
    }

    #[test]
    fn serial_characters_and_length() {
        assert_eq!(
            disk_errors(json!({"name": "d", "serial": "has space"})),
            vec![
                "spec.domain.devices.disks[0].serial: spec.domain.devices.disks[0] must be made up of the following characters [A-Za-z0-9_.+-], if specified"
            ]
        );
        assert!(disk_errors(json!({"name": "d", "serial": "a".repeat(36)})).is_empty());
        assert_eq!(
            disk_errors(json!({"name": "d", "serial": "a".repeat(37)})),
            vec![
                "spec.domain.devices.disks[0].serial: spec.domain.devices.disks[0] must be less than or equal to 36 in length, if specified"
            ]
        );
    }

    #[test]
    fn cache_mode_must_be_known() {
        assert!(disk_errors(json!({"name": "d", "cache": "writeback"})).is_empty());
        assert_eq!(
            disk_errors(json!({"name": "d", "cache": "unsafe"})),
            vec![
                "spec.domain.devices.disks[0].cache: spec.domain.devices.disks[0].cache has invalid value unsafe"
            ]
        );
    }

    #[test]
    fn bus_must_be_known_and_fit_the_device() {
        assert_eq!(
            disk_errors(json!({"name": "d", "disk": {"bus": "pci"}})),
            vec![
                "spec.domain.devices.disks[0].disk.bus: spec.domain.devices.disks[0] is set with an unrecognized bus pci, must be one of: [virtio scsi sata usb]"
            ]
        );
        assert_eq!(
            disk_errors(json!({"name": "d", "cdrom": {"bus": "virtio"}})),
            vec![
                "spec.domain.devices.disks[0].cdrom.bus: Bus type virtio is invalid for CD-ROM device"
            ]
        );
        assert_eq!(
            disk_errors(json!({"name": "d", "disk": {"bus": "sata", "readonly": true}})),
            vec![
                "spec.domain.devices.disks[0].disk.bus: sata hard-disks do not support read-only."
            ]
        );
    }

    #[test]
    fn luns_only_on_scsi() {
        assert!(disk_errors(json!({"name": "d", "lun": {"bus": "scsi"}})).is_empty());
        assert_eq!(
            disk_errors(json!({"name": "d", "lun": {"bus": "virtio"}})),
            vec![
                "spec.domain.devices.disks[0].lun.bus: spec.domain.devices.disks[0] is a LUN and LUNs are only supported on the scsi bus"
            ]
        );
    }

    #[test]
    fn boot_order_io_error_policy_and_iothreads() {
        assert_eq!(disk_errors(json!({"name": "d", "bootOrder": 0})).len(), 1);
        assert_eq!(disk_errors(json!({"name": "d", "io": "fast"})).len(), 1);
        assert_eq!(
            disk_errors(json!({"name": "d", "errorPolicy": "panic"})).len(),
            1
        );
        assert_eq!(
            disk_errors(json!({"name": "d", "disk": {"bus": "sata"}, "dedicatedIOThread": true})),
            vec![
                "spec.domain.devices.disks[0]: IOThreads are not supported for disks on a sata bus"
            ]
        );
    }

    #[test]
    fn volumes_have_unique_names_and_one_source() {
        let errs = validate_vmi(&vmi(
            json!([]),
            json!([{"name": "a", "emptyDisk": {"capacity": "1Gi"}},
                   {"name": "a", "containerDisk": {"image": "i"}},
                   {"name": "b"},
                   {"name": "c", "containerDisk": {"image": "i"}, "emptyDisk": {"capacity": "1Gi"}}]),
        ));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.volumes[1].name: spec.volumes[1] and spec.volumes[0] must not have the same Name.",
                "spec.volumes[2]: spec.volumes[2] must have exactly one source type set",
                "spec.volumes[3]: spec.volumes[3] must have exactly one source type set"
            ]
        );
    }

    #[test]
    fn claim_and_data_volume_names_are_required() {
        let errs = validate_vmi(&vmi(
            json!([]),
            json!([{"name": "a", "persistentVolumeClaim": {}}, {"name": "b", "dataVolume": {}}]),
        ));
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0].field,
            "spec.volumes[0].persistentVolumeClaim.claimName"
        );
        assert_eq!(errs[1].field, "spec.volumes[1].dataVolume.name");
    }

    #[test]
    fn hotplugged_disks_use_scsi_or_virtio() {
        let volumes = json!([{"name": "hp", "persistentVolumeClaim": {"claimName": "c", "hotpluggable": true}}]);
        for ok in [
            json!({"name": "hp", "disk": {"bus": "scsi"}}),
            json!({"name": "hp", "disk": {"bus": "virtio"}}),
            json!({"name": "hp", "lun": {"bus": "scsi"}}),
        ] {
            assert!(validate_vmi(&vmi(json!([ok]), volumes.clone())).is_empty());
        }
        let errs = validate_vmi(&vmi(
            json!([{"name": "hp", "disk": {"bus": "sata"}}]),
            volumes.clone(),
        ));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.domain.devices.disks[0].disk.bus: hotplugged Disk hp does not use a scsi or virtio bus"
            ]
        );
        let errs = validate_vmi(&vmi(
            json!([{"name": "hp", "cdrom": {"bus": "sata"}}]),
            volumes,
        ));
        assert_eq!(errs.len(), 1);
        // The same bus is fine for a disk that is not hot-plugged.
        let cold = json!([{"name": "hp", "persistentVolumeClaim": {"claimName": "c"}}]);
        assert!(
            validate_vmi(&vmi(json!([{"name": "hp", "disk": {"bus": "sata"}}]), cold)).is_empty()
        );
    }

    #[test]
    fn add_volume_bodies_need_name_disk_and_one_source() {
        assert_eq!(
            add_volume_options_bad_request(&json!({})),
            Some("AddVolumeOptions requires name to be set")
        );
        assert_eq!(
            add_volume_options_bad_request(&json!({"name": "v"})),
            Some("AddVolumeOptions requires disk to not be nil")
        );
        assert_eq!(
            add_volume_options_bad_request(&json!({"name": "v", "disk": {}})),
            Some("AddVolumeOptions requires VolumeSource to not be nil")
        );
        assert!(add_volume_options_bad_request(&json!({"name": "v", "disk": {},
            "volumeSource": {"persistentVolumeClaim": {"claimName": "c"}, "dataVolume": {"name": "d"}}})).is_some());
        assert_eq!(
            add_volume_options_bad_request(&json!({"name": "v", "disk": {},
                "volumeSource": {"dataVolume": {"name": "d"}}})),
            None
        );
        assert!(remove_volume_options_bad_request(&json!({})).is_some());
        assert!(remove_volume_options_bad_request(&json!({"name": "v"})).is_none());
    }

    #[test]
    fn volume_and_disk_names_are_labels() {
        let errs = validate_vmi(&vmi(
            json!([{"name": "Root"}]),
            json!([{"name": "Root", "containerDisk": {"image": "i"}}]),
        ));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].field, "spec.domain.devices.disks[0].name");
        assert_eq!(errs[1].field, "spec.volumes[0].name");
    }

    #[test]
    fn ide_bus_is_refused() {
        assert_eq!(
            disk_errors(json!({"name": "d", "disk": {"bus": "ide"}})),
            vec!["spec.domain.devices.disks[0].disk.bus: IDE bus is not supported"]
        );
    }

    #[test]
    fn vm_template_is_validated_with_its_own_paths() {
        let vm = json!({"metadata": {"name": "vm", "namespace": "ns"}, "spec": {
            "runStrategy": "Always",
            "template": {"spec": {"domain": {"devices": {"disks": [{"name": "d"}]}}}}}});
        let errs = validate_vm(&vm);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].field,
            "spec.template.spec.domain.devices.disks[0].name"
        );
    }

    #[test]
    fn vm_needs_a_template_and_one_run_control() {
        let errs = validate_vm(&json!({"spec": {"running": true, "runStrategy": "Always"}}));
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "spec.running");
        assert_eq!(
            errs[1].to_string(),
            "spec.template: missing virtual machine template."
        );
        let errs =
            validate_vm(&json!({"spec": {"runStrategy": "Sometimes", "template": {"spec": {}}}}));
        assert_eq!(
            messages(&errs),
            vec!["spec.runStrategy: Invalid RunStrategy (Sometimes)"]
        );
    }
}
