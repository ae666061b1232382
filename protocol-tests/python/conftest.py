"""Fixtures: a real weir broker per test module, on a free port with a temp data dir."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def weir_bin() -> str:
    if os.environ.get("WEIR_BIN"):
        return os.environ["WEIR_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / "weir")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    def __init__(self, overrides=None, binary=None, env=None, ready_seconds=20):
        """`binary` and `env` start another program with weir's arguments instead
        (scripts/kafka-as-weir: Apache Kafka as the reference)."""
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.env = dict(os.environ, **(env or {}))
        self.ready_seconds = ready_seconds
        args = [binary or weir_bin(), "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={self.dir.name}"]
        for key, value in (overrides or {}).items():
            args += ["--override", f"{key}={value}"]
        self.args = args
        # A file, not a pipe: an undrained pipe would block the broker once it fills.
        self.log_path = Path(self.dir.name + ".log")
        self._spawn()

    def _spawn(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        self._wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self):
        deadline = time.time() + self.ready_seconds
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    log = self.log()
                    self.stop()
                    raise RuntimeError(log)
                time.sleep(0.02)
        log = self.log()
        self.stop()
        raise RuntimeError("broker did not start:\n" + log)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.dir.name)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def restart(self):
        """Starts the broker again on the same port and data directory."""
        if self.proc.poll() is None:
            self.kill9()
        self._spawn()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()
        self.log_path.unlink(missing_ok=True)
        # scripts/kafka-as-weir keeps Kafka's own files beside the data directory.
        shutil.rmtree(self.dir.name + ".kafka", ignore_errors=True)


@pytest.fixture(scope="module")
def broker():
    b = BrokerProcess()
    yield b
    b.stop()


@pytest.fixture
def make_broker():
    """Starts brokers with config overrides; stops them after the test."""
    started = []

    def make(overrides=None):
        b = BrokerProcess(overrides)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()
