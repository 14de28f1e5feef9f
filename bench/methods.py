"""Benchmark: attrib vs captum vs the hardware bound, side by side in one process.

    python bench/methods.py            # both models, prints a Markdown table
    python bench/methods.py --quick    # fewer repetitions
    python bench/methods.py --bf16     # only fp32 vs bf16 autocast on the CPU

For each model (the embedded EfficientNet-Lite0 on chelsea, timm resnet18 with random weights; 1 image, 224 px):
  bound    = n x the best per-row forward + input-backward time over chunk sizes and memory layouts;
  captum   = at its defaults, and at its best internal_batch_size / nt_samples_batch_size;
  attrib   = attrib.attribute with its automatic chunking and BatchNorm folding (and IG without folding);
for IG-50, SmoothGrad-50 and EG-50 (captum GradientShap(stdevs=0)). Every candidate runs once per round, rounds
interleaved (after a warm-up round), and each keeps its best time, so the machine's drift hits all alike.
IG values are compared with captum's and with a float64 run (float32 rounding sets the floor).
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

GL = "gausslegendre"  # captum's IG rule: the comparison uses the same fixed rule

N = 50
CHUNKS = (1, 4, 8, 16, 32)
TUNE = (4, 8, 16, 25)


def race(candidates: dict, reps: int) -> dict:
    """Best wall time of each candidate over ``reps`` rounds, run interleaved (A B C A B C ...) after one warm-up
    round, so that drift in the machine's speed hits every candidate alike."""
    best = {name: float("inf") for name in candidates}
    for round_ in range(reps + 1):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def bound_candidates(module: torch.nn.Module, x: torch.Tensor, target: int) -> dict:
    """One chunk of forward + input-backward for each chunk size and memory layout (on a private copy)."""
    import copy

    out = {}
    for layout, label in ((torch.contiguous_format, "contiguous"), (torch.channels_last, "channels_last")):
        copy_ = copy.deepcopy(module).requires_grad_(False).to(memory_format=layout)
        for n in CHUNKS:
            rows = x.expand(n, -1, -1, -1).contiguous(memory_format=layout)

            def step(copy_=copy_, rows=rows):
                pts = rows.detach().requires_grad_(True)
                torch.autograd.grad(copy_(pts)[:, target].sum(), pts)

            out[("bound", n, label)] = step
    return out


def captum_candidates(module, x, target, background) -> dict:
    from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Saliency

    ig, nt, gs = IntegratedGradients(module), NoiseTunnel(Saliency(module)), GradientShap(module)
    sigma = 0.15 * float(x.max() - x.min())
    out = {}
    for b in (None, *TUNE):
        out[("captum", "ig", b)] = lambda b=b: ig.attribute(x, target=target, n_steps=N, internal_batch_size=b)
        out[("captum", "smoothgrad", b)] = lambda b=b: nt.attribute(
            x, nt_type="smoothgrad", nt_samples=N, stdevs=sigma, nt_samples_batch_size=b, target=target, abs=False)
    out[("captum", "eg", None)] = lambda: gs.attribute(x, background, n_samples=N, stdevs=0.0, target=target)
    return out


def attrib_candidates(module, x, target, background) -> dict:
    configs = {"ig": {"n_steps": N, "rule": GL}, "smoothgrad": {"n_samples": N},
               "eg": {"n_samples": N, "background": background}}
    out = {("attrib", m, None): lambda m=m: attrib.attribute(module, x, m, target=target, **configs[m])
           for m in configs}
    out[("attrib", "ig", "unfolded")] = lambda: attrib.attribute(module, x, "ig", target=target, n_steps=N, rule=GL,
                                                                 fold_batchnorm=False)
    return out


