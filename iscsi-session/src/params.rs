//! The parameters a login settled on, as the session uses them.

/// Negotiated operational parameters of one connection and its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionParams {
    pub header_digest: bool,
    pub data_digest: bool,
    /// What we declared: the largest data segment the target may send us.
    pub max_recv_data_segment_length: u32,
    /// What the target declared: the largest data segment we may send it.
    pub max_xmit_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u8,
    pub default_time2wait: u32,
    pub default_time2retain: u32,
    pub max_connections: u32,
    pub target_alias: Option<String>,
    pub target_portal_group_tag: Option<u16>,
}

impl Default for SessionParams {
    /// RFC 7143 §13 defaults: what holds when nothing was negotiated.
    fn default() -> Self {
        SessionParams {
            header_digest: false,
            data_digest: false,
            max_recv_data_segment_length: 8192,
            max_xmit_data_segment_length: 8192,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            initial_r2t: true,
            immediate_data: true,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
            default_time2wait: 2,
            default_time2retain: 20,
            max_connections: 1,
            target_alias: None,
            target_portal_group_tag: None,
        }
    }
}
