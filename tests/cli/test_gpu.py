"""Every command on a GPU (`--device cuda`), end to end on small models; skipped without CUDA.

Run them all, with the GPU benchmarks, by `bash bench/gpu_check.sh` on a machine with a card.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import attrib
from tests.cli.conftest import TINY, parse_json

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_explain_and_report_on_cuda(run_cli, images, tmp_path):
    out = tmp_path / "o"
    result = run_cli("explain", images, *TINY, "-m", "ig", "-m", "sg", "-m", "eg", "-m", "mg", "--set", "n_steps=16",
                     "--set", "n_samples=8", "--device", "cuda", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert data["device"].startswith("cuda") and all(i["status"] == "ok" for i in data["inputs"])
    assert run_cli("report", out, "-o", tmp_path / "r.html", "--png", tmp_path / "o.png").exit_code == 0


def test_bf16_on_a_card_that_computes_it_is_not_called_emulated(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--precision", "bf16", "--device",
                     "cuda", "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    native = torch.cuda.get_device_capability()[0] >= 8  # a T4 or V100 only emulates bf16
    assert result.exit_code == 0 and ("torch emulates it" in said) is not native


def test_streaming_explain_on_cuda_matches_the_cpu(run_cli, tmp_path):
    import timm

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), tmp_path / "w.pt")
    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        result = run_cli("explain", folder, "-M", "timm:test_resnet", "--weights", tmp_path / "w.pt", "-m", "gradient",
                         "--no-images", "--device", device, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        runs[device] = attrib.load_run(out)
    errors = []
    for entry in runs["cpu"].record["inputs"]:
        a, b = runs["cpu"].arrays[(entry["id"], "gradient")], runs["cuda"].arrays[(entry["id"], "gradient")]
        errors.append(np.linalg.norm(a - b) / np.linalg.norm(a))
    # fp32 rounding flips a ReLU here and there: on the CPU alone, fp32 against float64 is 3e-7 off for the
    # median image of these 40 and 5e-3 for the worst; on an H200, 3 of the 40 maps were over 1e-4, the worst
    # 1.1% off (measured), so a few maps may differ by a percent
    assert np.median(errors) < 1e-5 and sum(e > 1e-4 for e in errors) <= 4 and max(errors) < 0.05, errors


def test_explain_text_on_cuda(run_cli, text_models, tmp_path):
    result = run_cli("explain-text", "the movie was great", "-M", text_models["clf"], "--lm", text_models["lm"],
                     "-m", "olm", "-m", "unk", "-m", "ig", "--n-samples", "8", "--n-steps", "8", "--device", "cuda",
                     "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run.json").read_text())["device"].startswith("cuda")


def test_sanity_text_and_text_contrasts_on_cuda(run_cli, text_models, tmp_path):
    result = run_cli("sanity-text", "the movie was great", "-M", text_models["clf"], "-m", "unk", "-m", "ig",
                     "--n-steps", "8", "--max-layers", "2", "--repeats", "1", "--device", "cuda", "--out",
                     tmp_path / "s", "--json")
    assert result.exit_code == 0, result.output
    assert {v["test"] for v in parse_json(result)["verdicts"]} == {"randomization", "completeness"}
    texts = {}
    for device in ("cpu", "cuda"):
        found = run_cli("explain-text", "the movie was great", "-M", text_models["clf"], "-m", "unk", "--versus",
                        "runner-up", "--device", device, "--out", tmp_path / device, "--json")
        assert found.exit_code == 0, found.output
        texts[device] = parse_json(found)["texts"][0]
    assert texts["cpu"]["versus"] == texts["cuda"]["versus"]
    assert np.allclose(texts["cpu"]["scores"]["unk"], texts["cuda"]["scores"]["unk"], atol=1e-5)


def test_a_contrast_on_cuda_matches_the_cpu():
    from tests.toys import small_convnet

    model = small_convnet(torch.float32)
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    cpu = attrib.attribute(model, x, "ig", versus="runner-up", device="cpu")
    cuda = attrib.attribute(model, x, "ig", versus="runner-up", device="cuda")
    assert cpu.versus == cuda.versus and cpu.target == cuda.target
    assert float((cpu.values - cuda.values).norm() / cpu.values.norm()) < 1e-4


def test_diffroar_and_its_workers_on_cuda(run_cli, tmp_path):
    import subprocess
    import sys

    args = ["-M", "sample:synthetic-robust", "-m", "gradient", "--k", "0.5", "--n-train", "200", "--n-test", "100",
            "--epochs", "2", "--device", "cuda"]
    assert run_cli("diffroar", *args, "--out", tmp_path / "a", "--json").exit_code == 0
    assert run_cli("diffroar", *args, "--out", tmp_path / "b", "--plan-only").exit_code == 0
    jobs = sorted(str(p) for p in (tmp_path / "b" / "jobs").glob("*-s0.json"))
    subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", *jobs], check=True, capture_output=True)
    result = run_cli("diffroar", *args, "--out", tmp_path / "b", "--json")
    assert result.exit_code == 0 and len(parse_json(result)["results"]) == 2


def test_sanity_all_tests_on_cuda(run_cli, tmp_path):
    result = run_cli("sanity", "-M", "sample:blockdigits-standard", "--n", "3", "-m", "gradient", "-m", "ig",
                     "--set", "n_steps=8", "--max-layers", "2", "--repeats", "2", "--radii", "0.5",
                     "--device", "cuda", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    modes = {r["mode"] for r in parse_json(result)["randomization"]}
    assert modes == {"cascading", "independent", "data"}
    gaps = {}
    for device in ("cpu", "cuda"):  # contrasts on the card: the CPU's gaps, up to fp32 rounding
        found = run_cli("sanity", "-M", "sample:blockdigits-standard", "--n", "3", "-m", "ig", "--tests",
                        "completeness", "--versus", "runner-up", "--device", device, "--out", tmp_path / device,
                        "--json")
        assert found.exit_code == 0, found.output
        gaps[device] = [r["gap"] for r in parse_json(found)["completeness"]]
    assert gaps["cuda"] == pytest.approx(gaps["cpu"], abs=1e-4)


def test_ig_fp32_is_as_accurate_on_the_gpu_as_on_the_cpu():
    """fp32 means fp32: with TF32 off inside attribution, the card's IG map is as close to the float64 map as
    the CPU's (both about 7e-4 off on EfficientNet-Lite0, measured; TF32 would be 3-8% off)."""
    import copy

    from attrib.data.images import load_sample
    from attrib.models import load_model

    model = load_model(None)
    x = model.preprocess(load_sample("chelsea"))[None]
    maps = {device: attrib.attribute(model.module, x, "ig", rule="gausslegendre", n_steps=32, device=device).values
            for device in ("cpu", "cuda")}
    exact = attrib.attribute(copy.deepcopy(model.module).double(), x.double(), "ig", rule="gausslegendre",
                             n_steps=32, device="cuda").values.double()
    error = {device: float((m.double() - exact).norm() / exact.norm()) for device, m in maps.items()}
    assert error["cuda"] < max(2 * error["cpu"], 1e-5) and error["cuda"] < 3e-3, error


