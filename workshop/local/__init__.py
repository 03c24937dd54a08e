"""Run the labs locally like Lambda does, offline and without Docker: see workshop/local/lab.py.

    lab.py       LocalLab: a lab's stack in moto, its functions, its event sources (S3, SQS, SNS, schedules)
    runtime.py   one function's execution environment: cold start, warm invocations, timeouts, REPORT
    stack.py     the lab's template created in moto's CloudFormation
    schedule.py  when EventBridge fires a rate() or cron() rule, and the event it sends
    api.py       `workshop start-api`: the lab's API routes served on 127.0.0.1
    commands.py  the CLI verbs: invoke, upload, send, publish, tick
"""

from workshop.local.lab import LocalError, LocalLab

__all__ = ["LocalError", "LocalLab"]
