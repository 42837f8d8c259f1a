//! The session against a scripted target: each case plays, PDU by PDU, what
//! tgtd cannot be made to do, and names the RFC 7143 section it checks.

use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::{
    AsyncEvent, DataOut, LoginStatus, Lun, Pdu, RejectReason, Residual, Stage, Ttt,
};
use iscsi_proto::scsi::Cdb;
use iscsi_proto::text::Policy;
use iscsi_session::{Command, Direction, Error, Session, SessionConfig, TaskFailure};
use riscsi_tests::scripted::{LoginScript, ScriptedConnection, ScriptedTarget};

const TARGET: &str = "iqn.2026-11.io.riscsi.test:scripted";
const INITIATOR: &str = "iqn.2026-11.io.riscsi.test:initiator";

fn config(target: &ScriptedTarget) -> SessionConfig {
    let mut c = SessionConfig::new(target.portal(), TARGET, INITIATOR);
    c.timeouts.login = Duration::from_secs(5);
    c.timeouts.command = Duration::from_secs(5);
    c.timeouts.replacement = Duration::ZERO;
    c
}

fn lun0() -> Lun {
    Lun::from_number(0).unwrap()
}

fn read(len: u32) -> Command {
    Command::new(
        lun0(),
        Cdb::read(0, len / 512, false),
        Direction::Read { expected_len: len },
    )
}

/// Connects a session while the script logs it in.
async fn connect(
    target: &ScriptedTarget,
    config: SessionConfig,
    script: LoginScript,
) -> (Session, ScriptedConnection) {
    let (session, conn) = tokio::join!(Session::connect(config), async {
        let mut conn = target.accept().await;
        conn.login(&script).await;
        conn
    });
    (session.expect("login"), conn)
}

/// §6.3, §11.12-13: a login without authentication goes through the security
/// and operational stages, and the outcome is computed from both offers.
/// UNH-IOL: Login #1.1, Login #13.1, Login #15.1
#[tokio::test]
async fn login_negotiates_from_both_offers() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("MaxBurstLength", "65536")
            .unwrap()
            .with("InitialR2T", "Yes")
            .unwrap(),
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let params = session.params().expect("params after login");
    assert_eq!(params.max_burst_length, 65536, "Min(16777215, 65536)");
    assert!(params.initial_r2t, "InitialR2T is an OR: Yes wins");
    assert!(params.immediate_data);
    assert_eq!(
        params.max_xmit_data_segment_length, 262144,
        "the target's declaration"
    );
    let (logout, ()) = tokio::join!(session.logout(), conn.expect_logout());
    logout.unwrap();
}

/// §11.7.4: Data-In split over several PDUs, the status in the last one.
/// UNH-IOL: FFP #10.1, FFP #16.6
#[tokio::test]
async fn data_in_split_with_status_in_last() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(3072)).await }
    });
    let cmd = conn.expect_command().await;
    assert!(cmd.read && !cmd.write);
    assert_eq!(cmd.expected_data_transfer_length, 3072);
    for (sn, chunk) in [(0u32, 0u8), (1, 1), (2, 2)] {
        let last = sn == 2;
        let status = last.then_some((0u8, Residual::None));
        let pdu = conn.data_in(&cmd, sn, sn * 1024, Bytes::from(vec![chunk; 1024]), status);
        conn.send(pdu).await;
    }
    let outcome = reader.await.unwrap().unwrap();
    assert!(outcome.is_good());
    let data = outcome.data.to_bytes();
    assert_eq!(data.len(), 3072);
    assert!(data[..1024].iter().all(|&b| b == 0) && data[2048..].iter().all(|&b| b == 2));
    assert_eq!(
        outcome.data.segments().len(),
        3,
        "segments are kept, not copied together"
    );
}

/// §11.4.5: residual underflow in a separate SCSI Response.
#[tokio::test]
async fn residual_underflow_reported() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(4096)).await }
    });
    let cmd = conn.expect_command().await;
    let din = conn.data_in(&cmd, 0, 0, Bytes::from(vec![7u8; 1024]), None);
    conn.send(din).await;
    let resp = conn.response(&cmd, 0, None, Residual::Underflow(3072));
    conn.send(resp).await;
    let outcome = reader.await.unwrap().unwrap();
    assert_eq!(outcome.residual, Residual::Underflow(3072));
    assert_eq!(outcome.data.len(), 1024);
}

