"""Benchmark on a GPU: attrib vs captum vs the forward+input-backward bound, side by side in one process.

    python bench/gpu.py                      # the card: resnet50, efficientnet_lite0, vit_base_patch16_224
    python bench/gpu.py --device cpu --models test_resnet --batch 2 --steps 4 --reps 1   # a dry run (4 min)

For each timm model (pretrained=False, a batch of 32 images at 224 px) and precision (fp32, true float32 in all
three: TF32 off; tf32; bf16 autocast):
  bound    = rows x the best per-row time of one forward + input-backward over chunk sizes and both layouts;
  captum   = IG (gausslegendre, as attrib's fixed rule below) and NoiseTunnel(Saliency) SmoothGrad, at their
             defaults and at their best internal_batch_size / nt_samples_batch_size;
  attrib   = attrib.attribute at its automatic chunk size, and at fixed chunk sizes (auto should be within
             10% of the best fixed one); and at the automatic size in the layout attrib's rule does not choose
             (attrib.engine._channels_last: NCHW, captum's, or channels_last), the "layout" column's other one.
Throughput is images/s, best of --reps runs after a warm-up. Each attrib and captum candidate reports its peak
memory and the allocator's retries during its runs (num_alloc_retries must stay 0). IG values are checked
against captum's (relative L2), fp32 and bf16.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from collections.abc import Callable

import torch

import attrib
import attrib.engine as engine_module

GL = "gausslegendre"
MODELS = ("resnet50", "efficientnet_lite0", "vit_base_patch16_224")
BOUND_CHUNKS = (32, 64, 128, 256)
ATTRIB_CHUNKS = (64, 128, 256, 512)
CAPTUM_BATCHES = (64, 256)
NT_BATCHES = (8, 16)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str, reps: int) -> dict:
    """Best seconds over ``reps`` runs after a warm-up, peak memory (GiB) and allocator retries."""
    fn()
    sync(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        retries = torch.cuda.memory_stats().get("num_alloc_retries", 0)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    out = {"seconds": best, "peak_gib": None, "retries": None}
    if cuda:
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        out["retries"] = torch.cuda.memory_stats().get("num_alloc_retries", 0) - retries
    return out


def autocast(device: str, precision: str):
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")


def bound(module, x, target, device, precision, reps, rows_needed: int) -> tuple[float, int]:
    """Seconds for ``rows_needed`` rows at the best per-row chunk size and layout (forward + input-backward)."""
    best = (float("inf"), 0)
    for n, layout in itertools.product(BOUND_CHUNKS, (torch.channels_last, torch.contiguous_format)):
        rows = x[:1].expand(n, -1, -1, -1).contiguous(memory_format=layout)

        def step(rows=rows):
            points = rows.detach().requires_grad_(True)
            with autocast(device, precision):
                score = module(points)[:, target].float().sum()
            torch.autograd.grad(score, points)

        try:
            seconds = measure(step, device, reps)["seconds"]
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        best = min(best, (seconds / n * rows_needed, n))
    return best


def captum_runs(module, x, targets, device, precision, steps) -> dict:
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    ig, nt = IntegratedGradients(module), NoiseTunnel(Saliency(module))
    flat = x.flatten(1)
    sigma = float(0.15 * (flat.max(1).values - flat.min(1).values).mean())
    out = {}
    for b in (None, *CAPTUM_BATCHES):
        def run_ig(b=b):
            with autocast(device, precision):
                return ig.attribute(x, target=targets, n_steps=steps, method="gausslegendre", internal_batch_size=b)
        out[("captum", "ig", b)] = run_ig
    for b in (None, *NT_BATCHES):
        def run_sg(b=b):
            with autocast(device, precision):
                return nt.attribute(x, nt_type="smoothgrad", nt_samples=steps, stdevs=sigma, target=targets,
                                    nt_samples_batch_size=b, abs=False)
        out[("captum", "smoothgrad", b)] = run_sg
    return out


def auto_layout(module, device: str, precision: str) -> str:
    return "channels_last" if engine_module._channels_last(module, torch.device(device), precision) else "NCHW"


def other_layout(fn: Callable[[], object], layout: str) -> Callable[[], object]:
    """``fn`` in the layout the engine's rule does not choose (``layout`` is the one it chooses)."""
    def run():
        default, engine_module.CHANNELS_LAST = engine_module.CHANNELS_LAST, layout == "NCHW"
        try:
            return fn()
        finally:
            engine_module.CHANNELS_LAST = default
    return run


