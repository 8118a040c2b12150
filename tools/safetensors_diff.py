"""Compares the tensors of two safetensors files, or checks that one file is complete.

Usage:
  python3 tools/safetensors_diff.py A.safetensors B.safetensors [--tolerance X]
  python3 tools/safetensors_diff.py --check FILE.safetensors...

Compare: both files must hold the same tensor names, dtypes and shapes; the values are compared
bit for bit (F32 as IEEE bit patterns), or with --tolerance as the largest absolute difference.
The `__metadata__` is ignored (it holds timings). Prints one line per differing tensor and a summary;
exit 0 when equal (or within the tolerance), 1 when not, 2 when a file is malformed.

Check: reads every file whole and verifies the layout swift-unet writes: an 8-byte header length
within the file, a JSON header, F32 tensors whose byte ranges match their shapes and cover the data
section exactly, and finite values. Exit 0 when every file passes, 2 otherwise.

Standard library only (no numpy), so it runs wherever python3 does.
"""
import json, math, struct, sys


class Malformed(Exception):
    pass


def read(path):
    """Returns {name: (dtype, shape, bytes)} after checking the layout."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise Malformed(f"{path}: {len(data)} bytes, shorter than the 8-byte header length")
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise Malformed(f"{path}: header of {n} bytes runs past the end of the {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Malformed(f"{path}: header is not JSON: {e}")
    body = data[8 + n:]
    tensors, ranges = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype != "F32":
            raise Malformed(f"{path}: {name}: dtype {dtype}, expected F32")
        count = math.prod(shape)
        if end - start != 4 * count or end > len(body) or start < 0:
            raise Malformed(f"{path}: {name}: bytes {start}..{end} do not fit shape {shape} in a {len(body)}-byte data section")
        tensors[name] = (dtype, shape, body[start:end])
        ranges.append((start, end))
    ranges.sort()
    position = 0
    for start, end in ranges:
        if start != position:
            raise Malformed(f"{path}: data section has a gap or overlap at byte {position}")
        position = end
    if position != len(body):
        raise Malformed(f"{path}: {len(body) - position} bytes after the last tensor")
    return tensors


def floats(raw):
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def check(paths):
    status = 0
    for path in paths:
        try:
            tensors = read(path)
            for name, (_, _, raw) in tensors.items():
                if not all(math.isfinite(v) for v in floats(raw)):
                    raise Malformed(f"{path}: {name} holds NaN or infinite values")
            print(f"{path}: OK, {len(tensors)} tensors")
        except (Malformed, OSError, KeyError, ValueError, TypeError) as e:
            print(f"{e}")
            status = 2
    return status


def compare(a_path, b_path, tolerance):
    try:
        a, b = read(a_path), read(b_path)
    except (Malformed, OSError, KeyError, ValueError, TypeError) as e:
        print(e)
        return 2
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        print(f"different tensor names: only in {a_path}: {only_a}; only in {b_path}: {only_b}")
        return 1
    differing, largest = 0, 0.0
    for name in sorted(a):
        (_, sa, ra), (_, sb, rb) = a[name], b[name]
        if sa != sb:
            print(f"{name}: shape {sa} vs {sb}")
            differing += 1
            continue
        if ra == rb:
            continue
        diff = max(abs(x - y) for x, y in zip(floats(ra), floats(rb)))
        largest = max(largest, diff)
        if tolerance is None or diff > tolerance:
            print(f"{name}: values differ, largest absolute difference {diff:.3g}")
            differing += 1
    if differing:
        print(f"{differing} of {len(a)} tensors differ")
        return 1
    if largest == 0:
        print(f"identical: {len(a)} tensors, bit for bit")
    else:
        print(f"equal within {tolerance}: {len(a)} tensors, largest absolute difference {largest:.3g}")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        return check(argv[1:])
    tolerance = None
    if "--tolerance" in argv:
        i = argv.index("--tolerance")
        tolerance = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return compare(argv[0], argv[1], tolerance)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
