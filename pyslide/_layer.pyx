"""One layer's descriptor filled from its spec, for every engine; a kernel module (imports no Python module of ours)."""
# Engine (_kernels) and ShardEngine (_shard) both hold LayerC descriptors
# pointing into the network's NumPy arrays. fill_layer is the one place a
# spec dict becomes a LayerC: every key is required (the Python side,
# state.LayerState.engine_spec, passes every value; the kernels hold no
# defaults), and each array is checked for dtype and layout once.

from libc.stdint cimport int32_t, int64_t

from pyslide._hash cimport CompiledFamily
from pyslide._tables cimport CompiledTables

import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef void* _data(object arr, object dtype, str kind, list keepalive) except NULL:
    if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous or arr.dtype != dtype:
        raise ValueError(f"pyslide internal error: engine {kind} arrays must be "
                         f"C-contiguous {np.dtype(dtype).name}")
    keepalive.append(arr)
    return cnp.PyArray_DATA(arr)


cdef float* float_data(object arr, list keepalive) except NULL:
    """The float32 array's data, kept alive by ``keepalive``."""
    return <float*>_data(arr, np.float32, "weight", keepalive)


cdef int32_t* int_data(object arr, list keepalive) except NULL:
    """The int32 array's data, kept alive by ``keepalive``."""
    return <int32_t*>_data(arr, np.int32, "index", keepalive)


cdef float* _float_or_null(object arr, list keepalive) except? NULL:
    return NULL if arr is None else float_data(arr, keepalive)


cdef int32_t* _int_or_null(object arr, list keepalive) except? NULL:
    return NULL if arr is None else int_data(arr, keepalive)


cdef int fill_layer(LayerC* layer, dict spec, int32_t batch_size, list keepalive) except -1:
    layer.sampled = spec["sampled"]
    layer.in_dim = spec["in_dim"]
    layer.units = spec["units"]
    layer.relu = spec["relu"]
    layer.min_active = spec["min_active"]
    layer.max_active = spec["max_active"]
    layer.all_active = spec["all_active"]
    layer.query_mode = spec["query"]
    if layer.query_mode not in (QUERY_UNION, QUERY_THRESHOLD, QUERY_SAMPLE):
        raise ValueError(f"pyslide internal error: unknown query code "
                         f"{layer.query_mode} (resolve names with _kernels.QUERIES)")
    layer.threshold = spec["threshold"]
    layer.dropout = spec["dropout"]
    layer.W = float_data(spec["W"], keepalive)
    layer.b = float_data(spec["b"], keepalive)
    layer.gW = _float_or_null(spec["gW"], keepalive)
    layer.gb = _float_or_null(spec["gb"], keepalive)
    layer.mW = _float_or_null(spec["mW"], keepalive)
    layer.vW = _float_or_null(spec["vW"], keepalive)
    layer.mb = _float_or_null(spec["mb"], keepalive)
    layer.vb = _float_or_null(spec["vb"], keepalive)
    layer.touched = _int_or_null(spec["touched"], keepalive)
    layer.row_updates = _int_or_null(spec["row_updates"], keepalive)
    layer.coast_mark = _int_or_null(spec["coast_mark"], keepalive)
    layer.decay_mark = NULL
    if spec["decay_mark"] is not None:
        layer.decay_mark = <double*>_data(spec["decay_mark"], np.float64, "decay", keepalive)
    layer.family = NULL
    layer.tables = NULL
    layer.n_tables = 0
    if spec["family"] is not None:
        layer.family = &(<CompiledFamily>spec["family"]).c
        layer.tables = &(<CompiledTables>spec["tables"]).c
        layer.n_tables = (<CompiledFamily>spec["family"]).c.L
        keepalive.extend([spec["family"], spec["tables"]])
    layer.bucket_ids = int_data(np.zeros(batch_size * max(1, layer.n_tables), np.int32),
                                keepalive)
    return 0
