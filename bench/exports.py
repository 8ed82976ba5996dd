"""Exports and serving outputs: against the libraries and the backends themselves.

1. A render of `--size-mb` MB exported to S3 (moto's server, in a process of its own)
   and to SFTP (an asyncssh server, likewise), against boto3's `upload_file` and
   asyncssh's `put` of the same file, in the same run: time ratios (goal ≤ 1.2), and
   how much this process's peak RSS grew during the export (goal < 64 MB).
2. `GET /outputs/…` of the same file from `phantomflow serve` over loopback, against
   reading it straight from its backend: throughput ratio (goal ≥ 0.8). For the folder
   (sendfile) and for S3, both ways the API can serve S3: a 302 to a presigned URL
   (the client then reads S3 itself) and a proxy streamed through the API. These are
   the figures behind the default of PHANTOMFLOW_S3_SERVE (docs/operations.md).

    python bench/exports.py [--size-mb 200] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import boto3
import harness
from boto3.s3.transfer import TransferConfig

from phantomflow.adapters.exports import ExportOptions, ExportRequest, deliver
from phantomflow.adapters.storage.s3 import TRANSFER

ACCESS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
REGION = "us-east-1"
SFTP_USER, SFTP_PASSWORD = "bench", "bench-password"

SFTP_SERVER = textwrap.dedent(
    """
    import asyncio, sys, asyncssh
    root, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    class Server(asyncssh.SSHServer):
        def begin_auth(self, username): return True
        def password_auth_supported(self): return True
        def validate_password(self, username, password): return password == "bench-password"
    async def main():
        await asyncssh.listen("127.0.0.1", port, server_host_keys=[key],
            server_factory=Server, sftp_factory=lambda chan: asyncssh.SFTPServer(
                chan, chroot=root.encode()))
        print("ready", flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
    """
)


def rss_now() -> int:
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM (the peak) to the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise harness.BenchError(f"no {field} in /proc/self/status")


def in_turns(
    repeat: int, direct: Callable[[], Any], export: Callable[[], Any]
) -> tuple[float, float, float]:
    """The library's own transfer and the export, taken in turns `repeat` times (so a
    shared machine's load falls on both alike): the best time of each, and the most this
    process's peak RSS grew during an export, in MB."""
    directs, exports, growth = [], [], 0
    for _ in range(repeat):
        directs.append(best_of(1, direct))
        reset_peak_rss()
        before = rss_now()
        exports.append(best_of(1, export))
        growth = max(growth, peak_rss() - before)
    return min(directs), min(exports), growth / 2**20


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


@contextmanager
def process(command: list[str], ready: str | None, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        if ready is not None:
            assert child.stdout is not None
            for line in child.stdout:
                if ready in line:
                    break
            else:
                raise harness.BenchError(f"{command[0]} did not start")
        yield child
    finally:
        child.terminate()
        child.wait(10)


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION, **ACCESS)


def measure_s3_export(video: Path, endpoint: str, repeat: int) -> dict[str, float]:
    client = s3_client(endpoint)
    client.create_bucket(Bucket="exports")
    config: TransferConfig = TRANSFER
    request = ExportRequest(
        job_id=uuid.uuid4(), file=video, filename="export.mp4", target={"type": "s3"},
        settings={"bucket": "exports", "endpoint_url": endpoint, "region": REGION,
                  "access_key_id": ACCESS["aws_access_key_id"]},
        secrets={"secret_access_key": ACCESS["aws_secret_access_key"]},
        options=ExportOptions(allow_private=True),
    )  # fmt: skip
    direct, exported, growth = in_turns(
        repeat,
        lambda: client.upload_file(str(video), "exports", "direct.mp4", Config=config),
        lambda: _delivered("s3", request),
    )
    return {"s3_direct_s": direct, "s3_export_s": exported, "s3_rss_growth_mb": growth}


def measure_sftp_export(video: Path, workdir: Path, repeat: int) -> dict[str, float]:
    root = workdir / "sftp-root"
    root.mkdir()
    key_path = workdir / "host_key"
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(key_path))
    port = harness.free_port()
    server = [sys.executable, "-c", SFTP_SERVER, str(root), str(port), str(key_path)]
    with process(server, "ready"):

        async def put() -> None:
            async with asyncssh.connect(
                "127.0.0.1", port, username=SFTP_USER, password=SFTP_PASSWORD,
                known_hosts=([host_key.convert_to_public()], [], []), agent_path=None,
            ) as connection, connection.start_sftp_client() as sftp:  # fmt: skip
                await sftp.put(str(video), "/direct.mp4", block_size=256 * 1024)

        request = ExportRequest(
            job_id=uuid.uuid4(), file=video, filename="export.mp4", target={"type": "sftp"},
            settings={"host": "127.0.0.1", "port": port, "username": SFTP_USER,
                      "host_key": host_key.export_public_key().decode()},
            secrets={"password": SFTP_PASSWORD}, options=ExportOptions(allow_private=True),
        )  # fmt: skip
        direct, exported, growth = in_turns(
            repeat, lambda: asyncio.run(put()), lambda: _delivered("sftp", request)
        )
    return {"sftp_direct_s": direct, "sftp_export_s": exported, "sftp_rss_growth_mb": growth}


