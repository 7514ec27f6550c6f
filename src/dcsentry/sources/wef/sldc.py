"""SLDC (Streaming Lossless Data Compression, ECMA-321) decoding of WinRM request bodies.

Windows compresses event deliveries with SLDC when a subscription asks for it. No maintained
Python library exists, so this is a decoder written from ECMA-321 and checked against two real
captures (../shared/reference/wef-samples):

- The stream is a sequence of bit-packed symbols, most significant bit first. Nine one-bits start
  a 13-bit control symbol (flush, scheme 1, scheme 2, file mark, end of record, reset 1/2, end
  marker).
- Scheme 1 (compressed): `0` + 8-bit literal, or `1` + match count + 10-bit displacement; the
  displacement is an absolute position in the 1024-byte history buffer.
- Scheme 2 (pass-through): raw bytes; a 0xFF byte is followed by a `0` bit so it cannot start a
  control symbol. Its bytes enter the history too, so a later scheme-1 copy can refer to them.
- Windows ends the record with End-of-Record, zero padding to a byte boundary, and a 4-byte
  little-endian length of the decompressed data: checked here, so a body whose header claims SLDC
  but which is not compressed (Windows does that on End/SubscriptionEnd) is reported, not garbled.

Every malformed stream raises ValueError; output is bounded by `max_output`.
"""

from __future__ import annotations

HISTORY = 1024
_FLUSH, _SCHEME1, _SCHEME2, _FILE_MARK, _EOR, _RESET1, _RESET2, _END_MARKER = 0, 1, 2, 3, 4, 5, 6, 15


def decompress(data: bytes, max_output: int = 16 << 20) -> bytes:
    """Decode one SLDC record (with or without Windows' length trailer). Raises ValueError."""
    n = len(data)
    out = bytearray()
    hist = bytearray(HISTORY)
    h = 0  # next write position in the history buffer
    scheme = 0
    acc = nb = i = 0  # bit accumulator, bits in it, next input byte
    while True:
        while nb < 32 and i < n:
            acc = (acc << 8) | data[i]
            i += 1
            nb += 8
        if nb < 9:
            raise ValueError("SLDC stream ends without an End-of-Record symbol")
        if (acc >> (nb - 9)) & 0x1FF == 0x1FF:
            if nb < 13:
                raise ValueError("SLDC stream ends inside a control symbol")
            code = (acc >> (nb - 13)) & 0xF
            nb -= 13
            acc &= (1 << nb) - 1
            if code == _EOR:
                break
            if code in (_SCHEME1, _SCHEME2):
                scheme = code
            elif code in (_RESET1, _RESET2):
                scheme, h = code - _RESET1 + 1, 0
            elif code not in (_FLUSH, _FILE_MARK, _END_MARKER):
                raise ValueError(f"SLDC: unknown control symbol 0x{0x1FF0 | code:04X}")
            continue
        if scheme == 1:
            if not (acc >> (nb - 1)) & 1:  # literal
                b = (acc >> (nb - 9)) & 0xFF
                nb -= 9
                out.append(b)
                hist[h] = b
                h = (h + 1) & 0x3FF
            else:
                nb -= 1
                count, used = _match_count(acc, nb)
                nb -= used
                if nb < 10:
                    raise ValueError("SLDC stream ends inside a copy pointer")
                k = (acc >> (nb - 10)) & 0x3FF
                nb -= 10
                if len(out) + count > max_output:
                    raise ValueError(f"SLDC output over {max_output} bytes")
                if k + count <= HISTORY and (h - k) % HISTORY >= count:  # no overlap, no wrap: one slice
                    chunk = hist[k:k + count]
                else:  # byte by byte: a copy may read what it has just written (runs)
                    chunk = bytearray(count)
                    for t in range(count):
                        chunk[t] = b = hist[k]
                        hist[h] = b
                        k = (k + 1) & 0x3FF
                        h = (h + 1) & 0x3FF
                    out += chunk
                    acc &= (1 << nb) - 1
                    continue
                out += chunk
                first = min(count, HISTORY - h)
                hist[h:h + first] = chunk[:first]
                if first < count:
                    hist[:count - first] = chunk[first:]
                h = (h + count) & 0x3FF
            acc &= (1 << nb) - 1
        elif scheme == 2:
            b = (acc >> (nb - 8)) & 0xFF
            nb -= 8
            if b == 0xFF:
                nb -= 1  # the `0` bit after 0xFF (a `1` would have made it a control symbol)
            acc &= (1 << nb) - 1
            out.append(b)
            hist[h] = b
            h = (h + 1) & 0x3FF
        else:
            raise ValueError("SLDC data before any scheme or reset symbol")
        if len(out) > max_output:
            raise ValueError(f"SLDC output over {max_output} bytes")
    _check_trailer(data, i - nb // 8, len(out))
    return bytes(out)


def _match_count(acc: int, nb: int) -> tuple[int, int]:
    """(match count, bits used) of the field at the top of `acc`: 0x -> 2-3, 10xx -> 4-7,
    110xxx -> 8-15, 1110xxxx -> 16-31, 1111xxxxxxxx -> 32-271."""
    if nb < 12:
        raise ValueError("SLDC stream ends inside a copy pointer")
    top = (acc >> (nb - 4)) & 0xF
    if top < 0b1000:
        return 2 + ((acc >> (nb - 2)) & 1), 2
    if top < 0b1100:
        return 4 + ((acc >> (nb - 4)) & 3), 4
    if top < 0b1110:
        return 8 + ((acc >> (nb - 6)) & 7), 6
    if top == 0b1110:
        return 16 + ((acc >> (nb - 8)) & 0xF), 8
    return 32 + ((acc >> (nb - 12)) & 0xFF), 12


def _check_trailer(data: bytes, after: int, size: int) -> None:
    """After End-of-Record: zero padding to a byte, then (Windows) uint32 LE of the output size."""
    rest = data[after:]
    if not rest.strip(b"\0"):
        return
    if len(rest) < 4 or rest[:-4].strip(b"\0"):
        raise ValueError("SLDC: unexpected bytes after End-of-Record")
    if int.from_bytes(rest[-4:], "little") != size:
        raise ValueError(f"SLDC: length trailer says {int.from_bytes(rest[-4:], 'little')} bytes, decoded {size}")
