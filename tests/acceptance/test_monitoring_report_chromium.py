"""The monitoring-check page in a real browser: headless Chromium parses it (DOM dump) and
paints it (screenshot), and the charts' colours show up in the pixels.

Needs the Debian `chromium` package; CI (.ci/run) installs it when missing. No skip: a
missing browser fails with the command that fixes it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_monitoring_report import full_check
from workers.monitoring.report_html import render_check_report

TIMEOUT = 120
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--hide-scrollbars",
]
ACCENT = (0x3B, 0x6F, 0xD8)  # current-distribution bars (report.css --acc)
REFERENCE = (0x9A, 0xA5, 0xB1)  # reference-distribution bars
HEADER = (0x1F, 0x29, 0x33)  # the dark page header


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Chromium is not installed: run `apt-get install -y chromium` "
            "(.ci/run installs it on CI)",
            pytrace=False,
        )
    return path


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stderr[-3000:]}"
    return result


def _pixels(png: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the RGB colours of an 8-bit, non-interlaced RGB(A) PNG (what
    Chromium writes). None/Sub/Up rows are unfiltered with numpy, Average/Paeth in Python."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
    bpp = 3 if colour == 2 else 4
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width * bpp + 1)
    image = np.zeros((height, width * bpp), np.uint8)
    previous = np.zeros(width * bpp, np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            out = line.copy()
        elif kind == 1:
            out = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).ravel()
        elif kind == 2:
            out = line + previous
        else:
            out = _average_or_paeth(kind, line.tolist(), previous.tolist(), bpp)
        image[y] = out
        previous = out
    rgb = image.reshape(height, width, bpp)[:, :, :3].reshape(-1, 3).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    present = np.flatnonzero(np.bincount(packed, minlength=1 << 24))
    return width, height, {(int(c) >> 16, (int(c) >> 8) & 0xFF, int(c) & 0xFF) for c in present}


def _average_or_paeth(kind: int, line: list[int], up: list[int], bpp: int) -> np.ndarray:
    out = [0] * len(line)
    for i, value in enumerate(line):
        left = out[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 3:
            pred = (left + up[i]) // 2
        else:
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
        out[i] = (value + pred) & 0xFF
    return np.array(out, np.uint8)


def test_chromium_parses_and_paints_the_page(tmp_path: Path) -> None:
    check = full_check()
    page = tmp_path / "check.html"
    page.write_text(render_check_report(check), encoding="utf-8")
    url = page.resolve().as_uri()

    dom = _run(["--dump-dom", url], tmp_path / "profile-dom").stdout
    assert (
        "<title>Monitoring check — customer_churn 1.0.0 — 2026-11-27T06:00:00+00:00</title>" in dom
    )
    # 5 feature histograms + the score histogram + performance + 3 history charts + components
    assert dom.count("<svg") == 11
    assert dom.count('<rect class="cur"') == 4 + 4 + 5 + 3 + 4 + 5
    assert 'id="feat-0"' in dom and "<h3>pdays" in dom

    shot = tmp_path / "check.png"
    _run(
        [f"--screenshot={shot}", "--window-size=1280,2000", url],
        tmp_path / "profile-shot",
    )
    assert shot.exists(), "Chromium wrote no screenshot"
    data = shot.read_bytes()
    assert len(data) > 20_000, f"screenshot is only {len(data)} bytes"
    width, height, colours = _pixels(data)
    assert (width, height) == (1280, 2000)
    assert len(colours) > 50, "the screenshot is (nearly) one colour"
    for name, rgb in (("header", HEADER), ("current bars", ACCENT), ("reference bars", REFERENCE)):
        assert rgb in colours, f"no {name} colour {rgb} painted"
