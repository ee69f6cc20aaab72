# Sourced by the bench scripts (not run alone): helpers they share.

# The search API's total (on 127.0.0.1:$1) of records matching `q=*` plus the query
# suffix $2, 0 while it does not answer. curl and grep only: a poller that starts python
# (pyenv's shim costs ~0.1 s of CPU a start) took half a core from what it measured.
# limit=0 keeps hits, and any `total` key in them, out of the answer.
search_total() {
  curl -s "http://127.0.0.1:$1/api/v1/search?q=*&limit=0$2" \
    | { grep -o '"total":[0-9]*' || echo :0; } | cut -d: -f2
}

# Exits the bench, with the last lines of its log $3 if given, when process $1 (named $2) is
# gone: a wait loop on a process that died (a port taken, a crash) would wait forever.
alive_or_die() {
  kill -0 "$1" 2>/dev/null && return 0
  echo "$2 exited; the bench cannot go on${3:+. Its last lines:}" >&2
  [ -z "${3:-}" ] || tail -n 5 "$3" >&2
  exit 1
}

# CPU seconds of a process so far (utime + stime; the fields after the command name).
cpu_of() { awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$1/stat"; }
