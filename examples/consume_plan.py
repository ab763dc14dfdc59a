"""Bring your own executor: carry out a Kronos plan's live migrations with openstacksdk.

    OS_CLOUD=mycloud python examples/consume_plan.py plan.json results.jsonl state.json

It reads the plan format (docs/formats.md: ``steps`` with ``seq``, ``wave``,
``action``, ``instance``, ``source``, ``destination``), appends one line per
step in the results format ``kronos execute`` writes, and feeds each
outcome to ``kronos state record-result`` so the next plan leaves moved VMs
alone for a while and quarantines failed ones. Deliberately tiny: one step
at a time, live migration only, no retries; ``kronos execute`` is the real
thing.
"""

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import openstack

plan_path, results_path, state_path = sys.argv[1:4]
plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
conn = openstack.connect()  # OS_CLOUD, clouds.yaml or OS_* variables
for step in sorted(plan["steps"], key=lambda s: (s["wave"], s["seq"])):
    started, error = datetime.now(UTC), None
    server = conn.compute.get_server(step["instance"])
    if step["action"] != "live-migrate":
        outcome, error = "PreFlightError", f"{step['action']}: not handled by this example"
    elif server.compute_host != step["source"] or server.status != "ACTIVE" or server.task_state:
        outcome, error = "PreFlightError", f"{server.status} on {server.compute_host}, not ACTIVE on source"
    else:
        conn.compute.live_migrate_server(server, host=step["destination"], block_migration="auto")
        while (server := conn.compute.get_server(step["instance"])).task_state:  # set until it is over
            time.sleep(1)
        moved = server.compute_host == step["destination"] and server.status == "ACTIVE"
        outcome = "Succeeded" if moved else "MigrationFailed"
        error = None if moved else f"{server.status} on {server.compute_host}"
    finished = datetime.now(UTC)
    row = {
        **{k: step[k] for k in ("seq", "wave", "instance", "action", "source", "destination")},
        "outcome": outcome,
        "attempts": 1,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "seconds": round((finished - started).total_seconds(), 3),
        "error": error,
    }
    with Path(results_path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
    feed = ["kronos", "state", "record-result", "--state", state_path, "--instance", step["instance"]]
    subprocess.run([*feed, "--outcome", outcome, *(["--error", error] if error else [])], check=True)
    print(f"{step['seq']}: {outcome} {step['instance']} {step['source']} -> {step['destination']}")