/// §11.8 and §4.2.5.2: with InitialR2T=Yes and ImmediateData=Yes, the first
/// burst rides in the command and the rest is sent on R2T, split by the
/// target's MaxRecvDataSegmentLength.
/// UNH-IOL: FFP #6.1, FFP #8.1, FFP #9.1, FFP #11.1.1, FFP #11.2.2, FFP #11.3, FFP #11.4, FFP #12.1, FFP #12.2, FFP #16.2.1, FFP #16.3.1
#[tokio::test]
async fn r2t_sequence_answered_within_limits() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("InitialR2T", "Yes")
            .unwrap()
            .with("FirstBurstLength", "4096")
            .unwrap(),
        declarations: vec![("MaxRecvDataSegmentLength".into(), "8192".into())],
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let payload = Bytes::from(payload);
    let writer = tokio::spawn({
        let s = session.clone();
        let data = payload.clone();
        async move {
            s.execute(Command::new(
                lun0(),
                Cdb::write(0, 78, false),
                Direction::Write { data },
            ))
            .await
        }
    });
    let cmd = conn.expect_command().await;
    assert_eq!(
        cmd.data.len(),
        4096,
        "immediate data up to FirstBurstLength"
    );
    assert!(
        cmd.final_,
        "InitialR2T=Yes: no unsolicited Data-Out follows"
    );
    let mut received = cmd.data.to_vec();
    let mut offset = 4096u32;
    for (r2t_sn, len) in [(0u32, 20_000u32), (1, 40_000 - 24_096)] {
        let r2t = conn.r2t(&cmd, r2t_sn, 0x100 + r2t_sn, offset, len);
        conn.send(r2t).await;
        let mut got = 0;
        let mut data_sn = 0;
        while got < len {
            let Pdu::DataOut(DataOut {
                data,
                buffer_offset,
                ttt,
                data_sn: sn,
                final_,
                ..
            }) = conn.recv().await
            else {
                panic!("expected Data-Out");
            };
            assert_eq!(ttt, Ttt(0x100 + r2t_sn));
            assert_eq!(buffer_offset, offset + got);
            assert_eq!(sn, data_sn);
            assert!(
                data.len() <= 8192,
                "Data-Out within the target's MaxRecvDataSegmentLength"
            );
            got += data.len() as u32;
            assert_eq!(final_, got == len);
            data_sn += 1;
            received.extend_from_slice(&data);
        }
        offset += len;
    }
    assert_eq!(received, payload.to_vec());
    let resp = conn.response(&cmd, 0, None, Residual::None);
    conn.send(resp).await;
    assert!(writer.await.unwrap().unwrap().is_good());
}

