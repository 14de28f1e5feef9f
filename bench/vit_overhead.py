"""Where attrib's time goes against a bare forward + input-backward loop over the same rows (a probe).

    python bench/vit_overhead.py [cuda|cpu]     env: MODEL=vit_base_patch16_224 B=32 PRECISION=bf16 CHUNK=256
                                                     REPS=5 PROFILE=0 (1: torch.profiler tables of both)

IG-50 (Gauss-Legendre, zero baseline) of B random inputs with a timm model of random weights, best of REPS
calls after a warm-up: attrib at its automatic chunk, at CHUNK rows, and in NCHW; a bare loop over the same
chunks of path points (forward under autocast, input-only autograd.grad, index_add_ of grad x input); and the
bare loop plus the two forwards attrib adds for the completeness gap (the outputs at the inputs and at the
baseline), so that what attrib costs beyond the work itself shows.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

import attrib
import attrib.engine as engine_module
from attrib.engine import Engine

DEV = "cuda"  # the command line's device: see __main__
NAME = os.environ.get("MODEL", "vit_base_patch16_224")
PREC = os.environ.get("PRECISION", "bf16")
B, STEPS, CHUNK = int(os.environ.get("B", 32)), 50, int(os.environ.get("CHUNK", 256))
REPS = int(os.environ.get("REPS", 5))


def sync() -> None:
    if DEV.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, reps: int = 3) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def nchw(fn):
    """``fn`` with the engine's layout rule overridden to NCHW."""
    def run():
        saved, engine_module.CHANNELS_LAST = engine_module.CHANNELS_LAST, False
        try:
            return fn()
        finally:
            engine_module.CHANNELS_LAST = saved
    return run


def bare_loop(model, x, targets, cast, params_frozen: bool = True) -> torch.Tensor:
    """IG-STEPS by hand: chunks of path points through forward, input-only autograd.grad and index_add_."""
    for p in model.parameters():
        p.requires_grad_(not params_frozen)
    nodes = torch.linspace(0.01, 0.99, STEPS, device=DEV)
    total, flat = torch.zeros_like(x), torch.arange(len(x) * STEPS, device=DEV)
    for start in range(0, len(flat), CHUNK):
        b, r = flat[start:start + CHUNK] // STEPS, flat[start:start + CHUNK] % STEPS
        points = (x[b] * nodes[r].view(-1, 1, 1, 1)).requires_grad_(True)
        with cast:
            score = model(points).float().gather(1, targets[b][:, None]).sum()
        (grad,) = torch.autograd.grad(score, points)
        total.index_add_(0, b, grad * x[b])
    return total


def candidates(model, x, targets) -> dict:
    """What is timed, by label."""
    cast = torch.autocast(DEV.split(":")[0], dtype=torch.bfloat16, enabled=PREC == "bf16")

    def attrib_run(chunk=None):
        return attrib.attribute(model, x, "ig", target=targets.tolist(), n_steps=STEPS, rule="gausslegendre",
                                device=DEV, precision=PREC, chunk_size=chunk)

    def bare(frozen=True):
        return bare_loop(model, x, targets, cast, frozen)

    def bare_and_ends():
        bare()
        with torch.inference_mode(), cast:
            model(x), model(torch.zeros_like(x))

    return {"attrib auto": attrib_run, f"attrib chunk {CHUNK}": lambda: attrib_run(CHUNK),
            "bare loop, frozen params": bare, "bare loop, params require grad": lambda: bare(False),
            "attrib NCHW": nchw(lambda: attrib_run(CHUNK)), "attrib again": lambda: attrib_run(CHUNK),
            "bare again": bare, "bare + F(x), F(baseline)": bare_and_ends}


def profile(runs: dict) -> None:
    """torch.profiler's tables of attrib's call and the bare loop's, by self time on the device."""
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if DEV.startswith("cuda") else [])
    key = "self_cuda_time_total" if DEV.startswith("cuda") else "self_cpu_time_total"
    for label in (f"attrib chunk {CHUNK}", "bare loop, params require grad"):
        runs[label]()
        sync()
        with torch.profiler.profile(activities=activities) as prof:
            runs[label]()
            sync()
        print(f"## profile: {label}")
        print(prof.key_averages().table(sort_by=key, row_limit=18, max_name_column_width=60))


def main() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model(NAME, pretrained=False).eval().to(DEV)
    print(NAME, PREC, DEV, torch.__version__, "fused attention:",
          any(getattr(m, "fused_attn", False) for m in model.modules()))
    x = torch.randn(B, 3, 224, 224, device=DEV)
    targets = torch.randint(0, 1000, (B,), device=DEV)
    with Engine(model, device=DEV, precision=PREC) as engine:
        print("auto chunk:", engine.chunk_rows(x[:1]), "channels_last:", engine.channels_last)
    runs = candidates(model, x, targets)
    for label, fn in runs.items():
        seconds = timed(fn, REPS)
        print(f"{label:34s} {seconds:7.3f} s  {B / seconds:7.1f} images/s  {seconds / (B * STEPS) * 1e3:.3f} ms/row")
    if os.environ.get("PROFILE", "0") != "0":
        profile(runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("device", nargs="?", default="cuda", help="cuda (default), cuda:N or cpu")
    DEV = parser.parse_args().device
    main()
