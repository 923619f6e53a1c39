//! CSI conformance of the built-in driver, RPC by RPC, over a real unix
//! socket with real loop devices and mounts (run as root). Each test uses
//! its own state directory and checks that nothing is left mounted or
//! attached.

mod common;

use std::fs;
use std::io::{Read, Write};

use common::*;
use tonic::Code;
use volplane_csi::proto;
use volplane_csi::proto::volume_capability::access_mode::Mode;

#[tokio::test(flavor = "multi_thread")]
async fn identity_reports_name_version_capabilities_and_probe() {
    let h = Harness::in_process().await;
    let info = h.client.get_plugin_info(Default::default()).await.unwrap();
    assert_eq!(info.name, "local.csi.volplane.io");
    assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));
    let caps = h
        .client
        .get_plugin_capabilities(Default::default())
        .await
        .unwrap();
    use proto::plugin_capability::{Type, service, volume_expansion};
    let services: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|c| match &c.r#type {
            Some(Type::Service(s)) => Some(s.r#type),
            _ => None,
        })
        .collect();
    assert!(services.contains(&(service::Type::ControllerService as i32)));
    assert!(services.contains(&(service::Type::VolumeAccessibilityConstraints as i32)));
    assert!(caps.capabilities.iter().any(|c| matches!(&c.r#type,
        Some(Type::VolumeExpansion(e)) if e.r#type == volume_expansion::Type::Online as i32)));
    let probe = h.client.probe(Default::default()).await.unwrap();
    assert_eq!(probe.ready, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_node_and_group_capabilities_are_reported() {
    let h = Harness::in_process().await;
    use proto::controller_service_capability::rpc::Type as C;
    use proto::node_service_capability::rpc::Type as N;
    let controller: Vec<i32> = h
        .client
        .controller_get_capabilities(Default::default())
        .await
        .unwrap()
        .capabilities
        .into_iter()
        .filter_map(|c| {
            c.r#type
                .map(|proto::controller_service_capability::Type::Rpc(r)| r.r#type)
        })
        .collect();
    for wanted in [
        C::CreateDeleteVolume,
        C::PublishUnpublishVolume,
        C::ListVolumes,
        C::GetCapacity,
        C::CreateDeleteSnapshot,
        C::ListSnapshots,
        C::CloneVolume,
        C::ExpandVolume,
        C::GetVolume,
        C::ModifyVolume,
        C::GetSnapshot,
    ] {
        assert!(controller.contains(&(wanted as i32)), "{wanted:?}");
    }
    let node: Vec<i32> = h
        .client
        .node_get_capabilities(Default::default())
        .await
        .unwrap()
        .capabilities
        .into_iter()
        .filter_map(|c| {
            c.r#type
                .map(|proto::node_service_capability::Type::Rpc(r)| r.r#type)
        })
        .collect();
    for wanted in [
        N::StageUnstageVolume,
        N::GetVolumeStats,
        N::ExpandVolume,
        N::VolumeCondition,
    ] {
        assert!(node.contains(&(wanted as i32)), "{wanted:?}");
    }
    let info = h.client.node_get_info(Default::default()).await.unwrap();
    assert_eq!(info.node_id, NODE);
    assert_eq!(info.max_volumes_per_node, 256);
    let segments = info.accessible_topology.unwrap().segments;
    assert_eq!(
        segments
            .get("topology.local.csi.volplane.io/host")
            .map(String::as_str),
        Some("test-host")
    );
    let group = h
        .client
        .group_controller_get_capabilities(Default::default())
        .await
        .unwrap();
    assert!(group.capabilities.is_empty());
    assert_eq!(
        code(
            h.client
                .create_volume_group_snapshot(Default::default())
                .await
        ),
        Code::Unimplemented
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn node_only_driver_does_not_serve_the_controller() {
    let h = Harness::in_process_with(|c| c.controller = false).await;
    assert_eq!(
        code(
            h.client
                .controller_get_capabilities(Default::default())
                .await
        ),
        Code::Unimplemented
    );
    let caps = h
        .client
        .get_plugin_capabilities(Default::default())
        .await
        .unwrap();
    assert!(!caps.capabilities.iter().any(|c| matches!(&c.r#type,
        Some(proto::plugin_capability::Type::Service(s)) if s.r#type == 1)));
    h.client.node_get_info(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_volume_is_idempotent_and_an_incompatible_repeat_already_exists() {
    let h = Harness::in_process().await;
    let first = h.create("pvc-idem", 64 * MIB, rwo()).await;
    assert_eq!(first.capacity_bytes, 64 * MIB);
    assert_eq!(
        first.accessible_topology[0].segments["topology.local.csi.volplane.io/host"],
        "test-host"
    );
    let again = h.create("pvc-idem", 64 * MIB, rwo()).await;
    assert_eq!(first, again);
    let bigger = h
        .client
        .create_volume(create_request("pvc-idem", 128 * MIB, rwo()))
        .await;
    assert_eq!(code(bigger), Code::AlreadyExists);
    let block = h
        .client
        .create_volume(create_request(
            "pvc-idem",
            64 * MIB,
            block_cap(Mode::SingleNodeWriter),
        ))
        .await;
    assert_eq!(code(block), Code::AlreadyExists);
    let image = h
        .state_dir
        .join("images")
        .join(format!("{}.img", first.volume_id));
    let meta = fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 64 << 20, "capacity is a real backing image");
    use std::os::unix::fs::MetadataExt;
    assert!(meta.blocks() * 512 < 1 << 20, "and it is sparse");
    h.delete(&first.volume_id).await.unwrap();
    assert!(!image.exists());
    h.delete(&first.volume_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_volume_bad_input_gets_the_spec_code_and_changes_nothing() {
    let h = Harness::in_process().await;
    let mut req = create_request("", 64 * MIB, rwo());
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    req.name = "pvc-bad".into();
    req.volume_capabilities.clear();
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    let mut malformed = rwo();
    malformed.access_type = None;
    req.volume_capabilities = vec![malformed];
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    let mut unknown_mode = rwo();
    unknown_mode.access_mode = Some(proto::volume_capability::AccessMode { mode: 0 });
    req.volume_capabilities = vec![unknown_mode];
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    req.volume_capabilities = vec![mount_cap(Mode::SingleNodeWriter, "ntfs")];
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    req.volume_capabilities = vec![rwo()];
    req.capacity_range = Some(proto::CapacityRange {
        required_bytes: i64::MAX,
        limit_bytes: 0,
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::OutOfRange
    );
    req.capacity_range = Some(proto::CapacityRange {
        required_bytes: 64 * MIB,
        limit_bytes: MIB,
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::OutOfRange
    );
    req.capacity_range = Some(proto::CapacityRange {
        required_bytes: -5,
        limit_bytes: 0,
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    req.capacity_range = None;
    req.parameters.insert("colour".into(), "blue".into());
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::InvalidArgument
    );
    req.parameters.clear();
    use proto::volume_content_source::{SnapshotSource, Type, VolumeSource};
    req.volume_content_source = Some(proto::VolumeContentSource {
        r#type: Some(Type::Snapshot(SnapshotSource {
            snapshot_id: "snap-00000000000000000000000000000000".into(),
        })),
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::NotFound
    );
    req.volume_content_source = Some(proto::VolumeContentSource {
        r#type: Some(Type::Volume(VolumeSource {
            volume_id: "no-such-volume".into(),
        })),
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::NotFound
    );
    req.volume_content_source = None;
    let elsewhere = proto::Topology {
        segments: [(
            "topology.local.csi.volplane.io/host".to_string(),
            "other".to_string(),
        )]
        .into(),
    };
    req.accessibility_requirements = Some(proto::TopologyRequirement {
        requisite: vec![elsewhere],
        preferred: vec![],
    });
    assert_eq!(
        code(h.client.create_volume(req.clone()).await),
        Code::ResourceExhausted
    );
    let listed = h.client.list_volumes(Default::default()).await.unwrap();
    assert!(listed.entries.is_empty());
    assert_eq!(h.state_files("images"), 0);
    assert_eq!(h.state_files("volumes"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_volume_of_an_unknown_id_is_ok_and_a_missing_id_is_invalid() {
    let h = Harness::in_process().await;
    h.delete("vol-0123456789abcdef0123456789abcdef")
        .await
        .unwrap();
    h.delete("something-else").await.unwrap();
    assert_eq!(code(h.delete("").await), Code::InvalidArgument);
}

fn publish_req(
    volume_id: &str,
    node_id: &str,
    cap: proto::VolumeCapability,
    readonly: bool,
) -> proto::ControllerPublishVolumeRequest {
    proto::ControllerPublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        volume_capability: Some(cap),
        readonly,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_publish_enforces_nodes_access_modes_and_limits() {
    let h = Harness::in_process().await;
    // A second node plugin with an attach limit of 1 shares the host.
    let mut other = volplane_csi::DriverConfig::new("node-b", &h.state_dir);
    other.controller = false;
    other.max_volumes_per_node = 1;
    let _node_b = volplane_csi::Driver::new(other, volplane_csi::host::Host::kernel()).unwrap();
    let v1 = h.create("pvc-pub1", 16 * MIB, rwo()).await.volume_id;
    let v2 = h.create("pvc-pub2", 16 * MIB, rwo()).await.volume_id;
    let c = &h.client;
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(
                "vol-0123456789abcdef0123456789abcdef",
                NODE,
                rwo(),
                false
            ))
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(&v1, "node-z", rwo(), false))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(&v1, "", rwo(), false))
                .await
        ),
        Code::InvalidArgument
    );
    let mut no_cap = publish_req(&v1, NODE, rwo(), false);
    no_cap.volume_capability = None;
    assert_eq!(
        code(c.controller_publish_volume(no_cap).await),
        Code::InvalidArgument
    );
    c.controller_publish_volume(publish_req(&v1, NODE, rwo(), false))
        .await
        .unwrap();
    c.controller_publish_volume(publish_req(&v1, NODE, rwo(), false))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(&v1, NODE, rwo(), true))
                .await
        ),
        Code::AlreadyExists
    );
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(&v1, "node-b", rwo(), false))
                .await
        ),
        Code::FailedPrecondition
    );
    let many_readers = mount_cap(Mode::MultiNodeReaderOnly, "");
    c.controller_publish_volume(publish_req(&v1, "node-b", many_readers.clone(), false))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.controller_publish_volume(publish_req(&v2, "node-b", many_readers, false))
                .await
        ),
        Code::ResourceExhausted
    );
    let got = c
        .controller_get_volume(proto::ControllerGetVolumeRequest {
            volume_id: v1.clone(),
        })
        .await
        .unwrap();
    let mut nodes = got.status.unwrap().published_node_ids;
    nodes.sort();
    assert_eq!(nodes, vec![NODE.to_string(), "node-b".to_string()]);
    assert_eq!(code(h.delete(&v1).await), Code::FailedPrecondition);
    let unpublish = |node: &str| proto::ControllerUnpublishVolumeRequest {
        volume_id: v1.clone(),
        node_id: node.into(),
        ..Default::default()
    };
    c.controller_unpublish_volume(unpublish(NODE))
        .await
        .unwrap();
    c.controller_unpublish_volume(unpublish(NODE))
        .await
        .unwrap();
    c.controller_unpublish_volume(unpublish("node-b"))
        .await
        .unwrap();
    c.controller_unpublish_volume(proto::ControllerUnpublishVolumeRequest {
        volume_id: "vol-0123456789abcdef0123456789abcdef".into(),
        node_id: NODE.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    h.delete(&v1).await.unwrap();
    h.delete(&v2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_volume_capabilities_confirms_only_what_the_driver_supports() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-validate", 16 * MIB, rwo()).await.volume_id;
    let validate =
        |caps: Vec<proto::VolumeCapability>, id: &str| proto::ValidateVolumeCapabilitiesRequest {
            volume_id: id.into(),
            volume_capabilities: caps,
            ..Default::default()
        };
    let ok = h
        .client
        .validate_volume_capabilities(validate(vec![rwo()], &v))
        .await
        .unwrap();
    assert_eq!(ok.confirmed.unwrap().volume_capabilities, vec![rwo()]);
    let multi = h
        .client
        .validate_volume_capabilities(validate(
            vec![mount_cap(Mode::MultiNodeMultiWriter, "")],
            &v,
        ))
        .await
        .unwrap();
    assert!(multi.confirmed.is_none());
    assert!(!multi.message.is_empty());
    assert_eq!(
        code(
            h.client
                .validate_volume_capabilities(validate(vec![], &v))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.client
                .validate_volume_capabilities(validate(vec![rwo()], ""))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.client
                .validate_volume_capabilities(validate(
                    vec![rwo()],
                    "vol-0123456789abcdef0123456789abcdef"
                ))
                .await
        ),
        Code::NotFound
    );
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn list_volumes_paginates_and_refuses_tokens_it_did_not_issue() {
    let h = Harness::in_process().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            h.create(&format!("pvc-list-{i}"), 16 * MIB, rwo())
                .await
                .volume_id,
        );
    }
    created.sort();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client
            .list_volumes(proto::ListVolumesRequest {
                max_entries: 2,
                starting_token: token.clone(),
            })
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(
            page.entries
                .iter()
                .map(|e| e.volume.as_ref().unwrap().volume_id.clone()),
        );
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen, created);
    let bad = h
        .client
        .list_volumes(proto::ListVolumesRequest {
            max_entries: 0,
            starting_token: "bogus".into(),
        })
        .await;
    assert_eq!(code(bad), Code::Aborted);
    let negative = h
        .client
        .list_volumes(proto::ListVolumesRequest {
            max_entries: -1,
            starting_token: String::new(),
        })
        .await;
    assert_eq!(code(negative), Code::InvalidArgument);
    for id in created {
        h.delete(&id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_capacity_reports_real_free_space_on_this_host_only() {
    let h = Harness::in_process().await;
    let here = h
        .client
        .get_capacity(proto::GetCapacityRequest {
            volume_capabilities: vec![rwo()],
            ..Default::default()
        })
        .await
        .unwrap();
    let stat = nix::sys::statvfs::statvfs(&h.state_dir).unwrap();
    let free = stat.blocks_available() as i64 * stat.fragment_size() as i64;
    assert!(here.available_capacity > 0);
    assert!(
        (here.available_capacity - free).abs() < free / 10 + (256 << 20),
        "{} vs {}",
        here.available_capacity,
        free
    );
    assert!(here.maximum_volume_size.unwrap() > 0);
    assert_eq!(here.minimum_volume_size, Some(16 << 20));
    let elsewhere = proto::Topology {
        segments: [(
            "topology.local.csi.volplane.io/host".to_string(),
            "other".to_string(),
        )]
        .into(),
    };
    let there = h
        .client
        .get_capacity(proto::GetCapacityRequest {
            accessible_topology: Some(elsewhere),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(there.available_capacity, 0);
}

fn read_file(path: &std::path::Path) -> String {
    let mut s = String::new();
    fs::File::open(path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_volume_stages_publishes_read_write_and_read_only_and_cleans_up() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-mount", 64 * MIB, rwo()).await.volume_id;
    let staging = h.path("staging/pvc-mount");
    h.stage(&v, &staging, rwo()).await.unwrap();
    assert!(h.is_mounted(&staging));
    h.stage(&v, &staging, rwo()).await.unwrap();
    assert_eq!(
        h.loop_devices().len(),
        1,
        "one loop device however often it is staged"
    );
    assert_eq!(
        code(
            h.stage(&v, &staging, block_cap(Mode::SingleNodeWriter))
                .await
        ),
        Code::AlreadyExists
    );
    let rw = h.path("pods/a/volume");
    let ro = h.path("pods/b/volume");
    h.publish(&v, &staging, &rw, rwo(), false).await.unwrap();
    h.publish(&v, &staging, &rw, rwo(), false).await.unwrap();
    assert_eq!(
        code(h.publish(&v, &staging, &rw, rwo(), true).await),
        Code::AlreadyExists
    );
    h.publish(&v, &staging, &ro, rwo(), true).await.unwrap();
    fs::File::create(rw.join("hello"))
        .unwrap()
        .write_all(b"world")
        .unwrap();
    assert_eq!(read_file(&ro.join("hello")), "world");
    let err = fs::File::create(ro.join("nope")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    let stats = h
        .client
        .node_get_volume_stats(proto::NodeGetVolumeStatsRequest {
            volume_id: v.clone(),
            volume_path: rw.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.usage.len(), 2);
    assert!(
        stats
            .usage
            .iter()
            .all(|u| u.total > 0 && u.used > 0 && u.available > 0)
    );
    assert!(!stats.volume_condition.unwrap().abnormal);
    let wrong_path = proto::NodeGetVolumeStatsRequest {
        volume_id: v.clone(),
        volume_path: "/nonexistent".into(),
        ..Default::default()
    };
    assert_eq!(
        code(h.client.node_get_volume_stats(wrong_path).await),
        Code::NotFound
    );
    assert_eq!(
        code(h.unstage(&v, &staging).await),
        Code::FailedPrecondition
    );
    h.unpublish(&v, &rw).await.unwrap();
    h.unpublish(&v, &ro).await.unwrap();
    h.unpublish(&v, &ro).await.unwrap();
    assert!(
        !rw.exists() && !ro.exists(),
        "unpublish removes the targets it created"
    );
    h.unstage(&v, &staging).await.unwrap();
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn xfs_is_made_when_the_capability_asks_for_it() {
    let h = Harness::in_process().await;
    let cap = mount_cap(Mode::SingleNodeWriter, "xfs");
    let v = h.create("pvc-xfs", 300 * MIB, cap.clone()).await.volume_id;
    let staging = h.path("staging/xfs");
    h.stage(&v, &staging, cap.clone()).await.unwrap();
    let mount = volplane_csi::host::mounter::KernelMounter;
    use volplane_csi::host::Mounter;
    assert_eq!(mount.mount_at(&staging).unwrap().unwrap().fs_type, "xfs");
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    let small = h
        .client
        .create_volume(create_request(
            "pvc-xfs-small",
            16 * MIB,
            mount_cap(Mode::SingleNodeWriter, "xfs"),
        ))
        .await
        .unwrap();
    assert_eq!(
        small.volume.unwrap().capacity_bytes,
        300 * MIB,
        "xfs volumes are at least 300 MiB"
    );
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn block_volume_is_published_as_a_device_file() {
    let h = Harness::in_process().await;
    let cap = block_cap(Mode::SingleNodeWriter);
    let v = h.create("pvc-block", 64 * MIB, cap.clone()).await.volume_id;
    let staging = h.path("staging/block");
    h.stage(&v, &staging, cap.clone()).await.unwrap();
    let target = h.path("pods/blk/dev");
    h.publish(&v, &staging, &target, cap.clone(), false)
        .await
        .unwrap();
    h.publish(&v, &staging, &target, cap.clone(), false)
        .await
        .unwrap();
    {
        let mut dev = fs::OpenOptions::new().write(true).open(&target).unwrap();
        dev.write_all(&[0xAB; 4096]).unwrap();
        dev.sync_all().unwrap();
    }
    let mut image = fs::File::open(h.state_dir.join("images").join(format!("{v}.img"))).unwrap();
    let mut head = [0u8; 4096];
    image.read_exact(&mut head).unwrap();
    assert!(
        head.iter().all(|b| *b == 0xAB),
        "the device writes to the backing image"
    );
    let stats = h
        .client
        .node_get_volume_stats(proto::NodeGetVolumeStatsRequest {
            volume_id: v.clone(),
            volume_path: target.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.usage[0].total, 64 * MIB);
    h.unpublish(&v, &target).await.unwrap();
    assert!(!target.exists());
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn node_publish_checks_its_inputs_and_single_writer_volumes() {
    let h = Harness::in_process().await;
    let rwop = mount_cap(Mode::SingleNodeSingleWriter, "");
    let v = h.create("pvc-rwop", 16 * MIB, rwop.clone()).await.volume_id;
    let staging = h.path("staging/rwop");
    let t1 = h.path("pods/1/v");
    let t2 = h.path("pods/2/v");
    assert_eq!(
        code(h.publish(&v, &staging, &t1, rwop.clone(), false).await),
        Code::FailedPrecondition,
        "not staged"
    );
    assert_eq!(
        code(
            h.publish(
                "vol-0123456789abcdef0123456789abcdef",
                &staging,
                &t1,
                rwop.clone(),
                false
            )
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            h.stage(
                "vol-0123456789abcdef0123456789abcdef",
                &staging,
                rwop.clone()
            )
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(h.stage(&v, std::path::Path::new(""), rwop.clone()).await),
        Code::InvalidArgument
    );
    h.stage(&v, &staging, rwop.clone()).await.unwrap();
    assert_eq!(
        code(
            h.publish(&v, &staging, std::path::Path::new(""), rwop.clone(), false)
                .await
        ),
        Code::InvalidArgument
    );
    h.publish(&v, &staging, &t1, rwop.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        code(h.publish(&v, &staging, &t2, rwop.clone(), false).await),
        Code::FailedPrecondition
    );
    assert!(!t2.exists(), "a refused publish creates nothing");
    h.unpublish(&v, &t1).await.unwrap();
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_rpcs_follow_the_spec() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-snaprpc", 16 * MIB, rwo()).await.volume_id;
    let other = h
        .create("pvc-snaprpc-other", 16 * MIB, rwo())
        .await
        .volume_id;
    let s = h.snapshot("snap-a", &v).await.unwrap();
    assert!(s.ready_to_use);
    assert_eq!(s.size_bytes, 16 * MIB);
    assert_eq!(s.source_volume_id, v);
    assert!(s.creation_time.is_some());
    assert_eq!(h.snapshot("snap-a", &v).await.unwrap(), s);
    assert_eq!(
        code(h.snapshot("snap-a", &other).await),
        Code::AlreadyExists
    );
    assert_eq!(
        code(
            h.snapshot("snap-b", "vol-0123456789abcdef0123456789abcdef")
                .await
        ),
        Code::NotFound
    );
    assert_eq!(code(h.snapshot("", &v).await), Code::InvalidArgument);
    assert_eq!(code(h.snapshot("snap-c", "").await), Code::InvalidArgument);
    h.snapshot("snap-d", &other).await.unwrap();
    let got = h
        .client
        .get_snapshot(proto::GetSnapshotRequest {
            snapshot_id: s.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.snapshot.unwrap(), s);
    let unknown = proto::GetSnapshotRequest {
        snapshot_id: "snap-0123456789abcdef0123456789abcdef".into(),
        ..Default::default()
    };
    assert_eq!(code(h.client.get_snapshot(unknown).await), Code::NotFound);
    let by_source = h
        .client
        .list_snapshots(proto::ListSnapshotsRequest {
            source_volume_id: v.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_source.entries.len(), 1);
    let by_id = h
        .client
        .list_snapshots(proto::ListSnapshotsRequest {
            snapshot_id: s.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_id.entries[0].snapshot.as_ref().unwrap(), &s);
    let page = h
        .client
        .list_snapshots(proto::ListSnapshotsRequest {
            max_entries: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    let rest = h
        .client
        .list_snapshots(proto::ListSnapshotsRequest {
            max_entries: 1,
            starting_token: page.next_token,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.entries.len(), 1);
    assert!(rest.next_token.is_empty());
    assert_ne!(page.entries[0], rest.entries[0]);
    let bad = proto::ListSnapshotsRequest {
        starting_token: "nope".into(),
        ..Default::default()
    };
    assert_eq!(code(h.client.list_snapshots(bad).await), Code::Aborted);
    let delete = |id: &str| proto::DeleteSnapshotRequest {
        snapshot_id: id.into(),
        ..Default::default()
    };
    h.client
        .delete_snapshot(delete(&s.snapshot_id))
        .await
        .unwrap();
    h.client
        .delete_snapshot(delete(&s.snapshot_id))
        .await
        .unwrap();
    assert_eq!(
        code(h.client.delete_snapshot(delete("")).await),
        Code::InvalidArgument
    );
    let remaining = h.client.list_snapshots(Default::default()).await.unwrap();
    assert_eq!(remaining.entries.len(), 1);
    h.delete(&v).await.unwrap();
    h.delete(&other).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_holds_the_snapshot_point_in_time_not_later_writes() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-data", 64 * MIB, rwo()).await.volume_id;
    let staging = h.path("staging/data");
    let target = h.path("pods/data/v");
    h.stage(&v, &staging, rwo()).await.unwrap();
    h.publish(&v, &staging, &target, rwo(), false)
        .await
        .unwrap();
    let payload: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 251) as u8).collect();
    fs::write(target.join("before.bin"), &payload).unwrap();
    fs::write(target.join("note.txt"), "version 1").unwrap();
    let snap = h.snapshot("snap-data", &v).await.unwrap();
    fs::write(target.join("note.txt"), "version 2").unwrap();
    fs::write(target.join("after.txt"), "later").unwrap();
    let too_small = proto::CreateVolumeRequest {
        volume_content_source: Some(proto::VolumeContentSource {
            r#type: Some(proto::volume_content_source::Type::Snapshot(
                proto::volume_content_source::SnapshotSource {
                    snapshot_id: snap.snapshot_id.clone(),
                },
            )),
        }),
        ..create_request("pvc-restored-small", 16 * MIB, rwo())
    };
    let mut small = too_small.clone();
    small.capacity_range = Some(proto::CapacityRange {
        required_bytes: 16 * MIB,
        limit_bytes: 16 * MIB,
    });
    assert_eq!(code(h.client.create_volume(small).await), Code::OutOfRange);
    let mut restore = too_small.clone();
    restore.name = "pvc-restored".into();
    restore.capacity_range = Some(proto::CapacityRange {
        required_bytes: 128 * MIB,
        limit_bytes: 0,
    });
    let restored = h
        .client
        .create_volume(restore)
        .await
        .unwrap()
        .volume
        .unwrap();
    assert_eq!(restored.capacity_bytes, 128 * MIB);
    assert!(restored.content_source.is_some());
    let staging2 = h.path("staging/restored");
    let target2 = h.path("pods/restored/v");
    h.stage(&restored.volume_id, &staging2, rwo())
        .await
        .unwrap();
    h.publish(&restored.volume_id, &staging2, &target2, rwo(), false)
        .await
        .unwrap();
    assert_eq!(fs::read(target2.join("before.bin")).unwrap(), payload);
    assert_eq!(read_file(&target2.join("note.txt")), "version 1");
    assert!(!target2.join("after.txt").exists());
    let stat = nix::sys::statvfs::statvfs(&target2).unwrap();
    assert!(
        stat.blocks() as u64 * stat.fragment_size() as u64 > 100 << 20,
        "the restored filesystem grew to the volume"
    );
    for (id, st, t) in [
        (&v, &staging, &target),
        (&restored.volume_id, &staging2, &target2),
    ] {
        h.unpublish(id, t).await.unwrap();
        h.unstage(id, st).await.unwrap();
        h.delete(id).await.unwrap();
    }
    h.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn clone_copies_the_source_volume() {
    let h = Harness::in_process().await;
    let cap = block_cap(Mode::SingleNodeWriter);
    let v = h.create("pvc-src", 16 * MIB, cap.clone()).await.volume_id;
    let image = h.state_dir.join("images").join(format!("{v}.img"));
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .write_all(b"clone me")
        .unwrap();
    let req = proto::CreateVolumeRequest {
        volume_content_source: Some(proto::VolumeContentSource {
            r#type: Some(proto::volume_content_source::Type::Volume(
                proto::volume_content_source::VolumeSource {
                    volume_id: v.clone(),
                },
            )),
        }),
        ..create_request("pvc-clone", 0, cap.clone())
    };
    let clone = h.client.create_volume(req).await.unwrap().volume.unwrap();
    assert_eq!(clone.capacity_bytes, 16 * MIB);
    let copy = fs::read(
        h.state_dir
            .join("images")
            .join(format!("{}.img", clone.volume_id)),
    )
    .unwrap();
    assert_eq!(&copy[..8], b"clone me");
    h.delete(&clone.volume_id).await.unwrap();
    h.delete(&v).await.unwrap();
}

fn fs_size(path: &std::path::Path) -> i64 {
    let s = nix::sys::statvfs::statvfs(path).unwrap();
    s.blocks() as i64 * s.fragment_size() as i64
}

fn expand_req(volume_id: &str, bytes: i64) -> proto::ControllerExpandVolumeRequest {
    proto::ControllerExpandVolumeRequest {
        volume_id: volume_id.into(),
        capacity_range: Some(proto::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        ..Default::default()
    }
}

fn node_expand_req(
    volume_id: &str,
    path: &std::path::Path,
    bytes: i64,
) -> proto::NodeExpandVolumeRequest {
    proto::NodeExpandVolumeRequest {
        volume_id: volume_id.into(),
        volume_path: path.display().to_string(),
        capacity_range: Some(proto::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expansion_grows_image_device_and_filesystem_online() {
    let h = Harness::in_process().await;
    let cap = mount_cap(Mode::SingleNodeWriter, "xfs");
    let v = h.create("pvc-grow", 300 * MIB, cap.clone()).await.volume_id;
    let staging = h.path("staging/grow");
    let target = h.path("pods/grow/v");
    h.stage(&v, &staging, cap.clone()).await.unwrap();
    h.publish(&v, &staging, &target, cap.clone(), false)
        .await
        .unwrap();
    fs::write(target.join("kept"), "still here").unwrap();
    let before = fs_size(&target);
    let grown = h
        .client
        .controller_expand_volume(expand_req(&v, 400 * MIB))
        .await
        .unwrap();
    assert_eq!(grown.capacity_bytes, 400 * MIB);
    assert!(grown.node_expansion_required);
    let same = h
        .client
        .controller_expand_volume(expand_req(&v, 32 * MIB))
        .await
        .unwrap();
    assert_eq!(
        same.capacity_bytes,
        400 * MIB,
        "expanding to less is OK and changes nothing"
    );
    let mut missing = expand_req(&v, 1);
    missing.capacity_range = None;
    assert_eq!(
        code(h.client.controller_expand_volume(missing).await),
        Code::InvalidArgument
    );
    let unknown = expand_req("vol-0123456789abcdef0123456789abcdef", 1);
    assert_eq!(
        code(h.client.controller_expand_volume(unknown).await),
        Code::NotFound
    );
    let absurd = expand_req(&v, i64::MAX);
    assert_eq!(
        code(h.client.controller_expand_volume(absurd).await),
        Code::OutOfRange
    );
    let node = h
        .client
        .node_expand_volume(node_expand_req(&v, &target, 400 * MIB))
        .await
        .unwrap();
    assert_eq!(node.capacity_bytes, 400 * MIB);
    assert!(
        fs_size(&target) > before + (90 << 20),
        "{} -> {}",
        before,
        fs_size(&target)
    );
    assert_eq!(read_file(&target.join("kept")), "still here");
    let too_big = node_expand_req(&v, &target, 1 << 40);
    assert_eq!(
        code(h.client.node_expand_volume(too_big).await),
        Code::OutOfRange
    );
    let elsewhere = node_expand_req(&v, std::path::Path::new("/elsewhere"), 0);
    assert_eq!(
        code(h.client.node_expand_volume(elsewhere).await),
        Code::NotFound
    );
    h.unpublish(&v, &target).await.unwrap();
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ext4_volume_expanded_while_unstaged_grows_at_the_next_stage() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-grow-ext4", 64 * MIB, rwo()).await.volume_id;
    let staging = h.path("staging/grow-ext4");
    h.stage(&v, &staging, rwo()).await.unwrap();
    fs::write(staging.join("kept"), "still here").unwrap();
    let before = fs_size(&staging);
    h.unstage(&v, &staging).await.unwrap();
    h.client
        .controller_expand_volume(expand_req(&v, 128 * MIB))
        .await
        .unwrap();
    h.stage(&v, &staging, rwo()).await.unwrap();
    assert!(
        fs_size(&staging) > before + (50 << 20),
        "{} -> {}",
        before,
        fs_size(&staging)
    );
    assert_eq!(read_file(&staging.join("kept")), "still here");
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn modify_volume_switches_direct_io_on_the_staged_device() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-modify", 16 * MIB, rwo()).await.volume_id;
    let staging = h.path("staging/modify");
    h.stage(&v, &staging, rwo()).await.unwrap();
    let device = h.loop_devices().pop().unwrap();
    let dio = || {
        fs::read_to_string(format!(
            "/sys/block/{}/loop/dio",
            device.file_name().unwrap().to_str().unwrap()
        ))
        .unwrap()
    };
    assert_eq!(dio().trim(), "0");
    let modify = |k: &str, val: &str, id: &str| proto::ControllerModifyVolumeRequest {
        volume_id: id.into(),
        mutable_parameters: [(k.to_string(), val.to_string())].into(),
        ..Default::default()
    };
    h.client
        .controller_modify_volume(modify("directIO", "true", &v))
        .await
        .unwrap();
    assert_eq!(dio().trim(), "1");
    assert_eq!(
        code(
            h.client
                .controller_modify_volume(modify("iops", "100", &v))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.client
                .controller_modify_volume(modify(
                    "directIO",
                    "true",
                    "vol-0123456789abcdef0123456789abcdef"
                ))
                .await
        ),
        Code::NotFound
    );
    let empty = proto::ControllerModifyVolumeRequest {
        volume_id: v.clone(),
        ..Default::default()
    };
    assert_eq!(
        code(h.client.controller_modify_volume(empty).await),
        Code::InvalidArgument
    );
    h.unstage(&v, &staging).await.unwrap();
    h.stage(&v, &staging, rwo()).await.unwrap();
    let device = h.loop_devices().pop().unwrap();
    let dio = fs::read_to_string(format!(
        "/sys/block/{}/loop/dio",
        device.file_name().unwrap().to_str().unwrap()
    ))
    .unwrap();
    assert_eq!(dio.trim(), "1", "applied again at the next stage");
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_for_a_volume_with_an_operation_in_flight_is_aborted() {
    let h = Harness::in_process().await;
    let v = h.create("pvc-busy", 16 * MIB, rwo()).await.volume_id;
    // Another driver process sharing the state directory holds the
    // volume's operation lock.
    let other = volplane_csi::driver::state::StateDir::open(&h.state_dir, false).unwrap();
    let held = volplane_csi::driver::lock::OperationLock::acquire(&other, &v).unwrap();
    let once = client(&h.socket, 1);
    let delete = once
        .delete_volume(proto::DeleteVolumeRequest {
            volume_id: v.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(delete), Code::Aborted);
    let staging = h.path("staging/busy");
    let stage = once
        .node_stage_volume(proto::NodeStageVolumeRequest {
            volume_id: v.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(rwo()),
            ..Default::default()
        })
        .await;
    assert_eq!(code(stage), Code::Aborted);
    assert!(!staging.exists());
    drop(held);
    h.delete(&v).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_driver_recognises_what_it_staged_and_published() {
    let mut h = Harness::in_process().await;
    let v = h.create("pvc-restart", 16 * MIB, rwo()).await.volume_id;
    let staging = h.path("staging/restart");
    let target = h.path("pods/restart/v");
    h.stage(&v, &staging, rwo()).await.unwrap();
    h.publish(&v, &staging, &target, rwo(), false)
        .await
        .unwrap();
    h.stop_in_process().await;
    h.start_in_process(|_| {});
    h.stage(&v, &staging, rwo()).await.unwrap();
    h.publish(&v, &staging, &target, rwo(), false)
        .await
        .unwrap();
    assert_eq!(h.loop_devices().len(), 1);
    assert_eq!(h.mounts().len(), 2, "no second mount after the restart");
    h.unpublish(&v, &target).await.unwrap();
    h.unstage(&v, &staging).await.unwrap();
    h.assert_clean();
    h.delete(&v).await.unwrap();
}
