#!/bin/sh
# The shell agent's hooks for a chaos node: they drive its demo service over HTTP, as a real
# service's scripts would. $1 = promote|demote|role, $2 = the service's URL, $3 = a mode file the
# chaos runner writes: "hang" makes promote/demote hang (SIGTERM ends them), "ignore-term" makes
# them hang and ignore SIGTERM (the hook runner must SIGKILL the process group).
what=$1 url=$2 modefile=$3
mode=$(cat "$modefile" 2>/dev/null || echo normal)
case "$what" in
  promote | demote)
    case "$mode" in
      hang) exec sleep 3600 ;;
      # An ignored signal stays ignored across exec: sleep ignores SIGTERM too.
      ignore-term) trap '' TERM; exec sleep 3600 ;;
    esac ;;
esac
case "$what" in
  promote) role=active ;;
  demote) role=standby ;;
  role)
    body=$(curl -sf -m 1 "$url/role") || exit 1
    case "$body" in
      *'"role":"active"'*) echo active ;;
      *) echo standby ;;
    esac
    exit 0 ;;
  *) echo "usage: hook.sh promote|demote|role URL MODEFILE" >&2; exit 2 ;;
esac
curl -sf -m 2 -o /dev/null -X POST -H 'content-type: application/json' \
  -d "{\"role\":\"$role\",\"epoch\":\"${HAFC_EPOCH:-0}\",\"reason\":\"shell hook\"}" "$url/role"
