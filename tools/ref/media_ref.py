#!/usr/bin/python3
"""tools/ref/media_ref.py: golden files for the media front end (tests/data/media/).

Run with Debian's interpreter (numpy 1.24, torch 1.13, python3-pil):
    /usr/bin/python3 tools/ref/media_ref.py tests/data/media

Independent of the C code: each quantity is computed here from its published definition.
  mel_<name>.s16   input, 12800 int16 samples (0.8 s at 16 kHz), little-endian
  mel_<name>.f32   Whisper log-mel (128, 120) float32 after zero padding to 19200 samples (1.2 s):
                   numpy float64 STFT (periodic Hann 400, hop 160, center reflect, |X|^2,
                   last frame dropped), slaney mel filters, log10(max(., 1e-10)), max-8 floor,
                   (x+4)/4. Cross-checked here against torch.stft in float32.
  resize_torch.u8  torch.nn.functional.interpolate(bicubic, antialias=True) on float32 of a
                   uint8 pattern, clamp, round, uint8: torchvision's resize for uint8 tensors.
  resize_pil.u8    PIL Image.resize(BICUBIC) of the same pattern.
  patches.f32      4 frames of 56x28 -> rescale (float64 -> float32), CLIP normalise (float32),
                   reshape/transpose to (16, 1176) as Qwen2VLImageProcessor.
  patches_fast.f32 the same through the fast processor's fused (x - 255 mean) / (255 std).
  list_a.jpg, list_b.jpg, list_c.png  a frame list (PIL-encoded JPEGs, an RGBA PNG with alpha)
  list_rgb.u8      PIL's decoding of each (Image.open(...) then qwen's to_rgb), (3, 50, 70, 3)
  list_patches.f32 the frame-list route end to end: fetch_image (smart_resize 4*28*28 ..
                   16384*28*28, PIL bicubic), padded to 4 frames, processor patchify: (32, 1176)
  sampling.txt     smart_nframes + torch.linspace(...).round() indices, and smart_resize cases.
"""
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/data/media"
os.makedirs(OUT, exist_ok=True)

# ---------------------------------------------------------------- log-mel
SR, NFFT, HOP, NMEL = 16000, 400, 160, 128
N_SIG, N_PAD = 12800, 19200


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    m = 3.0 * f / 200.0
    logstep = 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) * logstep, m)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f = 200.0 * m / 3.0
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), f)


def mel_filters():
    nfreq = NFFT // 2 + 1
    fft_freqs = np.linspace(0, SR // 2, nfreq)
    pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), NMEL + 2))
    fb = np.zeros((nfreq, NMEL))
    for m in range(NMEL):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        down = (fft_freqs - lo) / (c - lo)
        up = (hi - fft_freqs) / (hi - c)
        fb[:, m] = np.maximum(0.0, np.minimum(down, up)) * (2.0 / (hi - lo))
    return fb