/// §4.2.2.1: a zero window (MaxCmdSN = ExpCmdSN - 1) holds commands back
/// until the target reopens it (here with a NOP-In).
/// UNH-IOL: FFP #3.1
#[tokio::test]
async fn zero_window_holds_commands_until_reopened() {
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        window: 0,
        ..LoginScript::default()
    };
    let (session, mut conn) = connect(&target, config(&target), script).await;
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(512)).await }
    });
    assert!(
        conn.try_recv(Duration::from_millis(300)).await.is_none(),
        "a command went out through a closed window"
    );
    conn.window = 1;
    let update = conn.nop_in(Ttt::RESERVED, Bytes::new());
    conn.send(update).await;
    let cmd = conn.expect_command().await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![1u8; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// §11.19: a NOP-In carrying a TTT is a ping the initiator must answer with
/// a NOP-Out echoing the TTT and the data, ITT reserved.
/// UNH-IOL: FFP #15.1
#[tokio::test]
async fn target_ping_is_answered() {
    let target = ScriptedTarget::bind().await;
    let (_session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let ping = conn.nop_in(Ttt(0xabcd), Bytes::from_static(b"ping-data"));
    conn.send(ping).await;
    match conn.recv().await {
        Pdu::NopOut(n) => {
            assert!(n.itt.is_reserved());
            assert_eq!(n.ttt, Ttt(0xabcd));
            assert_eq!(&n.data[..], b"ping-data");
            assert!(n.immediate);
        }
        other => panic!("expected NOP-Out, got {other:?}"),
    }
}

/// §11.17: a rejected command fails with the reason, its CmdSN is plugged
/// (§11.5.1), and the session goes on.
/// UNH-IOL: FFP #19.3
#[tokio::test]
async fn rejected_command_fails_with_reason() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(512)).await }
    });
    let cmd = conn.expect_command().await;
    let (rejected_itt, rejected_cmd_sn) = (cmd.itt, cmd.cmd_sn);
    let reject = conn.reject(&Pdu::ScsiCommand(cmd), RejectReason::CommandNotSupported);
    conn.send(reject).await;
    match reader.await.unwrap() {
        Err(Error::Command {
            failure: TaskFailure::Rejected(RejectReason::CommandNotSupported),
            ..
        }) => {}
        other => panic!("expected a rejected command, got {other:?}"),
    }
    // §11.5.1: the rejected CmdSN is plugged with an ABORT TASK naming it.
    let Pdu::TaskMgmtRequest(abort) = conn.recv().await else {
        panic!("expected ABORT TASK")
    };
    assert_eq!(
        (abort.referenced_task_tag, abort.ref_cmd_sn),
        (rejected_itt, rejected_cmd_sn)
    );
    let done = conn.tmf_response(&abort, iscsi_proto::pdu::TmfResponse::FunctionComplete);
    conn.send(done).await;
    // Still usable afterwards.
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(512)).await }
    });
    let cmd = conn.expect_command().await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![0u8; 512]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// §11.9.1 AsyncEvent 1: the target asks for a logout; the initiator drains,
/// logs out, reconnects and carries on.
/// UNH-IOL: FFP #14.1, FFP #20.1, Login #2.1
#[tokio::test]
async fn async_logout_request_leads_to_logout_and_reconnect() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    cfg.timeouts.replacement = Duration::from_secs(10);
    let (session, mut conn) = connect(&target, cfg, LoginScript::default()).await;
    let msg = conn.async_message(AsyncEvent::LogoutRequest, 0, 0, 5, Bytes::new());
    conn.send(msg).await;
    conn.expect_logout().await;
    // A command sent now waits for the new connection.
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(512)).await }
    });
    let mut conn2 = target.accept().await;
    let (first, _) = conn2.login(&LoginScript::default()).await;
    assert_eq!(
        first.isid, conn.isid,
        "same ISID: the session is reinstated"
    );
    assert_eq!(first.tsih, 0, "TSIH 0 on reinstatement (§6.3.5)");
    let cmd = conn2.expect_command().await;
    let din = conn2.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![9u8; 512]),
        Some((0, Residual::None)),
    );
    conn2.send(din).await;
    assert!(reader.await.unwrap().unwrap().is_good());
}

/// §11.14: a logout the target never confirms (it hangs up instead) is not
/// a clean logout. `logout()` says what happened, and so does every later
/// call, once the driver is gone: never `Ok`.
#[tokio::test]
async fn logout_when_the_target_hangs_up_reports_it() {
    let target = ScriptedTarget::bind().await;
    let (session, mut conn) = connect(&target, config(&target), LoginScript::default()).await;
    let (first, ()) = tokio::join!(session.logout(), async move {
        match conn.recv().await {
            Pdu::LogoutRequest(_) => drop(conn),
            other => panic!("expected a Logout Request, got {other:?}"),
        }
    });
    let lost = |result: Result<(), Error>, which: &str| match result {
        Err(e @ Error::ConnectionLost { .. }) => {
            assert!(
                e.to_string().contains("target closed the connection"),
                "{which}: {e}"
            );
            e
        }
        other => panic!("{which}: expected the lost connection, got {other:?}"),
    };
    let first = lost(first, "the logout");
    // The driver has ended: the status says how, and a later logout too.
    let status = session.status();
    assert!(!status.logged_out);
    assert_eq!(status.last_error.as_ref(), Some(&first));
    let again = lost(session.logout().await, "a logout after the session ended");
    assert_eq!(again, first);
    assert!(
        target
            .try_accept(Duration::from_millis(300))
            .await
            .is_none(),
        "no reconnect after the session ended"
    );
}