def _delivered(kind: str, request: ExportRequest) -> None:
    outcome = deliver(kind, request)
    if not outcome.delivered:
        raise harness.BenchError(f"{kind} export failed: {outcome.code}: {outcome.message}")


async def _download(url: str, **headers: str) -> int:
    received = 0
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        if answer.status != 200:
            raise harness.BenchError(f"GET {url} answered {answer.status}")
        async for chunk in answer.content.iter_chunked(1024 * 1024):
            received += len(chunk)
    return received


def measure_serving(video: Path, workdir: Path, endpoint: str, repeat: int) -> dict[str, float]:
    size = video.stat().st_size
    figures: dict[str, float] = {}
    name = f"{uuid.uuid4()}.mp4"
    # The folder: sendfile against reading the file (from the page cache, as served).
    outputs = workdir / "serve-file" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / name).write_bytes(video.read_bytes())

    def read_file() -> None:
        with open(outputs / name, "rb") as source:
            while source.read(1024 * 1024):
                pass

    direct = best_of(repeat, read_file)
    with serve(workdir / "serve-file", {}) as base:
        url = f"{base}/outputs/{name}"
        # Taken in turns, so a shared machine's load falls on both alike. The served
        # file is read by the same bare-socket reader as the baseline's, so what is
        # compared is the server; aiohttp's client is timed too, for scale (its Python
        # body parsing is most of its time).
        times: dict[str, list[float]] = {"loopback": [], "served": [], "client": []}
        for _ in range(repeat):
            times["loopback"].append(best_of(1, lambda: loopback_copy(outputs / name)))
            times["served"].append(best_of(1, lambda: raw_get(url, size)))
            times["client"].append(best_of(1, lambda: asyncio.run(_download(url))))
        loopback, served, client = (min(times[key]) for key in ("loopback", "served", "client"))
    figures.update(
        file_read_mb_s=size / direct / 2**20,
        file_loopback_mb_s=size / loopback / 2**20,
        file_served_mb_s=size / served / 2**20,
        file_served_aiohttp_mb_s=size / client / 2**20,
    )

    # S3: the object read with boto3, against GET /outputs redirected and proxied.
    client = s3_client(endpoint)
    client.create_bucket(Bucket="outputs")
    client.upload_file(str(video), "outputs", name, Config=TRANSFER)

    def read_object() -> None:
        body = client.get_object(Bucket="outputs", Key=name)["Body"]
        for _ in body.iter_chunks(1024 * 1024):
            pass

    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": ACCESS["aws_secret_access_key"], "AWS_REGION": REGION,
           "PHANTOMFLOW_STORAGE_URL": "s3://outputs"}  # fmt: skip
    with (
        serve(workdir / "serve-redirect", {**env, "PHANTOMFLOW_S3_SERVE": "redirect"}) as redirect,
        serve(workdir / "serve-proxy", {**env, "PHANTOMFLOW_S3_SERVE": "proxy"}) as proxy,
    ):
        # In turns, like the folder's.
        runs = {
            "direct": read_object,
            "redirect": lambda: asyncio.run(_download(f"{redirect}/outputs/{name}")),
            "proxy": lambda: asyncio.run(_download(f"{proxy}/outputs/{name}")),
        }
        taken: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(repeat):
            for key, run in runs.items():
                taken[key].append(best_of(1, run))
    for key in runs:
        figures[f"s3_{key}_mb_s"] = size / min(taken[key]) / 2**20
    return figures


def loopback_copy(path: Path) -> None:
    """The file sent over a loopback TCP socket with sendfile and read by a client: the
    floor of any HTTP server of a local file (what GET /outputs is held to)."""
    import socket
    import threading

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def send() -> None:
            connection, _ = listener.accept()
            with connection, open(path, "rb") as source:
                connection.sendfile(source)

        sender = threading.Thread(target=send)
        sender.start()
        buffer = bytearray(1024 * 1024)
        with socket.create_connection(("127.0.0.1", port)) as client:
            while client.recv_into(buffer):
                pass
        sender.join()


