"""The executor seam without a cluster: the local executor, the checks on what a user asks for, and the one-line
install hint when Ray is missing."""

import re
import sys

import pytest
from click.testing import CliRunner

from attrib.cli import main
from attrib.errors import UsageError
from attrib.executors import INSTALL_HINT, ExecutorSpec, LocalExecutor, executor_for, make_executor
from attrib.executors.ray_cluster import is_loopback


class Counter:
    built = 0

    def __init__(self, offset):
        Counter.built += 1
        self.offset = offset

    def add(self, x):
        return x + self.offset


def test_local_executor_runs_in_order_in_this_process():
    executor = make_executor()
    assert isinstance(executor, LocalExecutor) and not executor.remote
    assert list(executor.map_unordered(pow, [(2, 3), (3, 2)])) == [(0, 8), (1, 9)]
    Counter.built = 0
    assert list(executor.map_ordered(Counter, (10,), "add", [1, 2, 3])) == [11, 12, 13]
    assert Counter.built == 1  # one worker, built once
    shared = object()
    assert executor.share(shared) is shared


def test_executor_for_leaves_a_given_executor_open_and_makes_one_from_a_spec():
    mine = LocalExecutor()
    with executor_for(mine) as executor:
        assert executor is mine
    with executor_for(ExecutorSpec()) as executor:
        assert isinstance(executor, LocalExecutor)


@pytest.mark.parametrize("spec, message", [
    (ExecutorSpec("dask"), "unknown executor 'dask'"),
    (ExecutorSpec("local", address="auto"), "--executor ray only"),
    (ExecutorSpec("local", gpus=0.5), "--executor ray only"),
    (ExecutorSpec("local", cpus=2), "CPU and GPU shares and worker counts apply to --executor ray only"),
    (ExecutorSpec("ray", cpus=0), "CPUs per task must be > 0"),
])
def test_bad_executor_choices_are_usage_errors(spec, message):
    with pytest.raises(UsageError, match=message):
        make_executor(spec)


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError) as error:
        make_executor(ExecutorSpec("ray"))
    assert str(error.value) == INSTALL_HINT == "--executor ray needs Ray: pip install 'attrib[ray]'"
    result = CliRunner().invoke(main, ["diffroar", "-M", "sample:synthetic-standard", "-m", "gradient", "--k", "0.5",
                                       "--epochs", "1", "--executor", "ray", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "pip install 'attrib[ray]'" in result.output
    assert "Traceback" not in result.output and "loading model" not in result.output  # said before any work


def test_cluster_options_without_ray_are_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["explain", "--address", "auto", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--executor ray only" in result.output


@pytest.mark.parametrize("address, loopback", [("127.0.0.1:6379", True), ("127.3.2.1:1", True),
                                               ("[::1]:6379", True), ("localhost:1", True),
                                               ("10.0.0.2:6379", False), ("192.0.2.2:1234", False)])
def test_loopback_addresses_are_recognised(address, loopback):
    assert is_loopback(address) is loopback


def test_an_unreachable_cluster_is_one_line_before_any_work(tmp_path):
    import socket

    with socket.socket() as free:  # a loopback port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(UsageError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        ExecutorSpec("ray", address=f"127.0.0.1:{port}").check()
    result = CliRunner().invoke(main, ["explain", "--executor", "ray", "--address", f"127.0.0.1:{port}",
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "cannot reach a Ray cluster" in result.output
    assert "loading model" not in result.output
    for malformed in ("nonsense", "ray://127.0.0.1:10001", "127.0.0.1:port", "127.0.0.1:1234567"):
        with pytest.raises(UsageError, match=rf"--address takes auto or HOST:PORT .*, got '{re.escape(malformed)}'"):
            ExecutorSpec("ray", address=malformed).check()  # no connection tried, no Ray error passed through
