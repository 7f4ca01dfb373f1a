"""Minimal safetensors reader and writer in plain Python + numpy (+ torch for convenience).

Format (the public safetensors spec): 8-byte little-endian header length N, N bytes of JSON
{"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
then the raw little-endian data; offsets are relative to the end of the header. The writer pads
the header with spaces to a multiple of 8 bytes, as the reference library does.

BF16 has no numpy dtype: it is read as uint16 and widened to float32 by a 16-bit left shift
(exact); written from float32 with round-to-nearest-even, which is what torch's .to(bfloat16)
does. Reference tool only: never needed to build or run the C tests.
"""

import json
import struct

import numpy as np

_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def bf16_bits_to_f32(bits):
    """uint16 array of bfloat16 bit patterns -> float32 array (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (NaN kept quiet)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def round_to_bf16(x):
    """float32 values rounded to the nearest bfloat16, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x)).reshape(np.shape(x))


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n


class SafeTensorsFile:
    """Lazy reader: tensors are memory-mapped and converted on request."""

    def __init__(self, path):
        self.path = path
        self.header, self.data_start = read_header(path)
        self.metadata = self.header.pop("__metadata__", None)
        self._map = np.memmap(path, dtype=np.uint8, mode="r")

    def keys(self):
        return list(self.header.keys())

    def info(self, name):
        return self.header[name]

    def numpy(self, name, as_f32=False):
        """The tensor as a numpy array; BF16 always comes back as float32 (F16 too if as_f32)."""
        h = self.header[name]
        b, e = h["data_offsets"]
        raw = self._map[self.data_start + b: self.data_start + e]
        shape = tuple(h["shape"])
        dt = h["dtype"]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(raw.tobytes(), dtype="<u2"))
        elif dt in _NP:
            arr = np.frombuffer(raw.tobytes(), dtype=np.dtype(_NP[dt]).newbyteorder("<"))
            arr = arr.astype(arr.dtype.newbyteorder("="))
        else:
            raise ValueError(f"{self.path}: tensor '{name}' has unsupported dtype {dt}")
        arr = arr.reshape(shape)
        if as_f32 and arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        return arr

    def torch(self, name, as_f32=True):
        import torch
        return torch.from_numpy(np.array(self.numpy(name, as_f32=as_f32)))


def load_file(path, as_f32=False):
    """All tensors of a file as a dict name -> numpy array."""
    f = SafeTensorsFile(path)
    return {k: f.numpy(k, as_f32=as_f32) for k in f.keys()}


def _to_numpy(v):
    try:
        import torch
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            if v.dtype == torch.bfloat16:
                v = v.float()
            return v.numpy()
    except ImportError:
        pass
    return np.asarray(v)


def save_file(tensors, path, dtypes=None, metadata=None):
    """Writes tensors (dict name -> numpy array or torch tensor), in the dict's order.

    dtypes: optional dict name -> safetensors dtype string overriding the array's own dtype;
    "BF16" rounds float32 values to bfloat16 (round to nearest even).
    """
    dtypes = dtypes or {}
    header = {}
    blobs = []
    off = 0
    for name, v in tensors.items():
        a = _to_numpy(v)
        dt = dtypes.get(name)
        if dt is None:
            inv = {np.dtype(t): k for k, t in _NP.items()}
            if a.dtype not in inv:
                raise ValueError(f"tensor '{name}': numpy dtype {a.dtype} has no safetensors name")
            dt = inv[a.dtype]
        if dt == "BF16":
            blob = f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
        else:
            blob = np.ascontiguousarray(a.astype(np.dtype(_NP[dt]).newbyteorder("<"))).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for blob in blobs:
            f.write(blob)
