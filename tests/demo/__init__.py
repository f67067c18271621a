"""The demo, one entry with two modes (run from the repository root):

  python -m tests.demo emulated [--checker BIN] [--watchdog BIN]
                                                            `make demo`: the whole job on emulated AWS,
                                                            ending with `nat-watchdog status/incidents`
  python -m tests.demo lab --binary BIN [--mode M] [--hold] `make lab`: one failure mode on a real NAT
                                                            in network namespaces (root)
"""
