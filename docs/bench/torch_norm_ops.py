"""PyTorch side of the "Pooling, batch norm, activations" table in docs/PERFORMANCE.md.

Same shape and rows as Tests/TensorTests/NormBenchmarks.swift (1 x 64 x 512^2, 2 threads);
prints median and best wall time of the runs and the median CPU time (all threads), in ms. Run right before or after the Swift harness:
    ~/venv-ref/bin/python docs/bench/torch_norm_ops.py
"""
import os
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(v, "2")
import statistics, time
import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
runs = int(os.environ.get("RUNS", "9"))
x = torch.rand(1, 64, 512, 512) * 4 - 2
g = torch.rand_like(x) * 2 - 1
gp = torch.rand(1, 64, 256, 256) * 2 - 1
w, b = torch.ones(64), torch.zeros(64)
rm, rv = torch.zeros(64), torch.ones(64)

def bench(name, fn):
    fn()
    samples, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3); cpu.append((time.process_time() - c0) * 1e3)
    print(f"TORCH {name:<44} median {statistics.median(samples):7.1f} ms   best {min(samples):7.1f} ms"
          f"   cpu {statistics.median(cpu):7.1f} ms", flush=True)

def leaves():
    return [t.detach().requires_grad_() for t in (x, w, b)]  # shares storage: no copy

with torch.no_grad():
    bench("BN train forward", lambda: F.batch_norm(x, None, None, w, b, training=True))
def bn_fb(act):
    xl, wl, bl = leaves()
    act(F.batch_norm(xl, None, None, wl, bl, training=True)).backward(g)
bench("BN train forward+backward", lambda: bn_fb(lambda t: t))
with torch.no_grad():
    bench("BN+ReLU train forward", lambda: F.relu(F.batch_norm(x, None, None, w, b, training=True)))
bench("BN+ReLU train forward+backward", lambda: bn_fb(F.relu))
with torch.no_grad():
    bench("BN+ELU train forward", lambda: F.elu(F.batch_norm(x, None, None, w, b, training=True)))
bench("BN+ELU train forward+backward", lambda: bn_fb(F.elu))
with torch.no_grad():
    bench("BN+ELU eval forward", lambda: F.elu(F.batch_norm(x, rm, rv, w, b, training=False)))
    bench("ELU forward", lambda: F.elu(x))
def elu_fb():
    xl = x.detach().requires_grad_(); F.elu(xl).backward(g)
bench("ELU forward+backward", elu_fb)
with torch.no_grad():
    bench("maxPool2d 2x2 forward (no grad)", lambda: F.max_pool2d(x, 2))
def pool_fb():
    xl = x.detach().requires_grad_(); F.max_pool2d(xl, 2).backward(gp)
bench("maxPool2d 2x2 forward+backward", pool_fb)
bench("dropout p=0.5 forward", lambda: F.dropout(x, 0.5, training=True))
def drop_fb():
    xl = x.detach().requires_grad_(); F.dropout(xl, 0.5, training=True).backward(g)
bench("dropout p=0.5 forward+backward", drop_fb)
bench("clone of one tensor (allocation + copy)", lambda: x.clone())
