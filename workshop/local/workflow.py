"""`workshop invoke` for a durable function (lab 7; LocalLab.is_durable tells): the whole workflow, run
offline by AWS's own local runner (the durable execution testing SDK, its waits skipped), printed like the
execution history the Lambda console shows: each operation (step, wait, callback) with its status and
result, then how many times Lambda ran the handler (the first run and its replays) and what the workflow
left in the tables.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from workshop import paths
from workshop.grading import durable
from workshop.lambda_runtime import FunctionError, load_handler
from workshop.local.lab import LocalError, LocalLab
from workshop.local.runtime import environment_of

WAREHOUSE_ANSWERS = (durable.CONFIRM, durable.REFUSE, durable.SILENCE)


def run(lab: LocalLab, logical_id: str, label: str, event: Any, warehouse: str) -> int:
    """Run the workflow to its end with `event`; the warehouse answers as `warehouse` says. Exit code 0
    when the execution succeeded, 1 when it failed or never finished."""
    if warehouse not in WAREHOUSE_ANSWERS:
        raise LocalError(f"--warehouse takes {', '.join(WAREHOUSE_ANSWERS)}, not {warehouse!r}")
    from workshop.local.commands import stores, written

    spec = lab.spec(logical_id)
    print(f"Running the workflow {paths.relative(spec.folder)} ({logical_id}) with {label}; "
          f"the warehouse will {'never answer' if warehouse == durable.SILENCE else warehouse}", file=sys.stderr)
    before = stores(lab)
    # The SDK logs each failed step with its traceback, the runner each timeout: the history says both.
    for sdk in ("aws_durable_execution_sdk_python", "aws_durable_execution_sdk_python_testing"):
        logging.getLogger(sdk).setLevel(logging.CRITICAL)
    with environment_of(spec):
        try:
            handler = load_handler(spec.folder, spec.handler)
        except FunctionError as error:
            raise LocalError(str(error)) from None
        result = durable.run_workflow(handler, event, warehouse=warehouse)
    print("Execution history (oldest first):")
    print(durable.history_table(result) or "  (no operation)")
    print()
    print(f"Execution {result.status} in {result.seconds:.2f} s (waits skipped); Lambda ran the handler "
          f"{result.invocations} time(s): the first run and {max(result.invocations - 1, 0)} replay(s).")
    if result.error:
        print(f"Error: {result.error}")
    print(f"Result: {json.dumps(result.result, default=str)}")
    print()
    written(lab, before)
    return 0 if result.status == "SUCCEEDED" else 1
