"""Apache Kafka's own command-line tools, run as the distribution's bin/ scripts run them
(scripts/kafka-tool: same main class, arguments and JVM options)."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_TOOL = str(ROOT / "scripts" / "kafka-tool")


def tool(script, *args, input=None, timeout=90, check=True):
    """Runs `script` (e.g. "kafka-topics.sh") to completion; returns the CompletedProcess.
    With `check`, a non-zero exit fails with the tool's stdout and stderr."""
    proc = subprocess.run([KAFKA_TOOL, script, *map(str, args)], input=input,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def spawn(script, *args, stdout_path):
    """Starts `script` in the background with its stdout in a file; the caller stops it."""
    out = open(stdout_path, "w")
    proc = subprocess.Popen([KAFKA_TOOL, script, *map(str, args)], stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    out.close()
    return proc


def table(text):
    """The rows of a tool's whitespace-aligned table (kafka-consumer-groups.sh --describe,
    kafka-get-offsets.sh, ...) as lists of cells, the header row first, blanks dropped."""
    return [line.split() for line in text.splitlines() if line.strip()]


def installed():
    libs = subprocess.run([KAFKA_TOOL, "--libs"], capture_output=True, text=True).stdout.strip()
    return os.path.exists(os.path.join(libs, ".complete"))