def log_mel(x):
    x = np.concatenate([x.astype(np.float64), np.zeros(N_PAD - len(x))])
    xp = np.pad(x, NFFT // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)
    nfr = 1 + (len(xp) - NFFT) // HOP
    frames = np.stack([xp[i * HOP:i * HOP + NFFT] * win for i in range(nfr)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2          # (frames, 201)
    mel = mel_filters().T @ power.T                             # (128, frames)
    lm = np.log10(np.maximum(mel, 1e-10))[:, :-1]
    lm = np.maximum(lm, lm.max() - 8.0)
    return (lm + 4.0) / 4.0


def log_mel_torch(x):
    x = torch.tensor(np.concatenate([x, np.zeros(N_PAD - len(x), np.float32)]))
    st = torch.stft(x, NFFT, HOP, window=torch.hann_window(NFFT), return_complex=True)
    mag = st[..., :-1].abs() ** 2
    mel = torch.tensor(mel_filters().T, dtype=torch.float32) @ mag
    lm = torch.clamp(mel, min=1e-10).log10()
    lm = torch.maximum(lm, lm.max() - 8.0)
    return ((lm + 4.0) / 4.0).numpy()


t = np.arange(N_SIG) / SR
f0, f1 = 100.0, 7000.0
sweep = 0.5 * np.sin(2 * np.pi * f0 * (t[-1]) / np.log(f1 / f0) * (np.exp(t / t[-1] * np.log(f1 / f0)) - 1))
noise = np.random.default_rng(1234).uniform(-0.3, 0.3, N_SIG)
square = np.clip(1.5 * np.sign(np.sin(2 * np.pi * 440.0 * t + 0.1)), -1.0, 1.0)
signals = {"sweep": sweep, "noise": noise, "silence": np.zeros(N_SIG), "square": square}
for name, sig in signals.items():
    s16 = np.clip(np.round(sig * 32768.0), -32768, 32767).astype("<i2")
    s16.tofile(os.path.join(OUT, f"mel_{name}.s16"))
    x = s16.astype(np.float32) / 32768.0
    ref = log_mel(x)
    assert ref.shape == (NMEL, N_PAD // HOP), ref.shape
    err = np.abs(ref - log_mel_torch(x)).max()
    assert err < 1e-4, (name, err)
    ref.astype("<f4").tofile(os.path.join(OUT, f"mel_{name}.f32"))
    print(f"mel {name}: torch fp32 vs numpy fp64 max abs {err:.2e}")

# ---------------------------------------------------------------- resize
def pattern(h, w, seed=0):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = x * 7 + y * 13 + c * 50 + (x * y) % 31 + ((x // 5 + y // 3) % 2) * 60 + seed * 17
    return (v % 256).astype(np.uint8)


RESIZE_CASES = [(97, 131, 56, 84), (160, 90, 112, 56), (10, 7, 28, 28), (240, 427, 112, 196), (56, 84, 56, 84),
                (33, 300, 28, 252)]
tv, pil = [], []
for h, w, oh, ow in RESIZE_CASES:
    img = pattern(h, w)
    x = torch.tensor(img).permute(2, 0, 1)[None].float()
    y = torch.nn.functional.interpolate(x, size=[oh, ow], mode="bicubic", align_corners=False, antialias=True)
    y = y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    tv.append(y.reshape(-1))
    pil.append(np.asarray(Image.fromarray(img).resize((ow, oh), Image.BICUBIC)).reshape(-1))
np.concatenate(tv).tofile(os.path.join(OUT, "resize_torch.u8"))
np.concatenate(pil).tofile(os.path.join(OUT, "resize_pil.u8"))

# ---------------------------------------------------------------- patchify
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
T, H, W = 4, 56, 28
frames = np.stack([pattern(H, W, seed=i) for i in range(T)])                 # (T, H, W, 3)
v = (frames.astype(np.float64) * (1 / 255)).astype(np.float32)
v = ((v - MEAN) / STD).astype(np.float32).transpose(0, 3, 1, 2)              # (T, 3, H, W)
gt, gh, gw = T // 2, H // 14, W // 14
v = v.reshape(gt, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
v.reshape(gt * gh * gw, 3 * 2 * 14 * 14).astype("<f4").tofile(os.path.join(OUT, "patches.f32"))
# the fast processor: mean/std tensors times 1/rescale_factor, torchvision normalize on float32
rescale = 0.00392156862745098
m255 = torch.tensor([0.48145466, 0.4578275, 0.40821073]) * (1.0 / rescale)
s255 = torch.tensor([0.26862954, 0.26130258, 0.27577711]) * (1.0 / rescale)
x = torch.tensor(frames).permute(0, 3, 1, 2).to(torch.float32)
x = ((x - m255[None, :, None, None]) / s255[None, :, None, None]).numpy()
x = x.reshape(gt, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
x.reshape(gt * gh * gw, 3 * 2 * 14 * 14).astype("<f4").tofile(os.path.join(OUT, "patches_fast.f32"))

# ---------------------------------------------------------------- frame list
def smart_nframes(total, fps_in, fps=2.0, min_frames=4, max_frames=768):
    mn = math.ceil(min_frames / 2) * 2
    mx = math.floor(min(max_frames, total) / 2) * 2
    n = total / fps_in * fps
    n = min(min(max(n, mn), mx), total)
    return math.floor(n / 2) * 2


def smart_resize(h, w, factor, mn, mx):
    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > mx:
        beta = math.sqrt(h * w / mx)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < mn:
        beta = math.sqrt(mn / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def smart_resize_fn(h, w, factor, mn, mx):
    return smart_resize(h, w, factor, mn, mx)

def to_rgb(im):
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


def patchify(frames):
    v = (np.stack(frames).astype(np.float64) * (1 / 255)).astype(np.float32)
    v = ((v - MEAN) / STD).astype(np.float32).transpose(0, 3, 1, 2)
    t, _, h, w = v.shape
    gt, gh, gw = t // 2, h // 14, w // 14
    v = v.reshape(gt, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return v.reshape(gt * gh * gw, 3 * 2 * 14 * 14)


LH, LW = 50, 70
Image.fromarray(pattern(LH, LW, 1)).save(os.path.join(OUT, "list_a.jpg"), quality=85)
Image.fromarray(pattern(LH, LW, 2)).save(os.path.join(OUT, "list_b.jpg"), quality=60, subsampling=0)
rgba = np.concatenate([pattern(LH, LW, 3), (np.arange(LH * LW).reshape(LH, LW, 1) * 7 % 256).astype(np.uint8)], 2)
Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "list_c.png"))
decoded, resized = [], []
for name in ["list_a.jpg", "list_b.jpg", "list_c.png"]:
    im = to_rgb(Image.open(os.path.join(OUT, name)))
    decoded.append(np.asarray(im))
    h, w = smart_resize_fn(LH, LW, 28, 4 * 28 * 28, 16384 * 28 * 28)
    resized.append(np.asarray(im.resize((w, h))))
np.stack(decoded).tofile(os.path.join(OUT, "list_rgb.u8"))
resized.append(resized[-1])
lp = patchify(resized)
assert lp.shape == (32, 1176), lp.shape
lp.astype("<f4").tofile(os.path.join(OUT, "list_patches.f32"))

# ---------------------------------------------------------------- sampling
with open(os.path.join(OUT, "sampling.txt"), "w") as f:
    f.write("# frames T F -> n idx... (smart_nframes, torch.linspace(0,T-1,n).round())\n")
    for total, fps_in in [(250, 25.0), (300, 29.97002997002997), (70, 7.0), (8, 25.0), (9, 30.0), (1200, 30.0),
                          (21, 2.0), (6, 2.0), (101, 10.0), (2, 30.0), (3, 30.0), (3000, 50.0), (26, 5.0),
                          (240, 24.0), (11, 4.0)]:
        n = smart_nframes(total, fps_in)
        idx = torch.linspace(0, total - 1, n).round().long().tolist()
        f.write(f"frames {total} {fps_in!r} {n} " + " ".join(map(str, idx)) + "\n")
    f.write("# resize h w min max -> oh ow (smart_resize, factor 28)\n")
    total_px = int(128000 * 28 * 28 * 0.9)
    for h, w, mn, mx in [(720, 1280, 100352, None), (1080, 1920, 100352, None), (360, 640, 100352, None),
                         (1280, 720, 100352, None), (64, 64, 100352, None), (350, 350, 3136, 12845056),
                         (224, 224, 3136, 12845056), (14, 42, 3136, 12845056), (100, 5000, 3136, 12845056),
                         (720, 1280, 100352, 105369), (238, 238, 3136, 12845056), (182, 350, 3136, 12845056),
                         (480, 640, 100352, 361267.2)]:
        if mx is None:
            mx = max(min(768 * 28 * 28, total_px / 20 * 2), int(mn * 1.05))
        oh, ow = smart_resize(h, w, 28, mn, mx)
        f.write(f"resize {h} {w} {mn!r} {mx!r} {oh} {ow}\n")
print("wrote", OUT)
