import os
import platform
import random

import pytest

from tether.protocol import masking


def test_speedups_built():
    # The accelerator must build on the CI machine; the fallback is tested separately.
    assert masking.SPEEDUPS is True


@pytest.mark.parametrize("seed", range(20))
def test_c_and_python_agree(seed):
    rng = random.Random(seed)
    from tether.protocol._speedups import apply_mask as c_apply_mask

    for _ in range(50):
        n = rng.choice([0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 125, 126, 1000, 65536 + 3])
        data = rng.randbytes(n)
        mask = rng.randbytes(4)
        offset = rng.randrange(0, 9)
        assert c_apply_mask(data, mask, offset) == masking.py_apply_mask(data, mask, offset)


def reference(data, mask, offset=0):
    return bytes(b ^ mask[(i + offset) % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("impl", ["c", "py"])
def test_against_reference(impl):
    from tether.protocol._speedups import apply_mask as c_apply_mask

    fn = c_apply_mask if impl == "c" else masking.py_apply_mask
    data = os.urandom(37)
    mask = os.urandom(4)
    for offset in range(6):
        assert fn(data, mask, offset) == reference(data, mask, offset)
    # Masking twice restores the payload.
    assert fn(fn(data, mask), mask) == data
    # memoryview and bytearray inputs are accepted.
    assert fn(memoryview(data), mask) == fn(bytearray(data), mask) == reference(data, mask)


@pytest.mark.parametrize("impl", ["c", "py"])
def test_bad_arguments(impl):
    from tether.protocol._speedups import apply_mask as c_apply_mask

    fn = c_apply_mask if impl == "c" else masking.py_apply_mask
    with pytest.raises(ValueError, match="mask must contain 4 bytes"):
        fn(b"abc", b"xyz")
    with pytest.raises(ValueError, match="offset must be non-negative"):
        fn(b"abc", b"wxyz", -1)


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 2048, 65535, 65536, 70_000])
def test_masked_frames_agree_and_follow_the_header_layout(n):
    from tether.protocol._speedups import masked_frame as c_masked_frame

    rng = random.Random(n)
    payload = rng.randbytes(n)
    mask = rng.randbytes(4)
    for first in (0x82, 0x01, 0xC1, 0x00):
        frame = c_masked_frame(first, payload, mask)
        assert frame == masking.py_masked_frame(first, payload, mask)
        for kind in (bytearray, memoryview):
            assert c_masked_frame(first, kind(payload), kind(mask)) == frame
        head = 2 if n < 126 else 4 if n < 65536 else 10
        assert frame[0] == first
        assert frame[1] & 0x80  # the mask bit
        assert int.from_bytes(frame[2:head], "big") == (n if head > 2 else 0)
        assert frame[1] & 0x7F == (n if n < 126 else 126 if n < 65536 else 127)
        assert frame[head : head + 4] == mask
        assert reference(frame[head + 4 :], mask) == payload


@pytest.mark.parametrize("impl", ["c", "py"])
def test_masked_frames_refuse_bad_arguments(impl):
    from tether.protocol._speedups import masked_frame as c_masked_frame

    fn = c_masked_frame if impl == "c" else masking.py_masked_frame
    with pytest.raises(ValueError, match="mask must contain 4 bytes"):
        fn(0x82, b"data", b"abc")
    for first in (-1, 256):
        with pytest.raises(ValueError, match="first_byte"):
            fn(first, b"data", b"abcd")
    with pytest.raises(TypeError):
        fn(0x82, "text", b"abcd")


def _masking_loops():
    """The names of the C accelerator's masking loops that this machine runs."""
    from tether.protocol import _speedups

    names = []
    for name in ("portable", "sse2", "avx2"):
        try:
            previous = _speedups._set_masking(name)
        except ValueError:
            continue
        _speedups._set_masking(previous)
        names.append(name)
    return names


MASKING_LOOPS = _masking_loops()


def test_the_widest_masking_loop_is_picked():
    from tether.protocol import _speedups

    if platform.machine() not in ("x86_64", "AMD64"):
        assert MASKING_LOOPS == ["portable"]
        return
    with open("/proc/cpuinfo") as cpuinfo:
        avx2 = " avx2" in cpuinfo.read()
    assert MASKING_LOOPS == ["portable", "sse2", "avx2"] if avx2 else ["portable", "sse2"]
    assert _speedups.MASKING == MASKING_LOOPS[-1]
    with pytest.raises(ValueError, match="no masking loop 'neon'"):
        _speedups._set_masking("neon")
    with pytest.raises(TypeError):
        _speedups._set_masking(b"avx2")


@pytest.fixture(params=MASKING_LOOPS)
def masking_loop(request):
    from tether.protocol import _speedups

    previous = _speedups._set_masking(request.param)
    yield request.param
    assert _speedups._set_masking(previous) == request.param


LENGTHS = [*range(0, 140), 255, 256, 1000, 4096 + 5, 65536 + 3, (1 << 20) + 7]


def test_every_masking_loop_agrees_with_python(masking_loop):
    from tether.protocol._speedups import Payload, apply_mask as c_apply_mask

    rng = random.Random(masking_loop)
    for n in LENGTHS:
        data = rng.randbytes(n)
        mask = rng.randbytes(4)
        offset = rng.randrange(0, 8)
        expected = masking.py_apply_mask(data, mask, offset)
        assert c_apply_mask(data, mask, offset) == expected
        # Unaligned input, and the payload's copy-and-mask and in-place paths.
        assert c_apply_mask(memoryview(b"x" + data)[1:], mask, offset) == expected
        # Masked with the key from position 3, then the tail unmasked in place.
        payload = Payload(n + 3)
        payload.fill(3, data, mask)
        start = rng.randrange(0, n + 1)
        payload.unmask(3 + start, 3 + n, mask)
        assert payload.take()[3:] == masking.py_apply_mask(data[:start], mask, 3) + data[start:]
