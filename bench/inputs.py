"""Reading inputs as people's tools write them: images in an archive against the same images in a folder, and a
JPEG over Pillow's pixel limit decoded scaled down against a whole decode.

    python bench/inputs.py               # about a minute on a 2-core CPU, ~1.5 GB of temporary files
    python bench/inputs.py --files 5000  # fewer files

1. ``--files`` (50,000: ImageNet's validation set) small JPEGs named as ImageNet's, written once to a folder, an
   uncompressed .tar and a .zip. Printed: seconds to list them (``expand_inputs``) and to load the first 2,000,
   for each, and the ratio to the folder; then seconds to find 2,000 of them named ``ARCHIVE/PATH``.
2. chelsea enlarged to 11648 x 8736 (102 megapixels, a medium-format camera's) and saved as a JPEG. Decoded
   as attrib decodes it (at 1/2 size: over Pillow's limit of 89.5 megapixels) and whole (the limit lifted),
   each in a fresh process: seconds and the decode's peak memory (Linux's VmHWM, reset before it); how far the embedded model's input
   and its top-class probability move.
3. 2,000 photos of ImageNet's size (chelsea at 500 x 375, a JPEG of about 80 KB), in a folder, dated an hour ago.
   Printed: seconds to decode and preprocess them as explain does, and to take their fingerprints (read and
   sha256: explain takes one per input as it decodes it); then a resumed run's check of them as done
   (``unchanged``): with the same times (a stat each), and after a ``touch`` (each read and hashed again).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from attrib.data.images import expand_inputs, load_image  # noqa: E402
from attrib.models import load_model  # noqa: E402

LOADED = 2000


def _write_sets(root: Path, n: int) -> list[Path]:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(Image.fromarray(data.chelsea()).resize((64, 48)))).save(buffer, "JPEG")
    picture = buffer.getvalue()
    folder = root / "val"
    folder.mkdir()
    with tarfile.open(root / "val.tar", "w") as tar, zipfile.ZipFile(root / "val.zip", "w") as archive:
        for i in range(n):
            name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            (folder / name).write_bytes(picture)
            info = tarfile.TarInfo(name)
            info.size = len(picture)
            tar.addfile(info, io.BytesIO(picture))
            archive.writestr(name, picture)
    return [folder, root / "val.tar", root / "val.zip"]


def archives(root: Path, n: int) -> None:
    print(f"{n:,} files: seconds to list them, and to load the first {LOADED:,}")
    print(f"{'input':>8} {'list':>7} {'ratio':>6} {'load':>7} {'ratio':>6}")
    first = None
    for path in _write_sets(root, n):
        start = time.perf_counter()
        sources = expand_inputs([str(path)])
        listed = time.perf_counter() - start
        start = time.perf_counter()
        for source in sources[:LOADED]:
            source.load()
        loaded = time.perf_counter() - start
        assert len(sources) == n
        first = first or (listed, loaded)
        print(f"{path.suffix or 'folder':>8} {listed:>7.2f} {listed / first[0]:>6.2f} {loaded:>7.2f} "
              f"{loaded / first[1]:>6.2f}")
    named(root, n)


def named(root: Path, n: int) -> None:
    """Inputs given as a run names an archive's images (``val.tar/ILSVRC2012_val_00000001.JPEG``): each found in
    the archive's one listing, cold (the listing read first) and warm."""
    from attrib.data.archives import _listed, _open_zip

    names = [f"ILSVRC2012_val_{i * (n // LOADED) + 1:08d}.JPEG" for i in range(LOADED)]
    print(f"{LOADED:,} inputs named ARCHIVE/PATH, seconds to find them (cold: the archive listed first; warm)")
    for archive in (root / "val.tar", root / "val.zip"):
        _listed.cache_clear()
        _open_zip.cache_clear()
        times = []
        for _ in ("cold", "warm"):
            start = time.perf_counter()
            sources = expand_inputs([f"{archive}/{name}" for name in names])
            times.append(time.perf_counter() - start)
            assert len(sources) == LOADED and all(s.error is None for s in sources)
        print(f"{archive.suffix:>8} cold {times[0]:.2f}, warm {times[1]:.2f}")


