"""Uploading an asset: `POST /api/assets` against copying the same bytes to the same
backend directly, in the same run.

A WAV file of `--size-mb` MB (a real one: a header and PCM samples, so the probe
passes it) is uploaded to `phantomflow serve` (the embedded system, its storage a
local folder) over loopback, streamed from disk by the client. The baseline stores the
same file into a storage of the same kind (`put_stream` from the file) in this process.
Figures: the throughput ratio, upload against direct (goal >= 0.7), and how much the
API process's RSS grew at its peak during the upload (goal < 64 MB for 1 GB).

    python bench/assets.py [--size-mb 1024] [--repeat 2] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import harness

from phantomflow.adapters.storage.files import FileStorage

SAMPLE_RATE = 48_000
CHUNK = 4 * 1024 * 1024


def write_wav(path: Path, size_mb: int) -> None:
    """A stereo 16-bit PCM WAV of about `size_mb` MB of noise (noise: nothing on the way
    can compress it)."""
    data_bytes = size_mb * 1024 * 1024 - 44
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )
    noise = os.urandom(CHUNK)
    with path.open("wb") as out:
        out.write(header)
        left = data_bytes
        while left:
            step = min(left, CHUNK)
            out.write(noise[:step])
            left -= step


def cli(data_dir: Path, *args: str) -> Any:
    env = _env(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "phantomflow.api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PHANTOMFLOW_DATA_DIR=str(data_dir), PHANTOMFLOW_LOG_LEVEL="WARNING")
    return env


@contextmanager
def serve(data_dir: Path, log: Path) -> Iterator[tuple[str, int]]:
    port = harness.free_port()
    command = [sys.executable, "-m", "phantomflow.api.cli", "serve", "--port", str(port)]
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=_env(data_dir), stdout=out, stderr=out)
    try:
        harness.wait_for_port(port)
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        child.terminate()
        child.wait(10)


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise harness.BenchError(f"no {field} for process {pid}")


def upload(port: int, key: str, path: Path) -> dict[str, Any]:
    """POST the file as one multipart part, its bytes sent with sendfile as the baseline's
    are: the client costs the same both ways, so the difference is the API's."""
    boundary = "benchboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
        f' filename="{path.name}"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    request = (
        "POST /api/assets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"x-api-key: {key}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(request + head)
        with path.open("rb") as source:
            connection.sendfile(source)
        connection.sendall(tail)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.split(b"\r\n\r\n", 1)[1]
    if b" 201 " not in status_line:
        raise harness.BenchError(f"upload answered {status_line!r}: {body[:500]!r}")
    return dict(json.loads(body)["assets"][0])


async def delete(base: str, key: str, ref: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.delete(f"{base}/api/assets/{ref}", headers={"x-api-key": key}) as response,
    ):
        if response.status != 200:
            raise harness.BenchError(f"delete answered {response.status}")


class Hashed:
    """A stream that hashes what is read through it (SHA-256, as an upload is)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self.stream.read(size)
        self.hash.update(chunk)
        return chunk


def loopback_store(path: Path, storage: FileStorage, key: str, hashed: bool = False) -> None:
    """The file sent over a loopback TCP socket (sendfile) and stored as it arrives
    (`put_stream` from the socket): copying the bytes to the backend directly, across
    the same loopback as an upload; with `hashed`, hashing them on the way too."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def send() -> None:
            connection, _ = listener.accept()
            with connection, path.open("rb") as source:
                connection.sendfile(source)

        sender = threading.Thread(target=send)
        sender.start()
        with (
            socket.create_connection(("127.0.0.1", port)) as client,
            client.makefile("rb") as stream,
        ):
            storage.put_stream(key, Hashed(stream) if hashed else stream)
        sender.join()


def timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(size_mb: int, repeat: int, workdir: Path) -> dict[str, Any]:
    """Each round runs every way once, one after the other (the machine's load moves
    under all of them alike); the best round of each way counts."""
    source = workdir / "sound.wav"
    write_wav(source, size_mb)
    size = source.stat().st_size
    # The baselines: the same bytes into a local-folder storage, sent over a loopback
    # socket (what any upload costs at least; and hashed on the way), and from the file.
    direct_storage = FileStorage(workdir / "direct")

    def baseline(key: str, hashed: bool = False, loopback: bool = True) -> None:
        if loopback:
            loopback_store(source, direct_storage, key, hashed=hashed)
        else:
            with source.open("rb") as stream:
                direct_storage.put_stream(key, stream)
        direct_storage.delete(key)

    data_dir = workdir / "data"
    key = cli(data_dir, "accounts", "create", "--plan", "enterprise")["api_key"]
    times: dict[str, list[float]] = {"direct": [], "hashed": [], "local": [], "upload": []}
    growths, cpus = [], []
    with serve(data_dir, workdir / "serve.log") as (base, pid):
        for _ in range(repeat):
            times["direct"].append(timed(lambda: baseline("direct.wav")))
            times["hashed"].append(timed(lambda: baseline("hashed.wav", hashed=True)))
            times["local"].append(timed(lambda: baseline("local.wav", loopback=False)))
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            before = _status_kib(pid, "VmRSS")
            cpu_before = cpu_seconds(pid)
            started = time.perf_counter()
            asset = upload(int(base.rsplit(":", 1)[1]), key, source)
            times["upload"].append(time.perf_counter() - started)
            growths.append((_status_kib(pid, "VmHWM") - before) / 1024)
            cpus.append(cpu_seconds(pid) - cpu_before)
            if asset["size"] != size:
                raise harness.BenchError(f"stored {asset['size']} bytes of {size}")
            asyncio.run(delete(base, key, asset["id"]))
    best = {way: min(values) for way, values in times.items()}
    return {
        "size_mb": size_mb,
        "direct_s": best["direct"],
        "upload_s": best["upload"],
        "direct_mb_s": size / best["direct"] / 2**20,
        "upload_mb_s": size / best["upload"] / 2**20,
        "hashed_direct_mb_s": size / best["hashed"] / 2**20,
        "local_copy_mb_s": size / best["local"] / 2**20,
        "upload_ratio": best["direct"] / best["upload"],
        "upload_to_hashed_ratio": best["hashed"] / best["upload"],
        "api_rss_growth_mb": max(growths),
        "api_cpu_s_per_gb": min(cpus) / (size / 2**30),
    }


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    args = harness.parse_args(parser, argv, size_mb=8, repeat=1)
    with tempfile.TemporaryDirectory(prefix="bench-assets-") as folder:
        figures: dict[str, Any] = measure(args.size_mb, args.repeat, Path(folder))
    figures["smoke"] = args.smoke
    figures["loadavg"] = harness.loadavg()
    f = figures
    harness.report(
        [
            f"upload of a {f['size_mb']} MB file (best of {args.repeat};"
            f" load average {f['loadavg']:.2f})",
            f"  POST /api/assets {f['upload_mb_s']:.0f} MB/s vs the same bytes over a loopback"
            f" socket into the folder {f['direct_mb_s']:.0f} MB/s: ratio"
            f" {f['upload_ratio']:.2f} (goal >= 0.7)",
            f"  against the same loopback copy hashing with SHA-256 on the way"
            f" ({f['hashed_direct_mb_s']:.0f} MB/s, the floor of any upload hashed while"
            f" streaming): {f['upload_to_hashed_ratio']:.2f}",
            f"  (a local copy into the folder, no socket: {f['local_copy_mb_s']:.0f} MB/s)",
            f"  API process peak RSS +{f['api_rss_growth_mb']:.1f} MB (goal < 64 MB);"
            f" its CPU {f['api_cpu_s_per_gb']:.2f} s per GB uploaded",
        ],
        figures,
    )
    return None


if __name__ == "__main__":
    sys.exit(harness.run_main("assets", main))
