#!/usr/bin/env bash
# A new procedure from its step table to a finished case, with the command line only:
#   1. the step table (EX-PUB-01.yaml) → BPMN 2.0 with its swimlane diagram
#   2. xiaowei lint: the checks every published procedure passes
#   3. xiaowei procedures publish-dir: an immutable version 1
#   4. an organization and two users, then a case run step by step, and its audit trail verified
#
#   bash examples/new_procedure/run.sh [WORKDIR]      (default: a new temporary directory)
#
# Run it from the checkout with the virtual environment active (`. .venv/bin/activate`), or with
# `xiaowei` and `python` on PATH. It makes its own SQLite database in WORKDIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work/procedures" "$work/library"
export DATABASE_URL="sqlite:///$work/example.db"
cd "$here/../.."
# A library of its own: the registries (roles, categories, working days) without the handbook's
# procedures, so that `xiaowei init` publishes nothing else (XIAOWEI_PROCESSES: docs/architecture.md).
cp processes/roles.yaml processes/categories.yaml processes/calendar.yaml "$work/library/"
export XIAOWEI_PROCESSES="$work/library"

echo "== 1. step table → BPMN"
python -m engine.bpmn.steptable "$here/EX-PUB-01.yaml" -o "$work/procedures/EX-PUB-01.bpmn"

echo "== 2. lint"
xiaowei lint "$work/procedures/EX-PUB-01.bpmn"

echo "== 3. publish (xiaowei init makes the schema first)"
xiaowei init >/dev/null
xiaowei procedures publish-dir "$work/procedures"
xiaowei procedures show EX-PUB-01

echo "== 4. run a case"
xiaowei org add XD --name 示例区 --kind district >/dev/null
xiaowei org add XQ --name 西桥镇 --kind township --parent XD >/dev/null
xiaowei org add XQ01 --name 西桥村 --kind village --parent XQ >/dev/null
xiaowei user add xq01.committee --password 'example-password-1' --role committee@XQ01 --name 王村委 >/dev/null
xiaowei user add xq01.party --password 'example-password-2' --role party_branch@XQ01 --name 李书记 >/dev/null
case_id=$(xiaowei case start EX-PUB-01 --org XQ01 --as xq01.committee --json | python -c 'import json,sys; print(json.load(sys.stdin)["case_id"])')
echo "case #$case_id started"
xiaowei case complete "$case_id" propose --as xq01.committee --data '{"damage": "公开栏玻璃破损,雨水渗入", "cost": "1200"}'
xiaowei case complete "$case_id" review --as xq01.party --data '{"approved": true, "opinion": "同意维修,费用合理"}'
today=$(python -c 'from datetime import datetime, timedelta, timezone; print(datetime.now(timezone(timedelta(hours=8))).date())')
xiaowei case complete "$case_id" repair --as xq01.committee --data "{\"finished\": \"$today\", \"paid\": \"1150\"}"  # finished today (Beijing time): never a future date
xiaowei case show "$case_id"

echo "== 5. the trail, verified offline"
xiaowei audit export "$case_id" -o "$work/trail.json"
python -m engine.trailcheck "$work/trail.json"
