"""Loads a swift-unet checkpoint into an equivalent PyTorch U-Net and compares predictions.

Usage: python tools/torch_load_check.py CHECKPOINT.safetensors PROBS.tif IMAGE_STACK.tif
  CHECKPOINT   a `unet train` checkpoint (best.safetensors or last.safetensors)
  PROBS.tif    `unet predict --model CHECKPOINT --input IMAGE_STACK.tif --output PROBS.tif`
  IMAGE_STACK  the 8-bit stack that was predicted (only page 0 is compared)
Needs torch, safetensors and numpy. The module tree below mirrors swift-unet's names
(docs/CHECKPOINTS.md), so `load_state_dict(strict=True)` must accept the file as is, once the
optimizer state (keys starting with "optimizer.") is left out.
"""
import json, sys, struct
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file
from safetensors import safe_open

class ConvBlock(nn.Module):
    def __init__(self, ci, co):
        super().__init__()
        self.conv1 = nn.Conv2d(ci, co, 3, padding=1, bias=False); self.bn1 = nn.BatchNorm2d(co)
        self.conv2 = nn.Conv2d(co, co, 3, padding=1, bias=False); self.bn2 = nn.BatchNorm2d(co)
    def forward(self, x):
        return F.elu(self.bn2(self.conv2(F.elu(self.bn1(self.conv1(x))))))

class UpBlock(nn.Module):
    def __init__(self, ci, skip):
        super().__init__()
        self.up = nn.ConvTranspose2d(ci, ci, 2, stride=2, bias=False); self.up_bn = nn.BatchNorm2d(ci)
        self.convs = ConvBlock(ci + skip, skip)
    def forward(self, x, s):
        return self.convs(torch.cat([F.elu(self.up_bn(self.up(x))), s], 1))

class UNet(nn.Module):
    def __init__(self, base, depth=4, cin=1, classes=2):
        super().__init__()
        ch = [base << l for l in range(depth)]
        self.encoder = nn.ModuleList(); c = cin
        for co in ch: self.encoder.append(ConvBlock(c, co)); c = co
        self.bottleneck = ConvBlock(c, base << depth); c = base << depth
        self.decoder = nn.ModuleList()
        for co in reversed(ch): self.decoder.append(UpBlock(c, co)); c = co
        self.head = nn.Conv2d(c, classes, 1)
    def forward(self, x):
        skips = []
        for e in self.encoder: x = e(x); skips.append(x); x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for d, s in zip(self.decoder, reversed(skips)): x = d(x, s)
        return self.head(x)

def tiff_page0(path, dtype):
    # Minimal reader for the uncompressed single-strip-per-row stacks both tools write.
    data = open(path, "rb").read()
    endian = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(endian + "I", data[4:8])[0]
    n = struct.unpack(endian + "H", data[ifd:ifd + 2])[0]
    tags = {}
    for i in range(n):
        tag, typ, count, value = struct.unpack(endian + "HHII", data[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
        if typ == 3 and count == 1: value &= 0xFFFF if endian == "<" else value >> 16
        tags[tag] = (typ, count, value)
    w, h = tags[256][2], tags[257][2]
    offsets_t, counts_t = tags[273], tags[279]
    def array(t):
        typ, count, value = t
        if count == 1: return [value]
        fmt = "I" if typ == 4 else "H"
        size = 4 if typ == 4 else 2
        return list(struct.unpack(endian + fmt * count, data[value:value + size * count]))
    raw = b"".join(data[o:o + c] for o, c in zip(array(offsets_t), array(counts_t)))
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(endian))[: w * h].reshape(h, w)

checkpoint, probs_path, image_path = sys.argv[1:4]
with safe_open(checkpoint, "pt") as f: meta = f.metadata()
config = json.loads(meta["unet.model"])
state = {k: v for k, v in load_file(checkpoint).items() if not k.startswith("optimizer.")}
model = UNet(config["baseFilters"], config["depth"], config["inputChannels"], config["classes"])
result = model.load_state_dict(state, strict=True)
print("load_state_dict(strict=True):", result)
model.eval()
image = tiff_page0(image_path, np.uint8).astype(np.float32) / 255
with torch.no_grad():
    p = torch.softmax(model(torch.from_numpy(image)[None, None]), 1)[0, 1].numpy()
ours = tiff_page0(probs_path, np.float32)
m = 112  # beyond the receptive-field radius (107): tiling with mirrored borders and PyTorch's zero padding agree
diff = np.abs(p[m:-m, m:-m] - ours[m:-m, m:-m]).max()
print(f"max |torch - swift-unet| cell probability over the interior: {diff:.2e}")
sys.exit(0 if diff < 1e-3 else 1)