/// §6.2 / §11.13.5: a temporary redirect is followed to the address given.
#[tokio::test]
async fn login_redirect_is_followed() {
    let first = ScriptedTarget::bind().await;
    let second = ScriptedTarget::bind().await;
    let address = second.addr().to_string();
    let (session, _conn) = tokio::join!(Session::connect(config(&first)), async {
        let mut c = first.accept().await;
        c.redirect(&address, false).await;
        let mut c2 = second.accept().await;
        c2.login(&LoginScript::default()).await;
        c2
    });
    let session = session.expect("login after redirect");
    assert_eq!(session.status().portal, second.portal());
}

/// §6.3: a login that never answers fails within the login timeout.
#[tokio::test]
async fn silent_login_times_out() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    cfg.timeouts.login = Duration::from_millis(500);
    let (result, _conn) = tokio::join!(Session::connect(cfg), async {
        let mut c = target.accept().await;
        let _ = c.expect_login().await;
        c
    });
    match result {
        Err(Error::Timeout { what: "login", .. }) => {}
        other => panic!("expected a login timeout, got {other:?}"),
    }
}

/// §11.13.5: status class 2 refuses the login with a clear error.
#[tokio::test]
async fn login_refusal_is_reported() {
    let target = ScriptedTarget::bind().await;
    let (result, _conn) = tokio::join!(Session::connect(config(&target)), async {
        let mut c = target.accept().await;
        let req = c.expect_login().await;
        assert_eq!(req.csg, Stage::Security);
        let resp = c.login_failure(&req, LoginStatus::NOT_FOUND, Bytes::new());
        c.send(resp).await;
        c
    });
    let err = result.expect_err("refused login");
    assert!(
        matches!(
            err,
            Error::LoginRejected {
                status: LoginStatus::NOT_FOUND,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("target not found"), "{err}");
}

/// §6.3.5 and the replacement timeout: while the target takes the reconnect
/// but never answers the login, a waiting command fails when its replacement
/// timeout passes, not when the login gives up; a logout ends the session at
/// once.
#[tokio::test]
async fn replacement_timeout_runs_while_the_login_hangs() {
    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    cfg.timeouts.replacement = Duration::from_millis(400);
    cfg.timeouts.login = Duration::from_secs(30);
    let (session, conn) = connect(&target, cfg, LoginScript::default()).await;
    drop(conn);
    let mut again = target.accept().await;
    let _ = again.expect_login().await;
    let started = tokio::time::Instant::now();
    let result = session.execute(read(512)).await;
    let waited = started.elapsed();
    match result {
        Err(Error::Command {
            failure: TaskFailure::NotConnected(why),
            ..
        }) if why.contains("replacement timeout") => {}
        other => panic!("expected a replacement timeout, got {other:?}"),
    }
    // Both bounds: a command failed at once would pass an upper bound alone.
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(5),
        "waited {waited:?} for a 400 ms replacement timeout"
    );
    tokio::time::timeout(Duration::from_secs(2), session.logout())
        .await
        .expect("logout does not wait for the hanging login")
        .unwrap();
}

/// §12.1.3: a target that refuses our CHAP_A list (SHA-256, SHA-1, MD5) gets a
/// second login offering MD5 alone.
/// UNH-IOL: CHAP #1.2.1
#[tokio::test]
async fn chap_algorithm_list_refused_then_md5_alone() {
    use iscsi_proto::pdu::LoginResponse;
    use iscsi_proto::text::{KeyValue, TextLimits, encode_pairs, parse_pairs};
    use iscsi_session::ChapAlgorithm;
    use iscsi_session::{ChapConfig, ChapCredentials};

    async fn answer(
        conn: &mut ScriptedConnection,
        req: &iscsi_proto::pdu::LoginRequest,
        pairs: &[(&str, &str)],
    ) {
        let kvs: Vec<KeyValue> = pairs.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
        let mut resp: LoginResponse = conn.login_failure(
            req,
            LoginStatus::SUCCESS,
            Bytes::from(encode_pairs(&kvs).unwrap()),
        );
        resp.exp_cmd_sn = req.cmd_sn;
        conn.send(resp).await;
    }
    fn value(req: &iscsi_proto::pdu::LoginRequest, key: &str) -> Option<String> {
        parse_pairs(&req.data, TextLimits::DEFAULT)
            .unwrap()
            .into_iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value)
    }

    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    let mut chap = ChapConfig::one_way(ChapCredentials::new("alice", "alice-secret-1"));
    chap.algorithms = vec![
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Md5,
    ];
    cfg.chap = Some(chap);
    let session = tokio::spawn(Session::connect(cfg));
    let mut first = target.accept().await;
    let req = first.expect_login().await;
    assert_eq!(value(&req, "AuthMethod").as_deref(), Some("CHAP,None"));
    answer(&mut first, &req, &[("AuthMethod", "CHAP")]).await;
    let req = first.expect_login().await;
    assert_eq!(value(&req, "CHAP_A").as_deref(), Some("7,6,5"));
    answer(&mut first, &req, &[("CHAP_A", "Reject")]).await;
    first.expect_eof(Duration::from_secs(5)).await;

    let mut second = target.accept().await;
    let req = second.expect_login().await;
    answer(&mut second, &req, &[("AuthMethod", "CHAP")]).await;
    let req = second.expect_login().await;
    assert_eq!(
        value(&req, "CHAP_A").as_deref(),
        Some("5"),
        "MD5 alone the second time"
    );
    session.abort();
}