def attrib_runs(module, x, targets, device, precision, steps) -> dict:
    out, layout = {}, auto_layout(module, device, precision)
    for method, config in (("ig", {"n_steps": steps, "rule": GL}), ("smoothgrad", {"n_samples": steps})):
        out[("attrib-other", method, None)] = other_layout(lambda m=method, c=config: attrib.attribute(
            module, x, m, target=targets, device=device, precision=precision, **c), layout)
    for chunk in (None, *ATTRIB_CHUNKS):
        out[("attrib", "ig", chunk)] = lambda c=chunk: attrib.attribute(
            module, x, "ig", target=targets, n_steps=steps, rule=GL, device=device, precision=precision,
            chunk_size=c)
        out[("attrib", "smoothgrad", chunk)] = lambda c=chunk: attrib.attribute(
            module, x, "smoothgrad", target=targets, n_samples=steps, device=device, precision=precision,
            chunk_size=c)
    return out


def bench(name: str, args) -> list[dict]:
    import timm

    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False).eval().to(args.device)
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(args.device)
    with torch.no_grad():
        targets = module(x).argmax(1).tolist()
    overhead = first_call_overhead(module, x, targets, args.device)
    print(f"<!-- {name}: first attrib call costs {overhead:.2f} s more than the next (folding, probing) -->",
          flush=True)
    rows = []
    for precision in args.precisions:
        # captum and the bound under attrib's TF32 rule: off in fp32 (PyTorch allows it in cuDNN by default), on in tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        seconds, chunk = bound(module, x, targets[0], args.device, precision, args.reps, args.batch * args.steps)
        candidates = {**captum_runs(module, x, targets, args.device, precision, args.steps),
                      **attrib_runs(module, x, targets, args.device, precision, args.steps)}
        results = {}
        for key, fn in candidates.items():
            try:
                results[key] = measure(fn, args.device, args.reps)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                results[key] = None
        for method in ("ig", "smoothgrad"):
            rows.append(_row(name, precision, method, results, seconds, chunk, args.batch))
            rows[-1]["layout"] = auto_layout(module, args.device, precision)
        rows[-2]["ig_vs_captum"] = _agreement(candidates, precision)
    return rows


