//! `riscsi inquiry VOLUME`: what the volume is, how large, how provisioned,
//! and what the session negotiated.

use clap::Args;
use iscsi_multipath::{MultipathVolume, PathRole, PathState, PathStatus};
use iscsi_proto::scsi::vpd::{
    Association, BlockLimits, CodeSet, DesignationDescriptor, Designator, DeviceIdentification,
    LogicalBlockProvisioning, ProvisioningType, UnitSerialNumber,
};
use iscsi_proto::scsi::{LuIdentity, hex_string};
use iscsi_session::{BlockDevice, OperationalParams, ScsiExecutor};
use serde::Serialize;
use tracing::debug;

use super::Context;
use crate::cli::VolumeArgs;
use crate::error::{CliError, Result};
use crate::printable::printable;
use crate::size::describe_bytes;
use crate::volume::Volume;

#[derive(Debug, Args)]
pub struct InquiryArgs {
    /// The volume: iscsi://[user[%secret]@]host[:port]/target-iqn/lun, or
    /// @FILE with the connection_info JSON (@- for standard input).
    pub volume: String,
    /// Print one JSON object instead of aligned `key: value` lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: VolumeArgs,
}

/// Everything `inquiry` reports. Field names are the JSON keys: keep them stable.
#[derive(Debug, Serialize)]
struct Report {
    volume: String,
    vendor: String,
    product: String,
    revision: String,
    device_type: String,
    unit_serial: Option<String>,
    designators: Vec<DesignatorReport>,
    lu_identity: Option<String>,
    capacity_bytes: u64,
    capacity_blocks: u64,
    logical_block_size: u32,
    physical_block_size: u64,
    provisioning: ProvisioningReport,
    block_limits: Option<LimitsReport>,
    /// Every path, main first, with its role and state.
    paths: Vec<PathStatus>,
    /// How the paths were found.
    path_origin: String,
    policy: String,
    failback: String,
    no_path_retry: String,
    /// The session of the path carrying I/O.
    session: SessionReport,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct DesignatorReport {
    /// naa, eui64, t10, scsi_name, md5, uuid, relative_target_port,
    /// target_port_group, logical_unit_group, vendor_specific, protocol_port, other
    #[serde(rename = "type")]
    kind: &'static str,
    /// logical_unit, target_port, target_device, reserved
    association: &'static str,
    /// binary, ascii, utf8, other
    code_set: &'static str,
    /// Hex digits for binary designators, text for textual ones.
    value: String,
}

#[derive(Debug, Serialize)]
struct ProvisioningReport {
    /// READ CAPACITY(16) LBPME: thin provisioning enabled.
    lbpme: bool,
    /// READ CAPACITY(16) LBPRZ: unmapped blocks read back as zeroes.
    lbprz: bool,
    /// From VPD page B2h when the target has it.
    lbpu: Option<bool>,
    lbpws: Option<bool>,
    lbpws10: Option<bool>,
    /// full, resource, thin or reserved.
    provisioning_type: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct LimitsReport {
    /// In blocks; 0 = no limit reported.
    max_transfer_blocks: u32,
    optimal_transfer_blocks: u32,
    optimal_transfer_granularity_blocks: u16,
    /// None when the page is too short to say; 0 = UNMAP not supported.
    max_unmap_blocks: Option<u32>,
    max_unmap_descriptors: Option<u32>,
    max_write_same_blocks: Option<u64>,
}

#[derive(Debug, Serialize)]
struct SessionReport {
    portal: String,
    target: String,
    tsih: u16,
    target_portal_group_tag: Option<u16>,
    auth_method: Option<String>,
    header_digest: Option<&'static str>,
    data_digest: Option<&'static str>,
    /// What we declared: the largest data segment the target may send us.
    max_recv_data_segment_length: Option<u32>,
    /// What the target declared: the largest data segment we may send it.
    max_xmit_data_segment_length: Option<u32>,
    max_burst_length: Option<u32>,
    first_burst_length: Option<u32>,
    immediate_data: Option<bool>,
    initial_r2t: Option<bool>,
    max_outstanding_r2t: Option<u16>,
}

pub async fn run(ctx: &Context, args: InquiryArgs) -> Result<()> {
    let volume = Volume::open_arg(&args.volume, &args.options, &ctx.initiator_name).await?;
    let report = gather(&volume).await;
    volume.close().await;
    let report = report?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", align(&human_rows(&report)));
    }
    Ok(())
}

/// An optional VPD page: a target without it just reports less.
async fn optional_vpd(lun: &MultipathVolume, page: u8) -> Option<bytes::Bytes> {
    match lun.vpd(page).await {
        Ok(data) => Some(data),
        Err(e) => {
            debug!(page, error = %e, "VPD page not available");
            None
        }
    }
}

async fn gather(volume: &Volume) -> Result<Report> {
    let lun = &volume.device;
    let geometry = lun.geometry();
    let inquiry = lun.inquiry().await?;
    let pages = lun.supported_vpd_pages().await.ok();
    // Without a supported-pages list, ask anyway and tolerate refusals.
    let has = |p: u8| pages.as_ref().is_none_or(|s| s.supports(p));

    let mut serial = None;
    if has(0x80)
        && let Some(data) = optional_vpd(lun, 0x80).await
    {
        serial = UnitSerialNumber::parse(&data).ok();
    }
    let mut identification = None;
    if has(0x83)
        && let Some(data) = optional_vpd(lun, 0x83).await
    {
        identification = DeviceIdentification::parse(&data).ok();
    }
    let mut limits = None;
    if has(0xb0)
        && let Some(data) = optional_vpd(lun, 0xb0).await
    {
        limits = BlockLimits::parse(&data).ok();
    }
    let mut lbp = None;
    if has(0xb2)
        && let Some(data) = optional_vpd(lun, 0xb2).await
    {
        lbp = LogicalBlockProvisioning::parse(&data).ok();
    }
    let capacity = lun.read_capacity().await?;

    let lu_identity = identification
        .as_ref()
        .and_then(LuIdentity::from_device_identification)
        .or_else(|| serial.as_ref().and_then(LuIdentity::from_unit_serial))
        .map(|id| id.to_string());
    let paths = volume.device.status();
    // The session of the path carrying I/O (the main path's when none does).
    let active = paths
        .paths
        .iter()
        .position(|p| p.state == PathState::Active)
        .unwrap_or(0);
    let session = &volume.device.sessions()[active];
    let status = session.status();
    let params = status.params.as_ref();
    Ok(Report {
        volume: volume.name.clone(),
        vendor: inquiry.vendor.clone(),
        product: inquiry.product.clone(),
        revision: inquiry.revision.clone(),
        device_type: inquiry.device_type.to_string(),
        unit_serial: serial.map(|s| s.serial).filter(|s| !s.is_empty()),
        designators: identification
            .map(|id| id.descriptors.iter().map(describe_designator).collect())
            .unwrap_or_default(),
        lu_identity,
        capacity_bytes: geometry.size_bytes(),
        capacity_blocks: geometry.blocks,
        logical_block_size: geometry.block_size,
        physical_block_size: geometry.physical_block_size,
        provisioning: ProvisioningReport {
            lbpme: capacity.lbpme,
            lbprz: capacity.lbprz,
            lbpu: lbp.map(|p| p.lbpu),
            lbpws: lbp.map(|p| p.lbpws),
            lbpws10: lbp.map(|p| p.lbpws10),
            provisioning_type: lbp.map(|p| match p.provisioning_type {
                ProvisioningType::Full => "full",
                ProvisioningType::Resource => "resource",
                ProvisioningType::Thin => "thin",
                ProvisioningType::Reserved(_) => "reserved",
            }),
        },
        block_limits: limits.map(|l| LimitsReport {
            max_transfer_blocks: l.max_transfer_len,
            optimal_transfer_blocks: l.optimal_transfer_len,
            optimal_transfer_granularity_blocks: l.optimal_transfer_granularity,
            max_unmap_blocks: l.max_unmap_lba_count,
            max_unmap_descriptors: l.max_unmap_descriptor_count,
            max_write_same_blocks: l.max_write_same_len,
        }),
        path_origin: paths.origin.clone(),
        policy: paths.policy.clone(),
        failback: paths.failback.clone(),
        no_path_retry: paths.no_path_retry.clone(),
        paths: paths.paths.clone(),
        session: session_report(
            &status.portal.to_string(),
            &session.context().target,
            status.tsih,
            params,
        ),
    })
}

fn session_report(
    portal: &str,
    target: &str,
    tsih: u16,
    params: Option<&OperationalParams>,
) -> SessionReport {
    SessionReport {
        portal: portal.to_owned(),
        target: target.to_owned(),
        tsih,
        target_portal_group_tag: params.and_then(|p| p.target_portal_group_tag),
        auth_method: params.map(|p| p.auth_method.clone()),
        header_digest: params.map(|p| p.header_digest.as_str()),
        data_digest: params.map(|p| p.data_digest.as_str()),
        max_recv_data_segment_length: params.map(|p| p.max_recv_data_segment_length),
        max_xmit_data_segment_length: params.map(|p| p.max_xmit_data_segment_length),
        max_burst_length: params.map(|p| p.max_burst_length),
        first_burst_length: params.map(|p| p.first_burst_length),
        immediate_data: params.map(|p| p.immediate_data),
        initial_r2t: params.map(|p| p.initial_r2t),
        max_outstanding_r2t: params.map(|p| p.max_outstanding_r2t),
    }
}

/// Text for textual code sets, hex otherwise.
fn bytes_value(code_set: CodeSet, bytes: &[u8]) -> String {
    match code_set {
        CodeSet::Ascii | CodeSet::Utf8 => String::from_utf8_lossy(bytes)
            .trim_matches(|c: char| c == ' ' || c == '\0')
            .to_owned(),
        _ => hex_string(bytes),
    }
}

fn describe_designator(d: &DesignationDescriptor) -> DesignatorReport {
    let (kind, value) = match &d.designator {
        Designator::Naa(b) => ("naa", hex_string(b)),
        Designator::Eui64(b) => ("eui64", hex_string(b)),
        Designator::T10VendorId { vendor, specific } => (
            "t10",
            format!("{vendor} {}", bytes_value(d.code_set, specific)),
        ),
        Designator::ScsiNameString(name) => ("scsi_name", name.clone()),
        Designator::Md5(b) => ("md5", hex_string(b)),
        Designator::Uuid(b) => ("uuid", hex_string(b)),
        Designator::RelativeTargetPort(n) => ("relative_target_port", n.to_string()),
        Designator::TargetPortGroup(n) => ("target_port_group", n.to_string()),
        Designator::LogicalUnitGroup(n) => ("logical_unit_group", n.to_string()),
        Designator::VendorSpecific(b) => ("vendor_specific", bytes_value(d.code_set, b)),
        Designator::ProtocolSpecificPortId(b) => ("protocol_port", hex_string(b)),
        Designator::Unrecognized { bytes, .. } => ("other", bytes_value(d.code_set, bytes)),
    };
    DesignatorReport {
        kind,
        association: match d.association {
            Association::LogicalUnit => "logical_unit",
            Association::TargetPort => "target_port",
            Association::TargetDevice => "target_device",
            Association::Reserved => "reserved",
        },
        code_set: match d.code_set {
            CodeSet::Binary => "binary",
            CodeSet::Ascii => "ascii",
            CodeSet::Utf8 => "utf8",
            CodeSet::Other(_) => "other",
        },
        value,
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
}

fn bit(name: &str, v: Option<bool>) -> String {
    match v {
        Some(b) => format!("{name}={}", u8::from(b)),
        None => format!("{name}=?"),
    }
}

fn blocks_limit(blocks: u32, block_size: u32) -> String {
    if blocks == 0 {
        "not reported".to_owned()
    } else {
        format!(
            "{blocks} blocks ({})",
            describe_bytes(u64::from(blocks) * u64::from(block_size))
        )
    }
}

/// The human form: `key: value` rows, in report order.
fn human_rows(r: &Report) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
    row("volume", r.volume.clone());
    row("vendor", r.vendor.clone());
    row("product", r.product.clone());
    row("revision", r.revision.clone());
    row("device type", r.device_type.clone());
    row("unit serial", opt(r.unit_serial.as_ref()));
    for d in &r.designators {
        row(
            "designator",
            format!(
                "{} ({}, {}): {}",
                d.kind, d.association, d.code_set, d.value
            ),
        );
    }
    row("lu identity", opt(r.lu_identity.as_ref()));
    row("capacity", describe_bytes(r.capacity_bytes));
    row("blocks", r.capacity_blocks.to_string());
    row("logical block size", r.logical_block_size.to_string());
    row("physical block size", r.physical_block_size.to_string());
    let p = &r.provisioning;
    row(
        "thin provisioning",
        format!(
            "{} {} {} {} {}{}",
            bit("LBPME", Some(p.lbpme)),
            bit("LBPU", p.lbpu),
            bit("LBPWS", p.lbpws),
            bit("LBPWS10", p.lbpws10),
            bit("LBPRZ", Some(p.lbprz)),
            p.provisioning_type
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
    );
    match &r.block_limits {
        Some(l) => {
            let bs = r.logical_block_size;
            row("max transfer", blocks_limit(l.max_transfer_blocks, bs));
            row(
                "optimal transfer",
                blocks_limit(l.optimal_transfer_blocks, bs),
            );
            row(
                "max unmap",
                match (l.max_unmap_blocks, l.max_unmap_descriptors) {
                    (Some(0), _) | (_, Some(0)) => "not supported".to_owned(),
                    (Some(b), Some(d)) => format!("{b} blocks in up to {d} descriptors"),
                    _ => "not reported".to_owned(),
                },
            );
        }
        None => row("block limits", "not reported".to_owned()),
    }
    row(
        "multipath",
        format!(
            "policy {}, failback {}, no_path_retry {}; {}",
            r.policy, r.failback, r.no_path_retry, r.path_origin
        ),
    );
    for p in &r.paths {
        let role = match p.role {
            PathRole::Main => "main",
            PathRole::Secondary => "secondary",
        };
        let state = format!("{:?}", p.state).to_lowercase();
        let why = match (&p.last_error, p.state) {
            (Some(e), PathState::Failed | PathState::Reconnecting | PathState::Refused) => {
                format!(": {e}")
            }
            _ => String::new(),
        };
        row(
            "path",
            format!(
                "{} {} LUN {} ({role}, {state}){why}",
                p.portal, p.iqn, p.lun
            ),
        );
    }
    let s = &r.session;
    row("portal", s.portal.clone());
    row("target", s.target.clone());
    row("tsih", s.tsih.to_string());
    row("target portal group", opt(s.target_portal_group_tag));
    row("auth method", opt(s.auth_method.as_ref()));
    row("header digest", opt(s.header_digest));
    row("data digest", opt(s.data_digest));
    row(
        "max recv data segment",
        format!("{} (what we accept)", opt(s.max_recv_data_segment_length)),
    );
    row(
        "max xmit data segment",
        format!(
            "{} (what the target accepts)",
            opt(s.max_xmit_data_segment_length)
        ),
    );
    row("max burst length", opt(s.max_burst_length));
    row("first burst length", opt(s.first_burst_length));
    row(
        "immediate data",
        s.immediate_data.map_or("unknown".into(), yes_no),
    );
    row(
        "initial r2t",
        s.initial_r2t.map_or("unknown".into(), yes_no),
    );
    row("max outstanding r2t", opt(s.max_outstanding_r2t));
    rows
}

/// `key:` padded so that every value starts in the same column.
fn align(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(k, v)| format!("{:<width$} {}\n", format!("{k}:"), printable(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(header: [u8; 4], raw: &[u8]) -> DesignationDescriptor {
        // Build through the real parser so the test matches what targets send.
        let mut page = vec![0x00, 0x83, 0x00, (4 + raw.len()) as u8];
        page.extend_from_slice(&header);
        page.extend_from_slice(raw);
        DeviceIdentification::parse(&page)
            .unwrap()
            .descriptors
            .remove(0)
    }

    #[test]
    fn designators_are_described() {
        let naa = descriptor(
            [0x01, 0x03, 0, 16],
            &[0x60, 0, 0, 0, 0, 0, 0, 0, 0x0e, 0, 0, 0, 0, 1, 0, 1],
        );
        assert_eq!(
            describe_designator(&naa),
            DesignatorReport {
                kind: "naa",
                association: "logical_unit",
                code_set: "binary",
                value: "60000000000000000e00000000010001".into(),
            }
        );
        let t10 = descriptor([0x02, 0x01, 0, 16], b"IET     00010001");
        let d = describe_designator(&t10);
        assert_eq!((d.kind, d.code_set), ("t10", "ascii"));
        assert_eq!(d.value, "IET 00010001");
        let port = descriptor([0x51, 0x94, 0, 4], &[0, 0, 0, 1]);
        let d = describe_designator(&port);
        assert_eq!(
            (d.kind, d.association, d.value.as_str()),
            ("relative_target_port", "target_port", "1")
        );
    }

    #[test]
    fn alignment_puts_values_in_one_column() {
        let text = align(&[("a".into(), "1".into()), ("longer key".into(), "2".into())]);
        assert_eq!(text, "a:          1\nlonger key: 2\n");
        // A target's strings cannot add lines or escape sequences.
        let text = align(&[("vendor".into(), "EV\x1b[31mIL\nfake: line".into())]);
        assert_eq!(text.lines().count(), 1);
        assert!(!text.contains('\x1b'));
    }

    fn sample() -> Report {
        Report {
            volume: "iscsi://h:3260/iqn.a:b/1".into(),
            vendor: "IET".into(),
            product: "VIRTUAL-DISK".into(),
            revision: "0001".into(),
            device_type: "direct access".into(),
            unit_serial: Some("beaf11".into()),
            designators: vec![],
            lu_identity: Some("naa.6000".into()),
            capacity_bytes: 1 << 30,
            capacity_blocks: 1 << 21,
            logical_block_size: 512,
            physical_block_size: 4096,
            provisioning: ProvisioningReport {
                lbpme: true,
                lbprz: false,
                lbpu: Some(true),
                lbpws: None,
                lbpws10: None,
                provisioning_type: Some("thin"),
            },
            block_limits: None,
            paths: vec![PathStatus {
                portal: "[::1]:3260".into(),
                iqn: "iqn.a:b".into(),
                lun: 1,
                role: PathRole::Main,
                state: PathState::Active,
                state_ms: 5,
                in_flight: 0,
                completed: 3,
                bytes: 0,
                errors: 0,
                failed_over: 0,
                last_error: None,
            }],
            path_origin: "one path, named by its URL".into(),
            policy: "failover".into(),
            failback: "immediate".into(),
            no_path_retry: "30s".into(),
            session: session_report("127.0.0.1:3260", "iqn.a:b", 7, None),
        }
    }

    #[test]
    fn json_keys_are_stable() {
        let v = serde_json::to_value(sample()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "volume",
            "vendor",
            "product",
            "revision",
            "device_type",
            "unit_serial",
            "designators",
            "lu_identity",
            "capacity_bytes",
            "capacity_blocks",
            "logical_block_size",
            "physical_block_size",
            "provisioning",
            "block_limits",
            "session",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert_eq!(v["provisioning"]["lbpme"], true);
        assert_eq!(v["provisioning"]["lbpws"], serde_json::Value::Null);
        assert_eq!(v["session"]["tsih"], 7);
    }

    #[test]
    fn human_rows_show_provisioning_bits() {
        let rows = human_rows(&sample());
        let get = |k: &str| {
            rows.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("thin provisioning").unwrap(),
            "LBPME=1 LBPU=1 LBPWS=? LBPWS10=? LBPRZ=0 (thin)"
        );
        assert_eq!(get("capacity").unwrap(), "1073741824 bytes (1.00 GiB)");
        assert_eq!(get("header digest").unwrap(), "unknown");
        assert_eq!(get("block limits").unwrap(), "not reported");
        assert_eq!(
            get("path").unwrap(),
            "[::1]:3260 iqn.a:b LUN 1 (main, active)"
        );
    }
}
