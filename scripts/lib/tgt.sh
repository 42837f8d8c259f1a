# Throwaway tgtd targets on loopback for the demo and the benchmarks.
# Source it, then: tgt_start NAME SIZE_MB [PORTAL...]; tgt_chap USER SECRET
# [TUSER TSECRET]; everything is torn down by tgt_stop (set as an EXIT trap).

TGT_CTRL=""
TGT_PORT=""
TGT_IQN=""
TGT_LUN_FILE=""
TGT_PID=""

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# Usage: tgt_start NAME SIZE_MB PORTAL_ADDR... (e.g. 127.0.0.1 127.0.0.2)
tgt_start() {
  local name=$1 size_mb=$2
  shift 2
  TGT_PORT=$(free_port)
  # tgtadm takes control ports up to 32767.
  TGT_CTRL=$(( (RANDOM % 12000) + 20000 ))
  TGT_IQN="iqn.2026-11.io.riscsi.demo:${name}"
  TGT_LUN_FILE="/dev/shm/riscsi-${name}-$$.img"
  local portals=()
  for addr in "$@"; do
    case $addr in
      *:*) portals+=("portal=[${addr}]:${TGT_PORT}") ;;
      *) portals+=("portal=${addr}:${TGT_PORT}") ;;
    esac
  done
  local IFS=,
  tgtd -f -C "$TGT_CTRL" --iscsi "${portals[*]}" >"/tmp/riscsi-tgtd-$$.log" 2>&1 &
  TGT_PID=$!
  unset IFS
  for _ in $(seq 50); do
    tgtadm -C "$TGT_CTRL" --op show --mode system >/dev/null 2>&1 && break
    sleep 0.1
  done
  truncate -s "${size_mb}M" "$TGT_LUN_FILE"
  tgtadm -C "$TGT_CTRL" --lld iscsi --op new --mode target --tid 1 -T "$TGT_IQN"
  tgtadm -C "$TGT_CTRL" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$TGT_LUN_FILE"
  tgtadm -C "$TGT_CTRL" --lld iscsi --op bind --mode target --tid 1 -I ALL
}

# Usage: tgt_chap USER SECRET [TARGET_USER TARGET_SECRET]
tgt_chap() {
  tgtadm -C "$TGT_CTRL" --lld iscsi --op new --mode account --user "$1" --password "$2"
  tgtadm -C "$TGT_CTRL" --lld iscsi --op bind --mode account --tid 1 --user "$1"
  if [ $# -ge 4 ]; then
    tgtadm -C "$TGT_CTRL" --lld iscsi --op new --mode account --user "$3" --password "$4"
    tgtadm -C "$TGT_CTRL" --lld iscsi --op bind --mode account --tid 1 --user "$3" --outgoing
  fi
}

# tgtd ignores SIGTERM while it has targets: delete the system, then kill.
tgt_stop() {
  if [ -n "$TGT_PID" ]; then
    tgtadm -C "$TGT_CTRL" --op delete --mode system >/dev/null 2>&1 || true
    sleep 0.2
    kill -9 "$TGT_PID" 2>/dev/null || true
    wait "$TGT_PID" 2>/dev/null || true
    TGT_PID=""
  fi
  [ -n "$TGT_LUN_FILE" ] && rm -f "$TGT_LUN_FILE"
  rm -f "/tmp/riscsi-tgtd-$$.log"
}
