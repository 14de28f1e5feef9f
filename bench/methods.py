"""Benchmark: attrib vs captum vs the hardware bound, side by side in one process.

    python bench/methods.py            # both models, prints a Markdown table
    python bench/methods.py --quick    # fewer repetitions

For each model (the embedded EfficientNet-Lite0 on chelsea, timm resnet18 with random weights; 1 image, 224 px):
  bound    = n x the best per-row forward + input-backward time over chunk sizes and memory layouts;
  captum   = at its defaults, and at its best internal_batch_size / nt_samples_batch_size;
  attrib   = attrib.attribute with its automatic chunking;
for IG-50, SmoothGrad-50 and EG-50 (captum GradientShap(stdevs=0)). Times are the best of R repetitions.
Peak memory of IG at n_steps=400 vs 50 is measured in fresh subprocesses (peak RSS growth during the call).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import torch

import attrib

N = 50
CHUNKS = (1, 4, 8, 16, 32)
TUNE = (4, 8, 16, 25)


def best_time(fn, reps: int) -> float:
    """Best wall time of ``reps`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_row_bound(module: torch.nn.Module, x: torch.Tensor, target: int, reps: int) -> tuple[float, str]:
    """Best seconds per row of forward + input-backward over chunk sizes and layouts."""
    module.requires_grad_(False)
    best = (float("inf"), "")
    for layout in (torch.contiguous_format, torch.channels_last):
        module.to(memory_format=layout)
        for n in CHUNKS:
            rows = x.expand(n, -1, -1, -1).contiguous(memory_format=layout)

            def step():
                pts = rows.detach().requires_grad_(True)
                torch.autograd.grad(module(pts)[:, target].sum(), pts)

            t = best_time(step, reps) / n
            name = f"{n} rows, {'channels_last' if layout is torch.channels_last else 'contiguous'}"
            best = min(best, (t, name))
    module.to(memory_format=torch.contiguous_format).requires_grad_(True)
    return best


def captum_runs(module, x, target, background, reps):
    """{method: (default seconds, best-tuned seconds, tuned setting)} and the IG values at default settings."""
    from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Saliency

    ig, nt, gs = IntegratedGradients(module), NoiseTunnel(Saliency(module)), GradientShap(module)
    sigma = 0.15 * float(x.max() - x.min())
    out = {}
    out["ig"] = _tuned(lambda b: ig.attribute(x, target=target, n_steps=N, internal_batch_size=b), reps)
    out["smoothgrad"] = _tuned(lambda b: nt.attribute(x, nt_type="smoothgrad", nt_samples=N, stdevs=sigma,
                                                      nt_samples_batch_size=b, target=target, abs=False), reps)
    eg_time = best_time(lambda: gs.attribute(x, background, n_samples=N, stdevs=0.0, target=target), reps)
    out["eg"] = (eg_time, eg_time, "no batch option")
    values = ig.attribute(x, target=target, n_steps=N).detach()
    return out, values


def _tuned(run, reps):
    default = best_time(lambda: run(None), reps)
    tuned = min((best_time(lambda: run(b), reps), b) for b in TUNE)
    return default, min(default, tuned[0]), f"batch {tuned[1]}" if tuned[0] < default else "default"


def attrib_runs(module, x, target, background, reps):
    configs = {"ig": {"n_steps": N}, "smoothgrad": {"n_samples": N},
               "eg": {"n_samples": N, "background": background}}
    times = {m: best_time(lambda m=m: attrib.attribute(module, x, m, target=target, **configs[m]), reps)
             for m in configs}
    values = attrib.attribute(module, x, "ig", target=target, n_steps=N).values
    return times, values


def peak_growth_mib(n_steps: int) -> float:
    """Peak RSS growth of one IG call with ``n_steps`` on the embedded model, in a fresh process."""
    cmd = [sys.executable, __file__, "--peak-child", str(n_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_child(n_steps: int) -> None:
    module, x, target = load_embedded()
    attrib.attribute(module, x, "ig", target=target, n_steps=2)  # warm up allocator and chunk probe
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
    before = _status_mib("VmRSS")
    attrib.attribute(module, x, "ig", target=target, n_steps=n_steps)
    print(_status_mib("VmHWM") - before)


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(key + ":"))
    return int(line.split()[1]) / 1024


def load_embedded():
    from skimage import data
    from PIL import Image

    from attrib.models.builtin import DEFAULT_PREPROCESS, load_default_module

    x = DEFAULT_PREPROCESS(Image.fromarray(data.chelsea()))[None]
    module = load_default_module()
    return module, x, int(module(x).argmax())


def load_resnet18():
    import timm

    module, x, _ = load_embedded()
    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False).eval(), x, 1


def bench_model(name, loader, reps):
    module, x, target = loader()
    background = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(0))
    per_row, where = per_row_bound(module, x, target, reps)
    cap, cap_ig = captum_runs(module, x, target, background, reps)
    ours, our_ig = attrib_runs(module, x, target, background, reps)
    rows = []
    for method in ("ig", "smoothgrad", "eg"):
        bound = N * per_row
        default, tuned, setting = cap[method]
        rows.append(dict(model=name, method=f"{method}-{N}", bound=bound, captum_default=default,
                         captum_tuned=tuned, captum_setting=setting, attrib=ours[method],
                         vs_bound=ours[method] / bound, vs_captum_tuned=ours[method] / tuned))
    err = float((our_ig - cap_ig).norm() / cap_ig.norm())
    return rows, err, where


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peak-child", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.peak_child:
        return _peak_child(args.peak_child)
    reps = 2 if args.quick else 3
    print(f"# attrib bench/methods.py — {platform.node()} {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print("| model | method | bound s | captum default s | captum tuned s | attrib s | attrib/bound | "
          "attrib/captum tuned |")
    print("|---|---|---|---|---|---|---|---|")
    report = []
    for name, loader in (("efficientnet_lite0 (embedded)", load_embedded), ("resnet18 (random)", load_resnet18)):
        rows, err, where = bench_model(name, loader, reps)
        report.extend(rows)
        for r in rows:
            print(f"| {r['model']} | {r['method']} | {r['bound']:.2f} | {r['captum_default']:.2f} | "
                  f"{r['captum_tuned']:.2f} ({r['captum_setting']}) | {r['attrib']:.2f} | {r['vs_bound']:.2f} | "
                  f"{r['vs_captum_tuned']:.2f} |", flush=True)
        print(f"|  | IG-50 vs captum: relative L2 error {err:.1e}; best per-row pass at {where} | | | | | | |")
    p50, p400 = peak_growth_mib(50), peak_growth_mib(400)
    print(f"\nIG peak RSS growth (embedded model): n_steps=50 {p50:.0f} MiB, n_steps=400 {p400:.0f} MiB, "
          f"ratio {p400 / p50:.2f}")
    if args.json:
        print(json.dumps({"rows": report, "peak_mib": {"50": p50, "400": p400}}))


if __name__ == "__main__":
    main()
