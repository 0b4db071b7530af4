"""Save and load models: atomic, checksummed ``.npz`` files, no pickle, and the one reader of sharded model folders; imports the standard library, NumPy and our _openmp, atomic and state (never a model module: the models import this one).

A model file is an uncompressed ``.npz`` (so ``numpy.load`` can inspect it)
holding these members:

``config``
    0-d str: JSON of ``Network.get_config()``.
``state``
    0-d str: JSON of the format version, step and epoch counters, history,
    rebuild schedule, and the CRC-32 of every other member's data.
``state_crc32``
    0-d uint32: the CRC-32 of ``state`` itself.
``layer{i}_{name}``
    every array of ``net._params[i]`` whose name is in
    :data:`PERSISTENT_ARRAYS`.
``layer{i}_dirty``, ``layer{i}_tables_ids``, ``layer{i}_tables_counts``
    LSH tables of layers that have them, and the neurons changed since they
    were last hashed.

Reading never trusts the file: every member's header is checked against
the shape and dtype the config implies before its data is read (a damaged
header cannot make us allocate terabytes), every checksum is verified, and
weights must be finite. Any damage is one ``ValueError`` naming the file.
"""
import io
import json
import os
import zipfile
import zlib

import numpy as np

from ._openmp import resolve_threads
from .atomic import atomic_write
from .state import PERSISTENT, SCHEDULE

__all__ = ["PERSISTENT_ARRAYS", "FORMAT_VERSION", "save", "load", "to_bytes", "from_bytes",
           "estimate_bytes", "crc32", "read_checked", "is_sharded_folder", "read_manifest",
           "load_folder", "MANIFEST"]

# Arrays of ``net._params[i]`` a model file holds (when the layer has them):
# weights, biases and optimizer state. Gradient buffers and touched stamps
# are scratch and are not saved. Add a name here and it is saved, verified
# and loaded; a file written before the name was added loads with the
# array's freshly allocated value.
PERSISTENT_ARRAYS = PERSISTENT

# Format 1 (pyslide before checksums) has no state_crc32 / checksums; it is
# still read, without verification.
FORMAT_VERSION = 2
_LEGACY_FORMAT = 1
_LEGACY_ARRAYS = ("W", "b", "mW", "vW", "mb", "vb")

_CHUNK = 1 << 24   # bytes read (and checksummed) at a time: bounds the extra memory

_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def as_trained(config):
    """A saved ``config`` as the network it was trained as: a file written
    before Adam had ``idle_rows`` trained with idle rows that hold (the
    default now coasts a sampled output's), and keeps doing so."""
    optimizer = config.get("optimizer") if isinstance(config, dict) else None
    if isinstance(optimizer, dict) and optimizer.get("kind") == "adam" \
            and "idle_rows" not in optimizer:
        config = dict(config, optimizer=dict(optimizer, idle_rows="hold"))
    return config


class _Damaged(Exception):
    """Raised inside the reader; ``load`` turns it into one ValueError naming the file."""


# --------------------------------------------------------------------------- writing

def crc32(array):
    """The CRC-32 of an array's data (C order), as model files and sharded
    model folders record it."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    crc = 0
    for start in range(0, flat.size, _CHUNK):
        crc = zlib.crc32(flat[start:start + _CHUNK], crc)
    return crc



def _members(net):
    """Every member of the model file, config and state included."""
    arrays = {"config": np.array(json.dumps(net.get_config()))}
    for i, layer in enumerate(net._states):
        for name in PERSISTENT_ARRAYS:
            if name in layer:
                arrays[f"layer{i}_{name}"] = layer[name]
        if layer.tables is not None:
            arrays[f"layer{i}_dirty"] = layer.dirty
            arrays[f"layer{i}_tables_ids"] = layer.tables.ids
            arrays[f"layer{i}_tables_counts"] = layer.tables.counts
    state = {"format": FORMAT_VERSION, "step": net.step_, "epoch": net.epoch_,
             "initialized": net._initialized,
             **{name: [layer.schedule()[name] for layer in net._states] for name in SCHEDULE},
             "log_decay": float(getattr(net, "_log_decay", 0.0)),
             "history": {k: [float(x) for x in v] for k, v in net.history_.items()},
             "checksums": {key: crc32(value) for key, value in arrays.items()}}
    arrays["state"] = np.array(json.dumps(state))
    arrays["state_crc32"] = np.array(crc32(arrays["state"]), dtype=np.uint32)
    return arrays


def save(net, path):
    """Write ``net`` to ``path`` (a file name, or a binary file object).

    A file name is written atomically (:func:`pyslide.atomic.atomic_write`):
    a failure at any point leaves the previous file at ``path`` intact.

    Returns
    -------
    str or file object
        ``path``.
    """
    members = _members(net)
    if hasattr(path, "write"):
        np.savez(path, **members)
        return path
    path = os.fspath(path)
    with atomic_write(path, "wb") as f:
        np.savez(f, **members)
    return path


def estimate_bytes(net):
    """About the size of ``net``'s model file (its saved arrays; tables not counted)."""
    total = 0
    for params in net._params:
        total += sum(params[name].nbytes for name in PERSISTENT_ARRAYS if name in params)
    return total + (1 << 20)


