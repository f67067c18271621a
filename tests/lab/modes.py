"""The failure modes the lab injects (faults.py makes them real), grouped by what a checker should do."""

from __future__ import annotations

OUTAGE_MODES = ["blackhole", "reject", "uplink_down", "masq_removed", "dns_down", "flapping"]  # fail over
BENIGN_MODES = ["loss5", "loss20", "latency", "target_down"]  # keep quiet
SOAK_MODES = ["soak5", "soak20"]  # keep quiet, for minutes
MODE_LABELS = {
    "blackhole": "hard blackhole (FORWARD DROP)",
    "reject": "reject (TCP RST)",
    "uplink_down": "NAT uplink down",
    "masq_removed": "MASQUERADE removed",
    "dns_down": "DNS down",
    "flapping": "flapping (1 s down / 1 s up)",
    "loss5": "5% random loss",
    "loss20": "20% random loss",
    "latency": "added latency (+200 ms RTT)",
    "target_down": "one target down, others live",
    "soak5": "soak: 5% loss + one target down",
    "soak20": "soak: 20% loss + one target down",
}
