#!/bin/sh
# Stand-in for tapscope-helper while the real one is not built: same flags (--mode, --iface, --duration,
# --exclude-tcp, --version), pcapng on stdout from dumpcap, stops on SIGTERM or when the duration ends.
iface=any
filter=""
dur=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) echo "tapscope-helper 0.0.0-standin"; exit 0 ;;
    --mode|--snaplen) shift ;;
    --iface) iface="$2"; shift ;;
    --duration) dur="$2"; shift ;;
    --exclude-tcp)
      ip="${2%:*}"; port="${2##*:}"
      f="not (tcp and host $ip and port $port)"
      if [ -n "$filter" ]; then filter="$filter and $f"; else filter="$f"; fi
      shift ;;
    *) echo "unknown flag $1" >&2; exit 1 ;;
  esac
  shift
done
set -- -q -i "$iface" -w -
[ -n "$filter" ] && set -- "$@" -f "$filter"
[ -n "$dur" ] && set -- "$@" -a "duration:$dur"
exec dumpcap "$@"