def peak_growth_mib(n_steps: int) -> float:
    """Peak RSS growth of one IG call with ``n_steps`` on the embedded model, in a fresh process."""
    cmd = [sys.executable, __file__, "--peak-child", str(n_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_child(n_steps: int) -> None:
    module, x, target = load_embedded()
    attrib.attribute(module, x, "ig", target=target, n_steps=2, rule=GL)  # warm up allocator and chunk probe
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
    before = _status_mib("VmRSS")
    attrib.attribute(module, x, "ig", target=target, n_steps=n_steps, rule=GL)
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
    candidates = {**bound_candidates(module, x, target), **captum_candidates(module, x, target, background),
                  **attrib_candidates(module, x, target, background)}
    times = race(candidates, reps)
    per_row, where = min((t / key[1], f"{key[1]} rows, {key[2]}") for key, t in times.items() if key[0] == "bound")
    rows = []
    for method in ("ig", "smoothgrad", "eg"):
        captum = {key[2]: t for key, t in times.items() if key[:2] == ("captum", method)}
        tuned_setting, tuned = min(captum.items(), key=lambda kv: kv[1])
        ours, bound = times[("attrib", method, None)], N * per_row
        unfolded = times.get(("attrib", method, "unfolded"))
        rows.append(dict(model=name, method=f"{method}-{N}", bound=bound, captum_default=captum[None],
                         attrib_unfolded=unfolded,
                         captum_tuned=tuned, captum_setting="default" if tuned_setting is None else
                         f"batch {tuned_setting}", attrib=ours, vs_bound=ours / bound, vs_captum_tuned=ours / tuned))
    ours_ig = attrib.attribute(module, x, "ig", target=target, n_steps=N, rule=GL).values
    cap_ig = candidates[("captum", "ig", None)]().detach()
    f64_ig = attrib.attribute(module.double(), x.double(), "ig", target=target, n_steps=N, rule=GL).values
    module.float()
    errors = {"attrib vs captum": _rel(ours_ig, cap_ig), "attrib vs float64": _rel(ours_ig, f64_ig),
              "captum vs float64": _rel(cap_ig, f64_ig)}
    return rows, errors, where


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def precision_ratio(reps: int) -> None:
    """fp32 vs bf16 autocast, side by side: one gradient pass over 8 rows of the embedded model (the figure
    behind attrib's warning that bf16 is emulated on a CPU without bfloat16 arithmetic)."""
    from attrib.engine import native_bf16

    module, x, target = load_embedded()
    rows = x.expand(8, -1, -1, -1).contiguous()
    best = race({p: lambda p=p: attrib.attribute(module, rows, "gradient", target=target, precision=p)
                 for p in ("fp32", "bf16")}, reps)
    print(f"| gradient, 8 rows, {'native' if native_bf16('cpu') else 'emulated'} bf16 | fp32 {best['fp32']:.2f} s "
          f"| bf16 {best['bf16']:.2f} s | bf16/fp32 {best['bf16'] / best['fp32']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peak-child", type=int)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="only the fp32 vs bf16 race on the CPU")
    args = parser.parse_args()
    if args.peak_child:
        return _peak_child(args.peak_child)
    if args.bf16:
        return precision_ratio(1 if args.quick else 3)
    reps = 1 if args.quick else 3
    print(f"# attrib bench/methods.py — {platform.node()} {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print("| model | method | bound s | captum default s | captum tuned s | attrib s | attrib/bound | "
          "attrib/captum tuned | attrib without BN folding s |")
    print("|---|---|---|---|---|---|---|---|---|")
    report = []
    for name, loader in (("efficientnet_lite0 (embedded)", load_embedded), ("resnet18 (random)", load_resnet18)):
        rows, errors, where = bench_model(name, loader, reps)
        report.extend(rows)
        for r in rows:
            print(f"| {r['model']} | {r['method']} | {r['bound']:.2f} | {r['captum_default']:.2f} | "
                  f"{r['captum_tuned']:.2f} ({r['captum_setting']}) | {r['attrib']:.2f} | {r['vs_bound']:.2f} | "
                  f"{r['vs_captum_tuned']:.2f} | {_fmt(r['attrib_unfolded'])} |", flush=True)
        text = "; ".join(f"{k} {v:.1e}" for k, v in errors.items())
        print(f"|  | IG-50 relative L2 errors: {text}; best per-row pass at {where} | | | | | | | |")
    p50, p400 = peak_growth_mib(50), peak_growth_mib(400)
    print(f"\nIG peak RSS growth (embedded model): n_steps=50 {p50:.0f} MiB, n_steps=400 {p400:.0f} MiB, "
          f"ratio {p400 / p50:.2f}")
    if args.json:
        print(json.dumps({"rows": report, "peak_mib": {"50": p50, "400": p400}}))


if __name__ == "__main__":
    main()
