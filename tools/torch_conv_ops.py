"""PyTorch side of docs/PERFORMANCE.md's convolution comparison: conv 3x3 64->64 at 512^2 (forward,
forward+backward) and the k2 s2 transposed conv 128->128 at 256^2, 2 threads, median of 5.
Run: ~/venv-ref/bin/python tools/torch_conv_ops.py   (ours: .build/release/unet bench conv)
"""
import torch, time
torch.set_num_threads(2)
def t(f, n=5):
    f(); ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    ts.sort(); return ts[len(ts)//2]
x=torch.randn(1,64,512,512, requires_grad=True); c=torch.nn.Conv2d(64,64,3,padding=1,bias=False)
fwd=t(lambda: c(x))
def fb():
    y=c(x); y.backward(torch.ones_like(y))
print("torch conv 64->64 @512 fwd %.1f ms fwd+bwd %.1f ms" % (fwd*1e3, t(fb)*1e3))
u=torch.nn.ConvTranspose2d(128,128,2,stride=2,bias=False); xi=torch.randn(1,128,256,256)
with torch.no_grad(): tf=t(lambda: u(xi))
print("torch convT 128 k2s2 @256 in fwd %.1f ms = %.1f GFLOP/s" % (tf*1e3, 2*128*128*4*256*256/tf/1e9))
