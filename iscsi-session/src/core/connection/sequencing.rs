//! CmdSN window and StatSN tracking for one connection (RFC 7143 §4.2.2).

use iscsi_proto::serial::SerialNumber;

/// Command numbering: what we send next, and what the target will accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sequencing {
    /// CmdSN of the next non-immediate command.
    pub cmd_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    /// StatSN we expect next; sent back as ExpStatSN to acknowledge status.
    pub exp_stat_sn: u32,
}

impl Sequencing {
    pub fn new(cmd_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32, exp_stat_sn: u32) -> Self {
        Sequencing {
            cmd_sn,
            exp_cmd_sn,
            max_cmd_sn,
            exp_stat_sn,
        }
    }

    /// Whether a non-immediate command may be sent now: CmdSN within
    /// [ExpCmdSN, MaxCmdSN]. MaxCmdSN = ExpCmdSN - 1 is the zero window.
    pub fn window_open(&self) -> bool {
        SerialNumber(self.cmd_sn).le(SerialNumber(self.max_cmd_sn))
    }

    /// Takes the CmdSN for a non-immediate command.
    pub fn take_cmd_sn(&mut self) -> u32 {
        let sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        sn
    }

    /// Applies ExpCmdSN/MaxCmdSN from a target PDU. §4.2.2.1: values with
    /// MaxCmdSN < ExpCmdSN - 1 are ignored, and stale (older) values never move
    /// the window back.
    pub fn update_window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        let exp = SerialNumber(exp_cmd_sn);
        let max = SerialNumber(max_cmd_sn);
        if max.lt(SerialNumber(exp_cmd_sn.wrapping_sub(1))) {
            return;
        }
        // The target cannot expect a CmdSN we have not sent yet.
        if exp.gt(SerialNumber(self.cmd_sn)) {
            return;
        }
        if exp.gt(SerialNumber(self.exp_cmd_sn)) {
            self.exp_cmd_sn = exp_cmd_sn;
        }
        if max.gt(SerialNumber(self.max_cmd_sn)) {
            self.max_cmd_sn = max_cmd_sn;
        }
    }

    /// Records a status-bearing PDU's StatSN. Returns false when it is not the
    /// one expected (a gap or a repeat), which at ERL 0 over TCP means the
    /// target misnumbers; we resynchronise and let the caller log it.
    pub fn observe_stat_sn(&mut self, stat_sn: u32) -> bool {
        let in_order = stat_sn == self.exp_stat_sn;
        if in_order || SerialNumber(stat_sn).gt(SerialNumber(self.exp_stat_sn)) {
            self.exp_stat_sn = stat_sn.wrapping_add(1);
        }
        in_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UNH-IOL: FFP #3.1
    #[test]
    fn zero_window_and_reopening() {
        let mut s = Sequencing::new(10, 10, 9, 0);
        assert!(!s.window_open());
        s.update_window(10, 11);
        assert!(s.window_open());
        assert_eq!(s.take_cmd_sn(), 10);
        assert_eq!(s.take_cmd_sn(), 11);
        assert!(!s.window_open());
    }

    #[test]
    fn stale_and_invalid_windows_ignored() {
        let mut s = Sequencing::new(20, 20, 30, 0);
        s.update_window(15, 25);
        assert_eq!((s.exp_cmd_sn, s.max_cmd_sn), (20, 30));
        // MaxCmdSN < ExpCmdSN - 1: ignore both.
        s.update_window(20, 10);
        assert_eq!((s.exp_cmd_sn, s.max_cmd_sn), (20, 30));
        // ExpCmdSN beyond what we sent: ignore.
        s.update_window(25, 40);
        assert_eq!((s.exp_cmd_sn, s.max_cmd_sn), (20, 30));
    }

    #[test]
    fn wraps_around() {
        let mut s = Sequencing::new(u32::MAX, u32::MAX, 1, 0);
        assert!(s.window_open());
        s.take_cmd_sn();
        s.take_cmd_sn();
        assert_eq!(s.cmd_sn, 1);
        s.update_window(1, 5);
        assert_eq!((s.exp_cmd_sn, s.max_cmd_sn), (1, 5));
    }

    /// UNH-IOL: FFP #5.1
    #[test]
    fn stat_sn_gaps_resynchronise() {
        let mut s = Sequencing::new(0, 0, 0, 100);
        assert!(s.observe_stat_sn(100));
        assert!(!s.observe_stat_sn(105));
        assert_eq!(s.exp_stat_sn, 106);
        assert!(!s.observe_stat_sn(50));
        assert_eq!(s.exp_stat_sn, 106);
    }
}