def to_bytes(net):
    """The model file of ``net`` as bytes (what ``pickle`` and ``copy`` use)."""
    buffer = io.BytesIO()
    save(net, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- reading

def _describe_start(head):
    """What a file that is not a model looks like, without echoing binary."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return "binary data"
    return "text"


def _open_archive(source, name):
    """A ``zipfile.ZipFile`` on the model, and the archive's size in bytes."""
    f = source
    head = f.read(len(_ZIP_MAGIC) + 4)
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    if size == 0:
        raise ValueError(f"{name} is not a complete pyslide model (empty file)")
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"{name} is not a pyslide model file (it is a single NumPy array, a "
                         f".npy file; a model is the .npz file that Network.save writes)")
    if not head.startswith(_ZIP_MAGIC):
        if _ZIP_MAGIC.startswith(head):
            raise ValueError(f"{name} is not a complete pyslide model (truncated to {size} "
                             f"bytes)")
        raise ValueError(f"{name} is not a pyslide model file (it holds {_describe_start(head)}"
                         f"; a model is the .npz file that Network.save writes)")
    try:
        archive = zipfile.ZipFile(f)
    except Exception as exc:   # noqa: BLE001 - a damaged directory raises what it happens to
        # (BadZipFile, EOFError, NotImplementedError for a garbled version field, ...)
        raise ValueError(f"{name} is not a complete pyslide model (truncated or damaged: "
                         f"{exc})") from None
    return archive, size


def _read_header(f):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise _Damaged(f"unknown .npy version {version}")