def raw_get(url: str, size: int) -> None:
    """GET `url` with HTTP/1.1 on a bare socket and read its `size`-byte body with
    `recv_into`, as `loopback_copy` reads its socket: the client costs the same in both,
    so their ratio is the server's."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    with socket.create_connection((parts.hostname, parts.port)) as client:
        request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        client.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            count = client.recv_into(buffer)
            if not count:
                raise harness.BenchError(f"GET {url}: connection closed in the headers")
            head += bytes(view[:count])
        head, _, body = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise harness.BenchError(f"GET {url} answered {status.decode()}")
        received = len(body)
        while count := client.recv_into(buffer):
            received += count
    if received != size:
        raise harness.BenchError(f"GET {url}: {received} bytes of {size}")


@contextmanager
def serve(data_dir: Path, extra: dict[str, str]) -> Iterator[str]:
    port = harness.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PHANTOMFLOW_DATA_DIR=str(data_dir), PHANTOMFLOW_LOG_LEVEL="WARNING", **extra)
    command = [sys.executable, "-m", "phantomflow.api.cli", "serve", "--port", str(port)]
    with process(command, None, env):
        harness.wait_for_port(port, timeout=20.0)
        yield f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = harness.parse_args(parser, argv, size_mb=4, repeat=1)
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as folder:
        workdir = Path(folder)
        video = workdir / "render.mp4"
        with open(video, "wb") as out:
            for _ in range(args.size_mb):
                out.write(os.urandom(1024 * 1024))
        port = harness.free_port()
        moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        with process(moto, None):
            harness.wait_for_port(port, timeout=20.0)
            endpoint = f"http://127.0.0.1:{port}"
            figures: dict[str, Any] = {"size_mb": args.size_mb, "smoke": args.smoke}
            figures.update(measure_s3_export(video, endpoint, args.repeat))
            figures.update(measure_sftp_export(video, workdir, args.repeat))
            figures.update(measure_serving(video, workdir, endpoint, args.repeat))
    figures["s3_export_ratio"] = figures["s3_export_s"] / figures["s3_direct_s"]
    figures["sftp_export_ratio"] = figures["sftp_export_s"] / figures["sftp_direct_s"]
    figures["file_serve_ratio"] = figures["file_served_mb_s"] / figures["file_loopback_mb_s"]
    figures["s3_redirect_ratio"] = figures["s3_redirect_mb_s"] / figures["s3_direct_mb_s"]
    figures["s3_proxy_ratio"] = figures["s3_proxy_mb_s"] / figures["s3_direct_mb_s"]
    figures["loadavg"] = harness.loadavg()
    f = figures
    size, best, load = args.size_mb, args.repeat, f["loadavg"]
    harness.report(
        [
            f"exports of a {size} MB render (best of {best}; load average {load:.2f})",
            f"  S3   export {f['s3_export_s']:.2f} s vs upload_file {f['s3_direct_s']:.2f} s:"
            f" ratio {f['s3_export_ratio']:.2f} (goal <= 1.2);"
            f" peak RSS +{f['s3_rss_growth_mb']:.1f} MB",
            f"  SFTP export {f['sftp_export_s']:.2f} s vs put {f['sftp_direct_s']:.2f} s:"
            f" ratio {f['sftp_export_ratio']:.2f} (goal <= 1.2);"
            f" peak RSS +{f['sftp_rss_growth_mb']:.1f} MB",
            "GET /outputs against reading the backend directly (goal >= 0.8)",
            f"  folder       {f['file_served_mb_s']:.0f} MB/s vs a loopback sendfile"
            f" {f['file_loopback_mb_s']:.0f} MB/s: {f['file_serve_ratio']:.2f}"
            f" (a plain read: {f['file_read_mb_s']:.0f} MB/s; aiohttp's client:"
            f" {f['file_served_aiohttp_mb_s']:.0f} MB/s)",
            f"  S3 redirect  {f['s3_redirect_mb_s']:.0f} MB/s vs {f['s3_direct_mb_s']:.0f} MB/s:"
            f" {f['s3_redirect_ratio']:.2f}",
            f"  S3 proxy     {f['s3_proxy_mb_s']:.0f} MB/s vs {f['s3_direct_mb_s']:.0f} MB/s:"
            f" {f['s3_proxy_ratio']:.2f}",
        ],
        figures,
    )
    return None


if __name__ == "__main__":
    sys.exit(harness.run_main("exports", main))