/// The MD5 fallback is a fallback, not a downgrade: configured with SHA-256
/// alone, a refused list ends the login instead of offering MD5.
#[tokio::test]
async fn no_md5_fallback_unless_configured() {
    use iscsi_proto::pdu::LoginResponse;
    use iscsi_proto::text::{KeyValue, encode_pairs};
    use iscsi_session::ChapAlgorithm;
    use iscsi_session::{ChapConfig, ChapCredentials};

    let target = ScriptedTarget::bind().await;
    let mut cfg = config(&target);
    let mut chap = ChapConfig::one_way(ChapCredentials::new("alice", "alice-secret-1"));
    chap.algorithms = vec![ChapAlgorithm::Sha256];
    cfg.chap = Some(chap);
    let (result, ()) = tokio::join!(Session::connect(cfg), async {
        let mut conn = target.accept().await;
        for answer in [("AuthMethod", "CHAP"), ("CHAP_A", "Reject")] {
            let req = conn.expect_login().await;
            let kvs = [KeyValue::new(answer.0, answer.1)];
            let mut resp: LoginResponse = conn.login_failure(
                &req,
                LoginStatus::SUCCESS,
                Bytes::from(encode_pairs(&kvs).unwrap()),
            );
            resp.exp_cmd_sn = req.cmd_sn;
            conn.send(resp).await;
        }
        conn.expect_eof(Duration::from_secs(5)).await;
    });
    assert!(
        matches!(result, Err(Error::ChapAlgorithmRejected { .. })),
        "{result:?}"
    );
    // No second login came.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), target.accept())
            .await
            .is_err(),
        "a second login was attempted"
    );
}