@pytest.mark.parametrize("method, config", [("smoothgrad", {"n_samples": 16}),
                                            ("expected_gradients", {"n_samples": 16}),
                                            ("integrated_gradients", {"baseline": "uniform", "n_steps": 16,
                                                                      "rule": "gausslegendre"})])
def test_random_methods_draw_the_same_numbers_on_cpu_and_gpu(method, config):
    """The counter-based generator runs on the card and draws the CPU's numbers: the maps agree in fp32."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 30 * 30, 4)).eval()
    x = torch.randn(3, 3, 32, 32)
    extra = {"background": torch.randn(5, 3, 32, 32)} if method == "expected_gradients" else {}
    cpu = attrib.attribute(module, x, method, target=1, device="cpu", **config, **extra)
    gpu = attrib.attribute(module, x, method, target=1, device="cuda", **config, **extra)
    rel = (cpu.values - gpu.values).norm() / cpu.values.norm()
    assert rel < 1e-4, float(rel)


def test_adaptive_ig_makes_the_same_decisions_on_cpu_and_gpu():
    """The default rule refines on the card as on the CPU (float64: the same nodes, the same map), and the
    gap it reports there is the true one."""
    from tests.toys import small_convnet

    net = small_convnet()
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cpu = attrib.attribute(net, x, "ig", target=[0, 1, 2], n_steps=64, device="cpu")
    gpu = attrib.attribute(net, x, "ig", target=[0, 1, 2], n_steps=64, device="cuda")
    assert gpu.extras["steps"].tolist() == cpu.extras["steps"].tolist()
    assert torch.allclose(gpu.values.double(), cpu.values.double(), rtol=1e-5, atol=1e-8)
    assert torch.allclose(gpu.extras["map_error"], cpu.extras["map_error"], rtol=1e-5)
    with torch.no_grad():
        f = net(x)[torch.arange(3), torch.arange(3)] - net(torch.zeros_like(x))[torch.arange(3), torch.arange(3)]
    true_gap = (gpu.values.double().flatten(1).sum(1) - f).abs() / f.abs()
    assert torch.allclose(gpu.completeness_gap.double(), true_gap, rtol=1e-4, atol=1e-6)


def test_adaptive_ig_batches_are_sized_by_its_rounds_on_the_card():
    """On a card, `attrib explain`'s batch for adaptive IG counts the 9 rows of a round, not the budget of 256,
    within the memory cap; the passes bar still ends at the passes run (see test_explain_scale)."""
    import math

    from attrib.api import chunk_rows
    from attrib.jobs import explain
    from attrib.jobs.common import Events

    options = explain.Options(model="timm:test_resnet", pretrained=False, device="cuda")
    plan = explain.prepare(options, Events())
    like = torch.zeros(1, plan.model.preprocess.channels, *plan.model.preprocess.size)
    chunk = chunk_rows(plan.model.module, like, device="cuda")
    size = explain.batch_size(plan, options, explain.rows_per_input(plan))
    assert size == min(explain.MAX_BATCH, math.ceil(explain.CHUNKS_PER_BATCH * chunk / 9))
    assert size > math.ceil(explain.CHUNKS_PER_BATCH * chunk / 256)


def test_the_card_meets_few_batch_sizes_and_the_cpus_results():
    """On CUDA, partial chunks are padded (attrib.engine.padded_rows): adaptive IG's rounds reach the model in a
    few batch sizes only, and the map, gap and passes are the CPU's (float64: the same decisions)."""
    import copy

    from tests.toys import small_convnet

    net = small_convnet()
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    cpu = attrib.attribute(net, x, "ig", target=[0, 1, 2], chunk_size=64, tol=1e-6, device="cpu")
    on_card, sizes = copy.deepcopy(net).cuda(), []

    def model(rows):
        sizes.append(len(rows))
        return on_card(rows)

    gpu = attrib.attribute(model, x, "ig", target=[0, 1, 2], chunk_size=64, tol=1e-6, device="cuda")
    assert set(sizes) <= {8, 16, 32, 64} and gpu.passes == cpu.passes
    assert torch.allclose(gpu.values.double(), cpu.values.double(), rtol=1e-5, atol=1e-8)


def test_auto_chunks_count_the_allocators_cached_memory_as_free():
    """Memory PyTorch caches but no tensor holds is free for attrib's chunks: after other work left most of the
    card in the cache (as captum's runs did in bench/gpu.py), the automatic chunk is what it was."""
    import timm

    from attrib.api import chunk_rows

    module, like = timm.create_model("resnet18", pretrained=False).eval(), torch.zeros(1, 3, 224, 224)
    torch.cuda.empty_cache()
    before = chunk_rows(module, like, device="cuda")
    size = int(0.9 * torch.cuda.mem_get_info()[0])
    hog = torch.empty(size, dtype=torch.uint8, device="cuda")
    del hog  # back in PyTorch's cache; the driver still counts it as used
    try:
        assert torch.cuda.memory_reserved() - torch.cuda.memory_allocated() >= size
        assert chunk_rows(module, like, device="cuda") == before
    finally:
        torch.cuda.empty_cache()