def first_call_overhead(module, x, targets, device: str) -> float:
    """Seconds the first attribute() call on a fresh model spends beyond the second (folding, chunk probing)."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        attrib.attribute(module, x, "gradient", target=targets, device=device)
        sync(device)
        times.append(time.perf_counter() - start)
    return times[0] - times[1]


def _agreement(candidates: dict, precision: str) -> float:
    ours = candidates[("attrib", "ig", None)]().values.float()
    theirs = candidates[("captum", "ig", None)]().detach().float().cpu()
    return float((ours - theirs).norm() / theirs.norm())


def _row(model, precision, method, results, bound_seconds, bound_chunk, batch) -> dict:
    def rate(r):
        return None if r is None else batch / r["seconds"]

    captum = {k[2]: r for k, r in results.items() if k[:2] == ("captum", method) and r is not None}
    ours = {k[2]: r for k, r in results.items() if k[:2] == ("attrib", method) and r is not None}
    tuned_key = min(captum, key=lambda k: captum[k]["seconds"])
    fixed = {k: r for k, r in ours.items() if k is not None}
    best_fixed = min(fixed, key=lambda k: fixed[k]["seconds"]) if fixed else None
    auto = ours.get(None)
    return {"model": model, "precision": precision, "method": method,
            "bound": batch / bound_seconds, "bound_chunk": bound_chunk,
            "captum_default": rate(captum.get(None)), "captum_best": rate(captum[tuned_key]),
            "captum_setting": tuned_key, "attrib": rate(auto),
            "attrib_best_fixed": rate(fixed.get(best_fixed)), "best_chunk": best_fixed,
            "attrib_other": rate(results.get(("attrib-other", method, None))),
            "peak_gib": auto and auto["peak_gib"], "retries": auto and auto["retries"],
            "captum_peak_gib": captum[tuned_key]["peak_gib"]}


def fmt(value, digits=1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="fp32,bf16", help="of fp32, tf32, bf16")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    args.precisions = args.precisions.split(",")
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "CPU"
    print(f"# bench/gpu.py — {card}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; batch {args.batch}, "
          f"{args.steps} steps/samples; images/s (higher is better)")
    print("| model | precision | method | layout | bound | captum default | captum best (setting) | attrib auto | "
          "attrib best fixed (chunk) | attrib other layout | attrib / captum best | auto / best fixed | "
          "peak GiB (captum) | alloc retries | IG vs captum |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    everything = []
    for name in args.models.split(","):
        start = time.perf_counter()
        rows = bench(name, args)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", flush=True)
        everything.extend(rows)
        for r in rows:
            ratio = r["attrib"] / r["captum_best"] if r["attrib"] else None
            auto = r["attrib"] / r["attrib_best_fixed"] if r["attrib"] and r["attrib_best_fixed"] else None
            print(f"| {r['model']} | {r['precision']} | {r['method']}-{args.steps} | {r['layout']} | {fmt(r['bound'])} "
                  f"(chunk {r['bound_chunk']}) | {fmt(r['captum_default'])} | {fmt(r['captum_best'])} "
                  f"({r['captum_setting'] or 'default'}) | {fmt(r['attrib'])} | {fmt(r['attrib_best_fixed'])} "
                  f"({r['best_chunk']}) | {fmt(r['attrib_other'])} | {fmt(ratio, 2)} | {fmt(auto, 2)} | "
                  f"{fmt(r['peak_gib'], 2)} ({fmt(r['captum_peak_gib'], 2)}) | {r['retries']} | "
                  f"{fmt(r.get('ig_vs_captum'), 4)} |", flush=True)
    print()
    for line in goals(everything):
        print(line)


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals, each with the measured number and ok / MISSED."""
    out = []

    def check(what: str, value: float | None, bound: float, above: bool = True) -> None:
        met = value is not None and (value >= bound if above else value <= bound)
        shown = "n/a" if value is None else f"{value:.2f}"
        out.append(f"- {what}: {shown} ({'>=' if above else '<='} {bound:g}) {'ok' if met else 'MISSED'}")

    for r in rows:
        where = f"{r['model']} {r['precision']} {r['method']}"
        check(f"{where}: attrib / captum best", r["attrib"] and r["attrib"] / r["captum_best"], 1.3)
        check(f"{where}: auto / best fixed chunk", r["attrib"] and r["attrib_best_fixed"] and
              r["attrib"] / r["attrib_best_fixed"], 0.9)
        if r["retries"] is not None:
            check(f"{where}: allocator retries", r["retries"], 0, above=False)
    by = {(r["model"], r["precision"], r["method"]): r for r in rows}
    for (model, precision, method), r in by.items():
        fp32 = by.get((model, "fp32", method))
        if precision == "bf16" and fp32 and model in ("resnet50", "vit_base_patch16_224"):
            check(f"{model} {method}: bf16 / fp32 throughput", r["attrib"] and fp32["attrib"] and
                  r["attrib"] / fp32["attrib"], 1.3)
    return out


if __name__ == "__main__":
    main()