/// Not RFC 7143 at all: an HTTP server on the portal answers our Login
/// Request with a status line. The login fails at once with one line that
/// says so and quotes it, not with a "reserved opcode" made of its letters,
/// and whether the server hangs up or keeps the socket open.
#[tokio::test]
async fn an_http_server_on_the_portal_is_named_as_such() {
    for hang_up in [true, false] {
        let target = ScriptedTarget::bind().await;
        let started = tokio::time::Instant::now();
        let (result, _conn) = tokio::join!(Session::connect(config(&target)), async {
            let mut conn = target.accept().await;
            conn.expect_login().await;
            conn.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            (!hang_up).then_some(conn)
        });
        let err = result.expect_err("an HTTP server is no iSCSI target");
        assert!(matches!(err, Error::NotIscsi { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "login to {TARGET} at {}: the peer does not speak iSCSI: it sent \
                 \"HTTP/1.1 400 Bad Request\"",
                target.portal()
            )
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not left to the 5 s login timeout (hang up: {hang_up})"
        );
    }
}

/// §13.1: our default offer is `None,CRC32C` for both digests, so a target
/// that requires CRC32C picks it (instead of refusing None, as istgt does),
/// and both sides frame every PDU with digests from then on.
/// UNH-IOL: Login #9.2, Login #9.3
#[tokio::test]
async fn a_target_requiring_digests_gets_them_by_default() {
    use iscsi_proto::codec::Digests;
    use iscsi_proto::text::Digest;
    let target = ScriptedTarget::bind().await;
    let script = LoginScript {
        policy: Policy::new()
            .with("HeaderDigest", "CRC32C")
            .unwrap()
            .with("DataDigest", "CRC32C")
            .unwrap(),
        ..LoginScript::default()
    };
    let (session, conn) = tokio::join!(Session::connect(config(&target)), async {
        let mut conn = target.accept().await;
        let (_, offers) = conn.login(&script).await;
        for key in ["HeaderDigest", "DataDigest"] {
            let offer = offers
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| kv.value.as_str());
            assert_eq!(offer, Some("None,CRC32C"), "{key}");
        }
        conn
    });
    let (session, mut conn) = (session.expect("login"), conn);
    let params = session.params().unwrap();
    assert_eq!(
        (params.header_digest, params.data_digest),
        (Digest::Crc32c, Digest::Crc32c)
    );
    let digests = Digests {
        header: true,
        data: true,
    };
    conn.configure(digests, 262_144, 262_144);
    let reader = tokio::spawn({
        let s = session.clone();
        async move { s.execute(read(1024)).await }
    });
    let cmd = conn.expect_command().await;
    let din = conn.data_in(
        &cmd,
        0,
        0,
        Bytes::from(vec![0x5a; 1024]),
        Some((0, Residual::None)),
    );
    conn.send(din).await;
    let outcome = reader.await.unwrap().unwrap();
    assert!(outcome.data.to_bytes().iter().all(|&b| b == 0x5a));
    let (logout, ()) = tokio::join!(session.logout(), conn.expect_logout());
    logout.unwrap();
}

