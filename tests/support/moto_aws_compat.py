"""`moto_server`, corrected where moto 5.2.5's Step Functions interpreter differs from AWS in ways the
Failover and Fallback state machines depend on. Run as `python moto_aws_compat.py -H 127.0.0.1 -p PORT`
(tests/support/moto_env.py does, by default). Each correction names the AWS behaviour it restores; if a
patched name is missing (another moto version) start-up fails loudly instead of testing the wrong thing.

1. Error names of AWS SDK integrations. AWS names them `<Service>.<ErrorName>` in PascalCase, and an
   EC2 error - EC2 models no exception types - always arrives as `Ec2.Ec2Exception` (throttling
   included). moto knows the PascalCase spelling only for DynamoDB and Step Functions and names every
   EC2 error `ec2.ec2Exception`, so a Retrier written for AWS would never match in moto.
2. `$$.Execution.StartTime` is an ISO 8601 string in AWS (`2026-11-23T14:00:00.123Z`); moto hands the
   state machine a Python datetime, which no Timestamp comparison can read.
3. Timestamp comparisons: AWS accepts RFC 3339 with fractional seconds (which StartTime has); moto
   accepts only `YYYY-MM-DDTHH:MM:SSZ`.

And one test hook (not a correction): EC2 faults. When the environment variable
NAT_WATCHDOG_MOTO_FAULTS names a JSON file {"<api>": {"code": "RequestLimitExceeded", "status": 503,
"message": "...", "remaining": N, "match": {"RouteTableId": "rtb-..."}}} (match optional), the next N calls of that EC2 API (`replaceRoute`, ...) made by a state
machine's aws-sdk task raise a real botocore ClientError with that code, before reaching moto - what an
AWS throttle looks like to the SDK. moto_env.MotoServer.inject_ec2_fault writes the file.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading


def apply() -> None:
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import \
        is_operator
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import \
        state_task_service_aws_sdk as aws_sdk
    from moto.stepfunctions.parser.backend import execution_worker

    # 1.
    aws_sdk._SERVICE_ERROR_NAMES["ec2"] = "Ec2"  # noqa: SLF001 - the table moto itself consults

    # 2.
    original_execution_data = execution_worker.ExecutionData

    def execution_data(**fields):
        start = fields.get("StartTime")
        if isinstance(start, datetime.datetime):
            start = start.astimezone(datetime.timezone.utc)
            fields["StartTime"] = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        return original_execution_data(**fields)

    execution_worker.ExecutionData = execution_data

    # 3.
    def string_to_timestamp(string):
        if not isinstance(string, str):
            return None
        for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
            try:
                return datetime.datetime.strptime(string, fmt)
            except ValueError:
                continue
        return None

    is_operator.IsTimestamp.string_to_timestamp = staticmethod(string_to_timestamp)

    # The fault hook.
    from botocore.exceptions import ClientError

    faults_file = os.environ.get("NAT_WATCHDOG_MOTO_FAULTS")
    lock = threading.Lock()
    original_eval = aws_sdk.StateTaskServiceAwsSdk._eval_service_task

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if faults_file and self._get_boto_service_name() == "ec2":
            action = self.resource.api_action
            with lock:
                try:
                    with open(faults_file) as f:
                        faults = json.load(f)
                except (OSError, ValueError):
                    faults = {}
                fault = faults.get(action)
                wanted = (fault or {}).get("match") or {}
                if any(normalised_parameters.get(k) != v for k, v in wanted.items()):
                    fault = None
                if fault and fault.get("remaining", 0) > 0:
                    fault["remaining"] -= 1
                    with open(faults_file, "w") as f:
                        json.dump(faults, f)
                else:
                    fault = None
            if fault:
                raise ClientError({"Error": {"Code": fault["code"], "Message": fault["message"]},
                                   "ResponseMetadata": {"HTTPStatusCode": fault["status"],
                                                        "RequestId": "injected-fault"}}, action)
        return original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    aws_sdk.StateTaskServiceAwsSdk._eval_service_task = eval_service_task


if __name__ == "__main__":
    apply()
    from moto.server import main

    sys.exit(main())
