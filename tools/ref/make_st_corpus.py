import struct, os, sys
d = sys.argv[1]
def img(h, data=b''):
    hb = h.encode() if isinstance(h, str) else h
    return struct.pack('<Q', len(hb)) + hb + data
def pad(h):
    hb = h.encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    return hb
cases = {
 'valid_empty': img(pad('{}')),
 'valid_meta': img(pad('{"__metadata__":{"format":"pt"}}')),
 'valid_f32': img('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', struct.pack('<6f', 0,1,2,3,4,5)),
 'valid_mixed': img(pad('{"__metadata__":{"format":"pt"},"z":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"k":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"m":{"dtype":"F16","shape":[1,0],"data_offsets":[20,20]},"b":{"dtype":"U8","shape":[3],"data_offsets":[20,23]}}'), bytes(range(23))),
 'valid_gap': img('{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}', b'0123456789'),
 'bad_short': b'\x10\x00\x00',
 'bad_hlen': struct.pack('<Q', 1 << 40) + b'{}',
 'bad_json': img('{"a": {"dtype": '),
 'bad_dtype': img('{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}', b'x'),
 'bad_mismatch': img('{"a.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,10]}}', b'0123456789'),
 'bad_range': img('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b'0123456789'),
 'bad_overlap': img('{"a":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b'0123456789'),
 'bad_dup': img('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b'01'),
 'bad_overflow': img('{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}'),
 'bad_meta': img('{"__metadata__":{"n":3}}'),
 'bad_deep': img('[' * 5000),
}
for k, v in cases.items():
    open(os.path.join(d, k + '.safetensors'), 'wb').write(v)
