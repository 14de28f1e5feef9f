"""One local Ray cluster for the whole test session: 2 CPUs, 2 fake GPUs, no dashboard, a small object store,
usage statistics off, every service on the loopback address (asserted). Skipped where ray is not installed."""

from pathlib import Path

import pytest


def _listening() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on this machine (Linux /proc; empty elsewhere)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                address, port = local.split(":")
                found.add((address, int(port, 16)))
    return found


def _is_loopback_hex(address: str) -> bool:
    """/proc/net addresses: 127.x.x.x (little-endian hex), ::1, or ::ffff:127.x.x.x."""
    if len(address) == 8:
        return address.endswith("7F")
    return address == "00000000000000000000000001000000" or \
        (address.startswith("0000000000000000FFFF0000") and address.endswith("7F"))


@pytest.fixture(scope="session")
def ray_cluster():
    pytest.importorskip("ray")
    from attrib.executors.ray_cluster import import_ray, is_loopback

    ray = import_ray(local=True)
    before = _listening()
    context = ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, object_store_memory=100 * 2 ** 20,
                       log_to_driver=False, logging_level="warning")
    try:
        assert is_loopback(context.address_info["node_ip_address"])
        assert is_loopback(context.address_info["gcs_address"])
        opened = _listening() - before
        assert all(_is_loopback_hex(address) for address, _ in opened), opened
        yield context
    finally:
        ray.shutdown()
