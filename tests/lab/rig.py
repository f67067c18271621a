"""The lab plus the emulated AWS side, started and stopped as one:

    with Rig(out_dir) as rig:       # namespaces, NAT (configure-nat.sh), targets, DNS, moto, endpoint
        arn = rig.new_state_machine("demo")   # relay, the emulated VPC, Step Functions and EC2 clients
        ...
                                    # leaving the block (or SIGINT/SIGTERM/SIGHUP) tears it all down

The signals end the run through the normal unwinding, so __exit__ runs; atexit is the last resort."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tests.support.moto_env import MotoServer, build_vpc, create_state_machines, default_route_targets

from .checker import AZ
from .cleanup import install_signal_handlers
from .netlab import Lab


class Rig:
    def __init__(self, out_dir: Path, handle_signals: bool = True,
                 moto_factory: Callable[[Path], MotoServer] | None = None):
        """moto_factory(out_dir): a MotoServer not yet started (default: a plain one logging to
        out_dir/moto.log); e.g. moto_env.recovery_moto_server for the recovery controller's needs."""
        self.lab = Lab(out_dir=out_dir)
        self.moto_factory = moto_factory
        self.out_dir = out_dir
        self.handle_signals = handle_signals
        self.moto: MotoServer | None = None
        self.sfn = self.ec2 = None
        self.vpc: dict = {}
        self._n = 0

    def __enter__(self) -> "Rig":
        if self.handle_signals:
            install_signal_handlers(self.close)
        try:
            self.lab.start()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            factory = self.moto_factory or (lambda d: MotoServer(log_path=d / "moto.log"))
            self.moto = factory(self.out_dir).start()
            self.lab.attach_endpoint(self.moto.port, pid=self.moto.proc.pid if self.moto.proc else None)
            session = self.moto.session()
            self.sfn = session.client("stepfunctions")
            self.ec2 = session.client("ec2")
            self.vpc = build_vpc(self.ec2, [AZ])[AZ]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.lab.close()
        if self.moto:
            self.moto.stop()
            self.moto = None

    @property
    def subnet_id(self) -> str:
        return self.vpc["private_subnet_id"]

    def new_state_machine(self, tag: str) -> str:
        """A fresh Failover state machine (from infra/statemachines) per checker run: execution names
        are deterministic per AZ and minute, so back-to-back trials must not share a machine."""
        self._n += 1
        prefix = f"lab-{self.lab.run_id}-{self._n}-{tag}"[:60]
        return create_state_machines(self.sfn, name_prefix=prefix)["failover"]

    def route_targets(self) -> dict:
        return default_route_targets(self.ec2, self.vpc["route_table_ids"])
