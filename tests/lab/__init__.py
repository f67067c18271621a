"""The failure-injection lab: a private subnet, a NAT instance and an "internet" in network namespaces.

Run from the repository root (`python -m tests.lab.smoke BINARY`, `python -m tests.lab.selftest`); the
Makefile targets in lab.mk do. Modules, by concern:

  shell      running commands, the lab's error type, root/tool requirements
  procs      processes the lab starts (each its own process group) and stopping them by PID
  cleanup    the per-run state file, teardown of namespaces, gc of labs whose owner died, signals
  relay      the private subnet's path to moto (the Step Functions VPC endpoint), never via the NAT
  natconf    the NAT host configured by infra/nat-instance/configure-nat.sh
  faults     fault injection on the NAT host (nftables table `ip nwd_fault`, the uplink, the NAT's rules)
  addressing the lab's addresses and target hosts
  services   the target hosts, the lab DNS and the delay proxy, started under the Lab's supervisor
  netlab     the Lab: names, namespaces and veths, the endpoint link, reachability checks, teardown
  rig        the Lab plus moto and the emulated VPC, started in one context manager
  checker    the connectivity-checker in the lab: its effective settings (--print-config), logs, EMF
  modes      the failure modes and their labels
  trial      one trial: checkers, a fault at a recorded instant, detection and recovery
  replacement  a planned NAT replacement with the checkers running (failed probes, goal 0)
  closedloop the closed loop: a NAT-gateway host, the route follower (follower.py: moto's route table
             applied to the private host's kernel) and the egress probe (egressprobe.py); egress downtime
  loop_recovery  the closed loop with the recovery state machine: fallback after a repair, damping under
             flapping, a gray failure replaced through a managed NAT layer in moto (the lab plays the
             new instance's boot), and the 5 %/20 % loss soak (no Failover, no fallback)
  smoke, selftest   the lab's own tests (lab-smoke is part of `make test`)
  servers, certs    the programs behind the services, and the lab CA

The benchmark and its report live in tests/bench, the narrated `make lab` run in tests/demo.
"""