/// §6.2 and §13: a target answering `Reject`, `Irrelevant` or a value
/// outside our offer for a key that matters fails the login with one line
/// naming the portal, the target, the key and both sides' values, and the
/// connection is closed: the session never starts with the two sides
/// understanding it differently.
/// UNH-IOL: Login #7.2
#[tokio::test]
async fn refused_or_out_of_offer_answers_fail_the_login() {
    use iscsi_session::DigestPreference;
    let cases: &[(Option<DigestPreference>, &str, &str, &str)] = &[
        // istgt with UseDigest Header Data, offered None alone.
        (
            Some(DigestPreference::None),
            "HeaderDigest",
            "Reject",
            r#"HeaderDigest: we offered "None", the target answered "Reject""#,
        ),
        (
            None,
            "DataDigest",
            "Reject",
            r#"DataDigest: we offered "None,CRC32C", the target answered "Reject""#,
        ),
        (
            None,
            "HeaderDigest",
            "Irrelevant",
            r#"HeaderDigest: we offered "None,CRC32C", the target answered "Irrelevant""#,
        ),
        (
            Some(DigestPreference::None),
            "DataDigest",
            "CRC32C",
            r#"DataDigest: we offered "None", the target answered "CRC32C""#,
        ),
        (
            None,
            "InitialR2T",
            "Reject",
            r#"InitialR2T: we offered "No", the target answered "Reject""#,
        ),
        (
            None,
            "MaxBurstLength",
            "16777216",
            r#"MaxBurstLength: we offered "16777215", the target answered "16777216""#,
        ),
    ];
    for &(pref, key, answer, says) in cases {
        let target = ScriptedTarget::bind().await;
        let mut cfg = config(&target);
        if let Some(pref) = pref {
            cfg.operational.header_digest = pref;
            cfg.operational.data_digest = pref;
        }
        let script = LoginScript {
            overrides: vec![(key.into(), answer.into())],
            ..LoginScript::default()
        };
        let (result, ()) = tokio::join!(Session::connect(cfg), async {
            let mut conn = target.accept().await;
            conn.login(&script).await;
            conn.expect_eof(Duration::from_secs(5)).await;
        });
        let err = result.expect_err("the login must fail");
        assert!(matches!(err, Error::Negotiation { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(says), "{key}={answer}: {msg}");
        assert!(
            msg.contains(TARGET) && msg.contains(&target.portal().to_string()),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(
            err.is_permanent_login_failure(),
            "retrying cannot change the target's answer"
        );
    }
}

/// Plays one mutual-CHAP login up to the initiator's own challenge and
/// returns the CHAP_I and CHAP_C it sent; the login is then abandoned.
async fn mutual_challenge_of_one_login(
    target: &ScriptedTarget,
    their_challenge: &str,
) -> (String, String) {
    use iscsi_proto::pdu::{LoginRequest, LoginResponse};
    use iscsi_proto::text::{KeyValue, TextLimits, encode_pairs, parse_pairs};
    use iscsi_session::{ChapConfig, ChapCredentials};

    fn value(req: &LoginRequest, key: &str) -> Option<String> {
        parse_pairs(&req.data, TextLimits::DEFAULT)
            .unwrap()
            .into_iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value)
    }
    let mut cfg = config(target);
    cfg.chap = Some(ChapConfig::mutual(
        ChapCredentials::new("alice", "alice-secret-1"),
        ChapCredentials::new("target-bob", "bob-secret-22"),
    ));
    let session = tokio::spawn(Session::connect(cfg));
    let mut conn = target.accept().await;
    for answer in [
        vec![("AuthMethod", "CHAP")],
        vec![
            ("CHAP_A", "5"),
            ("CHAP_I", "3"),
            ("CHAP_C", their_challenge),
        ],
    ] {
        let req = conn.expect_login().await;
        let kvs: Vec<KeyValue> = answer.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
        let mut resp: LoginResponse = conn.login_failure(
            &req,
            LoginStatus::SUCCESS,
            Bytes::from(encode_pairs(&kvs).unwrap()),
        );
        resp.exp_cmd_sn = req.cmd_sn;
        conn.send(resp).await;
    }
    let req = conn.expect_login().await;
    assert!(value(&req, "CHAP_R").is_some(), "their challenge answered");
    let ours = (
        value(&req, "CHAP_I").expect("mutual CHAP sends CHAP_I"),
        value(&req, "CHAP_C").expect("mutual CHAP sends CHAP_C"),
    );
    session.abort();
    ours
}

/// §12.1.3: for mutual CHAP the initiator draws a fresh challenge on every
/// login, whether the logins run side by side or one after the other, and
/// never sends back the target's own challenge (which would let the target
/// answer with our response).
/// UNH-IOL: CHAP #2.5, CHAP #3.6.3, CHAP #3.6.4, CHAP #3.8
#[tokio::test]
async fn mutual_chap_challenges_are_fresh_on_every_login() {
    let theirs = "0x00112233445566778899aabbccddeeff";
    let (a, b) = (ScriptedTarget::bind().await, ScriptedTarget::bind().await);
    let (side_a, side_b) = tokio::join!(
        mutual_challenge_of_one_login(&a, theirs),
        mutual_challenge_of_one_login(&b, theirs)
    );
    let after = mutual_challenge_of_one_login(&a, theirs).await;
    let challenges = [&side_a.1, &side_b.1, &after.1];
    for (i, c) in challenges.iter().enumerate() {
        assert_ne!(
            c.as_str(),
            theirs,
            "login {i} sent back the target's challenge"
        );
        assert!(
            c.len() >= 2 + 2 * 16,
            "login {i}: a challenge of at least 16 bytes, got {c}"
        );
        for other in &challenges[..i] {
            assert_ne!(c, other, "a challenge repeated across logins");
        }
    }
    for (identifier, _) in [&side_a, &side_b, &after] {
        let id: u32 = identifier.parse().expect("CHAP_I is a decimal number");
        assert!(id <= 255);
    }
}