def _read_member(archive, size, key, shape=None, dtype=None, out=None):
    """Data of member ``key``, checked against ``shape`` / ``dtype`` before it is read.

    With ``out`` the data goes straight into that array. Returns the array
    and the CRC-32 of its data.
    """
    try:
        info = archive.getinfo(key + ".npy")
    except KeyError:
        raise _Damaged(f"{key} is missing") from None
    if info.file_size > size or info.compress_size > size:
        raise _Damaged(f"{key} claims {info.file_size} bytes in a {size}-byte file")
    try:
        with archive.open(info) as f:
            got_shape, fortran, got_dtype = _read_header(f)
            if out is not None:
                shape, dtype = out.shape, out.dtype
            if got_dtype.hasobject or fortran:
                raise _Damaged(f"{key} has an unexpected layout")
            if dtype is not None and got_dtype != np.dtype(dtype):
                raise _Damaged(f"{key} has dtype {got_dtype}, expected {np.dtype(dtype)}")
            if shape is not None and tuple(got_shape) != tuple(shape):
                raise _Damaged(f"{key} has shape {tuple(got_shape)}, expected {tuple(shape)}")
            n_bytes = int(np.prod(got_shape, dtype=np.int64)) * got_dtype.itemsize
            if n_bytes != info.file_size - f.tell():
                raise _Damaged(f"{key} holds {info.file_size - f.tell()} bytes of data, "
                               f"its header says {n_bytes}")
            if out is None:
                out = np.empty(got_shape, dtype=got_dtype)
            flat = out.reshape(-1).view(np.uint8)
            crc = 0
            for start in range(0, n_bytes, _CHUNK):
                chunk = f.read(min(_CHUNK, n_bytes - start))
                if len(chunk) != min(_CHUNK, n_bytes - start):
                    raise _Damaged(f"{key} is truncated")
                flat[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                crc = zlib.crc32(chunk, crc)
    except _Damaged:
        raise
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise _Damaged(f"checksum mismatch in {key}") from None
        raise _Damaged(f"{key}: {exc}") from None
    except Exception as exc:   # any failure to decode the bytes is damage: say where
        raise _Damaged(f"{key}: {type(exc).__name__}: {exc}") from None
    return out, crc


def _read_json(archive, size, key, name, checksums):
    value, crc = _read_member(archive, size, key, shape=())
    if value.dtype.kind != "U":
        raise _Damaged(f"{key} is not text")
    if checksums is not None and checksums.get(key) != crc:
        raise _Damaged(f"checksum mismatch in {key}")
    try:
        return json.loads(str(value[()]))
    except ValueError as exc:
        raise ValueError(f"{name}: the model's {key} is not valid JSON ({exc})") from None


def load(source, network_class, threads=None):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
    network_class : type
        The class to build (``pyslide.Network``; passed in so this module
        does not import the network module).
    threads : int or None
        Overrides the saved ``threads``.

    Raises
    ------
    FileNotFoundError
        No file at ``source``.
    ValueError
        Not a pyslide model, a damaged or truncated one (checksum, size,
        header), invalid JSON inside, or non-finite weights; the message
        names the file and, where it applies, the array.
    """
    if threads is not None:
        resolve_threads(threads, "threads")
    if hasattr(source, "read"):
        name = repr(getattr(source, "name", "<model bytes>"))
        return _load(source, name, network_class, threads)
    path = os.fspath(source)
    name = repr(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no model file at {path!r}") from None
    except IsADirectoryError:
        raise ValueError(_folder_message(path)) from None
    with f:
        return _load(f, name, network_class, threads)


def _folder_message(path):
    """Why a folder is not a model: a sharded model folder (ShardedNetwork.save)
    whose manifest is missing, or some other folder."""
    manifest = os.path.join(path, MANIFEST)
    names = os.listdir(path)
    if "trunk.npz" in names or any(n.startswith("shard-") and n.endswith(".npz") for n in names):
        return (f"{path!r} is a sharded model folder without its manifest: {manifest!r} is "
                f"missing (it holds the config and the checksums: the shard files cannot be "
                f"read without it)")
    return (f"{path!r} is a folder, not a pyslide model file (nor a sharded model folder: it "
            f"has no {manifest!r})")


def _load(f, name, network_class, threads):
    archive, size = _open_archive(f, name)
    with archive:
        members = set(archive.namelist())
        if "config.npy" not in members or "state.npy" not in members:
            raise ValueError(f"{name} is not a pyslide model file (a .npz without a pyslide "
                             f"config inside)")
        try:
            return _build(archive, size, name, network_class, threads)
        except _Damaged as exc:
            raise ValueError(f"{name} is not a complete pyslide model ({exc})") from None


def _build(archive, size, name, network_class, threads):
    checksums = None
    if "state_crc32.npy" in archive.namelist():
        stored, _ = _read_member(archive, size, "state_crc32", shape=(), dtype=np.uint32)
        _, crc = _read_member(archive, size, "state", shape=())
        if int(stored) != crc:
            raise _Damaged("checksum mismatch in state")
    state = _read_json(archive, size, "state", name, None)
    if not isinstance(state, dict) or state.get("format") not in (FORMAT_VERSION,
                                                                   _LEGACY_FORMAT):
        found = state.get("format") if isinstance(state, dict) else None
        raise ValueError(f"{name} has model format {found!r}, this pyslide reads formats "
                         f"{_LEGACY_FORMAT} and {FORMAT_VERSION}")
    if state["format"] == FORMAT_VERSION:
        checksums = state.get("checksums")
        if not isinstance(checksums, dict) or "state_crc32.npy" not in archive.namelist():
            raise _Damaged("no checksums")
    config = as_trained(_read_json(archive, size, "config", name, checksums))
    try:
        net = network_class.from_config(config, threads=threads)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{name}: the model's config is invalid ({type(exc).__name__}: "
                         f"{exc})") from None

    def read(key, out, required):
        if checksums is None and not required and key + ".npy" not in archive.namelist():
            return False
        if checksums is not None and key not in checksums:
            if required:
                raise _Damaged(f"{key} is missing")
            return False   # written before this array existed: keep its fresh value
        _, crc = _read_member(archive, size, key, out=out)
        if checksums is not None and checksums[key] != crc:
            raise _Damaged(f"checksum mismatch in {key}")
        return True

    for i, params in enumerate(net._states):
        for array_name in PERSISTENT_ARRAYS:
            if array_name not in params:
                continue
            key = f"layer{i}_{array_name}"
            read(key, params[array_name], required=checksums is None
                 and array_name in _LEGACY_ARRAYS)
            values = params[array_name]
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise ValueError(f"{name}: {key} (layer {i}, array {array_name}) holds NaN or "
                                 f"infinite values; the model was saved after its training "
                                 f"diverged and would predict garbage")
    try:
        net.step_ = _int(state["step"])
        net.epoch_ = _int(state["epoch"])
        net._initialized = bool(state["initialized"])
        if hasattr(net, "_log_decay"):   # AdamW's decay sum (absent before weight decay)
            net._log_decay = float(state.get("log_decay", 0.0))
        history = state["history"]
        if not isinstance(history, dict):
            raise TypeError("history is not a mapping")
        net.history_ = {str(k): [float(x) for x in v] for k, v in history.items()}
        schedule = {key: [_int(x) for x in state[key]] for key in SCHEDULE}
        if any(len(v) != len(net.layers) for v in schedule.values()):
            raise ValueError("the rebuild schedule does not have one entry per layer")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: the model's state is invalid ({type(exc).__name__}: "
                         f"{exc})") from None
    net._setup_hashing()
    for i, layer_state in enumerate(net._states):
        tables = layer_state.tables
        if tables is None:
            continue
        key_ids, key_counts = f"layer{i}_tables_ids", f"layer{i}_tables_counts"
        if checksums is None:
            # format 1: tables of another shape (another pyslide) are rebuilt
            ok = key_ids + ".npy" in archive.namelist() and _header_shape(
                archive, size, key_ids) == tables.ids.shape and _header_shape(
                archive, size, key_counts) == tables.counts.shape
            if ok:
                read(key_ids, tables.ids, True)
                read(key_counts, tables.counts, True)
        else:
            ok = read(key_ids, tables.ids, False)
            if ok:
                read(key_counts, tables.counts, True)
        if ok:
            _check_table_ids(tables, net.layers[i].units, key_ids)
            tables._set_n_items(net.layers[i].units)
            if checksums is None and f"layer{i}_dirty.npy" not in archive.namelist():
                continue
            read(f"layer{i}_dirty", layer_state.dirty, checksums is not None)
        else:
            schedule["next_rebuild"][i] = net.step_   # rebuild before training on
    for i, layer_state in enumerate(net._states):
        layer_state.set_schedule({key: values[i] for key, values in schedule.items()})
    return net


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _header_shape(archive, size, key):
    try:
        with archive.open(key + ".npy") as f:
            return tuple(_read_header(f)[0])
    except Exception:   # noqa: BLE001 - unreadable: treated as absent, tables rebuilt
        return None


def _check_table_ids(tables, n_items, key):
    """Every id in a filled slot must be a neuron: the kernels index with them."""
    ids, counts = tables.ids, tables.counts
    if counts.size and counts.min() < 0:
        raise _Damaged(f"{key.replace('_ids', '_counts')} holds negative counts")
    filled = np.minimum(counts, ids.shape[-1])
    valid = np.arange(ids.shape[-1]) < filled[..., None]
    held = ids[valid]
    if held.size and (held.min() < 0 or held.max() >= n_items):
        raise _Damaged(f"{key} holds ids outside [0, {n_items})")


def from_bytes(data, network_class):
    """Inverse of :func:`to_bytes`."""
    return load(io.BytesIO(data), network_class)


# --------------------------------------------------------------------------- sharded folders
#
# ``ShardedNetwork.save`` writes a folder: ``manifest.json`` (config, state,
# each file's checksums), ``trunk.npz`` (the input and hidden layers' arrays,
# ``layer{i}_{name}``) and ``shard-<r>.npz`` (rows [start, stop) of the output
# layer's arrays). They are read here, whoever reads them (a ``Network``,
# the driver of a ``ShardedNetwork``, or a shard's actor).

MANIFEST = "manifest.json"
FOLDER_FORMAT = "pyslide-sharded"
FOLDER_VERSION = 1


def is_sharded_folder(path):
    """True when ``path`` is a folder holding a sharded model's manifest."""
    if hasattr(path, "read"):
        return False
    path = os.fspath(path)
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def read_manifest(path):
    """The checked manifest of the sharded model folder ``path``."""
    name = os.path.join(path, MANIFEST)
    try:
        with open(name, encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as exc:
        raise ValueError(f"{name!r} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FOLDER_FORMAT:
        raise ValueError(f"{name!r} is not a pyslide sharded-model manifest")
    if manifest.get("version") != FOLDER_VERSION:
        raise ValueError(f"{name!r} has format version {manifest.get('version')!r}; this "
                         f"pyslide reads version {FOLDER_VERSION}")
    manifest["config"] = as_trained(manifest["config"])
    shards = manifest.get("shards")
    units = manifest["config"]["layers"][-1]["units"]
    if not shards or shards[0]["start"] != 0 or shards[-1]["stop"] != units or any(
            a["stop"] != b["start"] for a, b in zip(shards, shards[1:])):
        raise ValueError(f"{name!r}: the shards do not cover the output rows 0 to {units - 1} "
                         f"in order")
    return manifest


def read_checked(path, checksums, names=None, finite=False):
    """The arrays of the ``.npz`` file ``path`` that ``checksums`` lists
    (only those in ``names`` when given), each verified against its
    CRC-32; ``finite``: floating arrays must hold no NaN or infinity. Any
    damage is one ``ValueError`` naming the file and the array."""
    out = {}
    with open(path, "rb") as f:
        archive, size = _open_archive(f, repr(path))
        with archive:
            try:
                for key, expected in checksums.items():
                    if names is not None and key not in names:
                        continue
                    values, crc = _read_member(archive, size, key)
                    if crc != expected:
                        raise _Damaged(f"checksum mismatch in {key}")
                    if finite and values.dtype.kind == "f" and not np.isfinite(values).all():
                        raise _Damaged(f"{key} holds NaN or infinite values")
                    out[key] = values
            except _Damaged as exc:
                raise ValueError(f"{path!r}: {exc}") from None
    return out


def read_trunk(path, manifest):
    """The trunk's arrays (``layer{i}_{name}``) of a sharded model folder."""
    trunk = manifest["trunk"]
    return read_checked(os.path.join(path, trunk["file"]), trunk["checksums"], finite=True)


def set_counters(net, state):
    """A sharded manifest's ``state`` (counters and history) onto ``net``."""
    net.step_ = int(state["step"])
    net.epoch_ = int(state["epoch"])
    net._initialized = bool(state["initialized"])
    net._log_decay = float(state.get("log_decay", 0.0))
    net.history_ = {str(k): [float(x) for x in v] for k, v in state["history"].items()}


def build_tables(net):
    """Hash a single-node network's output rows into fresh tables (model
    folders do not store tables: each shard's held its own rows)."""
    net._setup_hashing()
    for state in net._states:
        if state.tables is not None:
            state.tables.build(state["W"], threads=net.n_threads)
            state.rehashed(net.step_)
            state.next_rebuild = net.step_ + state.rebuild_interval


def load_folder(path, network_class, threads=None):
    """A single-node network (``network_class``, i.e. ``pyslide.Network``)
    from the sharded model folder ``path``; the whole output layer is read
    into this process (no Ray needed)."""
    manifest = read_manifest(path)
    net = network_class.from_config(dict(manifest["config"]), threads=threads)
    trunk = read_trunk(path, manifest)
    for i, state in enumerate(net._states[:-1]):
        for name in PERSISTENT:
            if name in state:
                state[name][...] = trunk[f"layer{i}_{name}"]
    out = net._states[-1]
    for s in manifest["shards"]:
        arrays = read_checked(os.path.join(path, s["file"]), s["checksums"])
        for key, values in arrays.items():
            if key in out:
                out[key][s["start"]:s["stop"]] = values
    if not np.isfinite(out["W"]).all():
        raise ValueError(f"{path!r}: the output weights hold NaN or infinite values")
    set_counters(net, manifest["state"])
    build_tables(net)
    return net
