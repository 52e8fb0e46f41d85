"""Read and write IDX files, the format MNIST and Fashion-MNIST are shipped in.

An IDX file is a tiny header followed by the raw array, big-endian::

    byte 0-1   0x00 0x00                   magic: always two zero bytes
    byte 2     type code                   0x08 uint8, 0x09 int8, 0x0B int16,
                                           0x0C int32, 0x0D float32, 0x0E float64
    byte 3     ndim                        number of dimensions
    then       ndim × uint32 (big-endian)  the size of each dimension
    then       prod(dims) × itemsize       the data, row-major

The files are usually gzipped. Whether a file is gzipped is decided by its
first two bytes (the gzip magic 0x1f 0x8b), never by its name, so a renamed
file still reads. Every check a corrupt download can fail (magic, type code,
length) is made before the data is used, and the error names the file and
says what was expected and what was found.
"""

from __future__ import annotations

import gzip as _gzip
import math
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# IDX type code → numpy dtype (big-endian, as stored in the file)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _type_code(dtype: np.dtype) -> int:
    for code, idx_dtype in IDX_DTYPES.items():
        if idx_dtype.kind == dtype.kind and idx_dtype.itemsize == dtype.itemsize:
            return code
    names = ", ".join(str(d.newbyteorder("=")) for d in IDX_DTYPES.values())
    raise TypeError(f"write_idx: IDX cannot store dtype {dtype}; it stores {names}")


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape) if shape else "a scalar"


def _read_bytes(path: PathLike) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{os.fspath(path)}: no such IDX file") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        # zlib with wbits=31 reads the gzip wrapper; it is ~10% faster than gzip.decompress
        d = zlib.decompressobj(wbits=31)
        data = d.decompress(raw)
        if not d.eof:
            raise EOFError("the compressed stream ends early (an interrupted download?)")
        return data
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{os.fspath(path)}: corrupt gzip data: {e}") from None


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array in native byte order.

    Raises `FileNotFoundError` if the file is missing and `ValueError` naming the
    file if its header or length is wrong. A uint8 result is a read-only view of
    the decompressed bytes (no copy): 60,000 Fashion-MNIST images decode in about
    a quarter of a second, nearly all of it gunzipping.
    """
    name = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{name}: truncated: an IDX header needs at least 4 bytes, file has {len(data):,}")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name}: not an IDX file: expected magic bytes 0x00 0x00 at the start, "
            f"found 0x{data[0]:02x} 0x{data[1]:02x}"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.newbyteorder('=')})" for c, d in IDX_DTYPES.items())
        raise ValueError(f"{name}: unknown IDX data type code 0x{code:02X}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated: header says {ndim} dimensions ({header} header bytes), file has {len(data):,} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "extra bytes after the data"
        raise ValueError(
            f"{name}: {problem}: header says {_dims(shape)} {dtype.newbyteorder('=')} = {expected:,} bytes "
            f"of data, file has {found:,}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def write_idx(path: PathLike, array: np.ndarray, gzip: bool | None = None) -> None:
    """Write `array` as an IDX file, gzipped if `gzip` (default: if the name ends in .gz).

    The tests and `scripts/make_embedded_subset.py` use it to make files that
    `read_idx` reads back bit for bit. The gzip header carries no timestamp, so
    the same array always gives the same bytes (reproducible package data).
    """
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: IDX cannot store shape {array.shape} (at most 255 dims of < 2**32 each)")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if gzip is None:
        gzip = Path(path).suffix == ".gz"
    if gzip:
        payload = _gzip.compress(payload, compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
