"""The demo, one entry with two modes (run from the repository root):

  python -m tests.demo emulated [--checker BIN]            `make demo`: the whole job on emulated AWS
  python -m tests.demo lab --binary BIN [--mode M] [--hold] `make lab`: one failure mode on a real NAT
                                                            in network namespaces (root)
"""