CHILD = """
import sys, time
from PIL import Image
from attrib.data.images import load_image
def kib(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1])
if sys.argv[2] == "whole":
    Image.MAX_IMAGE_PIXELS = None
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) restarts from here: Linux
before, start = kib("VmRSS:"), time.perf_counter()
size = load_image(sys.argv[1]).size
print(size[0], size[1], time.perf_counter() - start, kib("VmHWM:") - before)
"""


def _decoded_in_child(path: Path, how: str) -> tuple[str, float, float]:
    """(size, seconds, MiB the decode added to the peak resident memory of a fresh process: Linux only)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    return f"{out[0]} x {out[1]}", float(out[2]), int(out[3]) / 1024


def big_jpeg(root: Path) -> None:
    path = root / "big.jpg"
    Image.fromarray(data.chelsea()).resize((11648, 8736), Image.Resampling.BILINEAR).save(path, quality=90)
    size, seconds, peak = _decoded_in_child(path, "scaled")
    whole_size, whole_seconds, whole_peak = _decoded_in_child(path, "whole")
    print(f"\n11648 x 8736 JPEG: decoded at {size} in {seconds:.2f} s, the decode's peak memory {peak:.0f} MiB; "
          f"whole ({whole_size}) {whole_seconds:.2f} s, {whole_peak:.0f} MiB (ratio {whole_peak / peak:.1f})")
    model = load_model()
    x = model.preprocess(load_image(path))
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        y = model.preprocess(load_image(path))
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with torch.no_grad():
        p, q = (model.module(t[None]).softmax(-1)[0] for t in (x, y))
    top = int(q.argmax())
    std = float(torch.tensor(model.preprocess.std).min())
    print(f"model input: mean |difference| {float((x - y).abs().mean() / y.abs().mean()):.2%} of its mean "
          f"magnitude, largest {float((x - y).abs().max()) * std * 255:.1f} of 255 levels; class {top}: "
          f"probability {float(p[top]):.4f} (scaled) vs {float(q[top]):.4f} (whole)")


PHOTOS = 2000


def fingerprints(root: Path) -> None:
    from attrib.data.fingerprints import fingerprint, unchanged

    folder = root / "photos"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.fromarray(data.chelsea()).resize((500, 375)).save(buffer, "JPEG", quality=95)
    hour_ago = time.time_ns() - 3600 * 10**9
    for i in range(PHOTOS):
        (folder / f"{i:05d}.jpg").write_bytes(buffer.getvalue())
        os.utime(folder / f"{i:05d}.jpg", ns=(hour_ago, hour_ago))
    sources = expand_inputs([str(folder)])
    preprocess = load_model().preprocess
    seconds = {"decode": _timed(lambda: [preprocess.tensor(preprocess.view(s.load())) for s in sources])}
    stamps = [fingerprint(s) for s in sources]  # (warm: the files were just read)
    seconds["fingerprint"] = _timed(lambda: [fingerprint(s) for s in sources])
    seconds["check"] = _timed(lambda: all(unchanged(s, f) for s, f in zip(sources, stamps)))
    for path in folder.iterdir():
        os.utime(path)
    seconds["touched"] = _timed(lambda: all(unchanged(s, f) for s, f in zip(sources, stamps)))
    print(f"\n{PHOTOS:,} JPEGs of {len(buffer.getvalue()) / 1024:.0f} KiB: seconds to decode and preprocess "
          f"{seconds['decode']:.2f}, to fingerprint {seconds['fingerprint']:.2f} "
          f"({seconds['fingerprint'] / seconds['decode']:.1%} of decoding); resumed, the check "
          f"{seconds['check']:.3f} (same times), {seconds['touched']:.2f} (touched: read and hashed)")


def _timed(work) -> float:
    start = time.perf_counter()
    assert work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archives(Path(tmp), args.files)
        big_jpeg(Path(tmp))
        fingerprints(Path(tmp))


if __name__ == "__main__":
    main()
